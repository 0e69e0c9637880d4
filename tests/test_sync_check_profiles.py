"""The sync check over real HTTP on each shipped Advoware wire profile (issue 21), both EspoCRM profiles:
it reads Advoware through the profile's list endpoint (or single GETs when the profile has none),
brings an Advoware user's edit to EspoCRM, and an EspoCRM edit to Advoware through the profile's PUT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from simulators.common import free_port
from tests.conftest import SAMPLE
from tests.embedded_support import env_for, state_root
from tests.test_sync_check import _cli_sync_check_in_sandbox_mode
from tests.testbed import Testbed, start_testbed

BEDS = [(espo, occ, advo) for espo, occ in (("8", False), ("9", True))
        for advo in ("default", "pascal-object", "no-list")]


@pytest.fixture(params=BEDS, ids=[f"espo{e}-advo_{a}" for e, _, a in BEDS])
async def ptb(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    espo, occ, advo = request.param
    bed = await start_testbed(espo_profile=espo, occ=occ, advo_profile=advo)
    try:
        yield bed
    finally:
        await bed.close()


async def linked(tb: Testbed, n: int) -> list[dict[str, Any]]:
    ids = [tb.espo.seed(**{**SAMPLE, "lastName": f"Person {i}"})["id"] for i in range(n)]
    await tb.flush()
    await tb.flush()  # EspoCRM 8's echoes of our writes
    recs = [tb.espo_record(i) for i in ids]
    assert all(r["syncStatus"] == "clean" for r in recs), recs
    return recs


async def test_the_sync_check_reads_the_profiles_wire_and_syncs_both_ways(ptb: Testbed):
    recs = await linked(ptb, 3)
    assert ptb.advo_record(recs[0]["betnr"])["geburtsdatum"] == "1980-04-12T00:00:00"
    ptb.advo.edit(recs[1]["betnr"], ort="Köln")
    plan = await ptb.services.checker.plan()
    assert plan.advoware_source == ("list" if ptb.advo.profile.has_list else "get")
    assert [w.espo_id for w in plan.work] == [recs[1]["id"]]
    ptb.reset_calls()
    await ptb.sync_check()
    assert ptb.espo_record(recs[1]["id"])["addressCity"] == "Köln"
    assert not any(k.startswith("advoware PUT") for k in ptb.calls())  # Advoware's edit: nothing to write back

    ptb.espo.user_edit(recs[2]["id"], addressCity="Bonn")
    await ptb.flush()
    after = ptb.advo_record(recs[2]["betnr"])
    assert after["ort"] == "Bonn" and after["geburtsdatum"] == "1980-04-12T00:00:00"
    assert ptb.espo_record(recs[2]["id"])["advowareRowId"] == after["rowId"]  # from the PUT answer or its GET
    assert (await ptb.services.checker.plan()).work == []  # nothing left: no echo of our own writes


def test_the_sandbox_speaks_advoware_profile_and_the_cli_sync_check_syncs_its_samples():
    """ADVOWARE_PROFILE reaches the sandbox's simulator and its client alike (a PascalCase Advoware)."""
    with state_root() as root:
        env = {**env_for(root / "state", free_port()), "ADVOWARE_PROFILE": "pascal-object"}
        _cli_sync_check_in_sandbox_mode(env)
