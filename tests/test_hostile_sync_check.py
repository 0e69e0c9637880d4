"""Hostile: the sync check over records that are in sync, on EspoCRM 8.1.5, must write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulators.espocrm import STOCK_SALUTATIONS
from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed


@pytest.fixture(params=[False, True], ids=["8-occ_off", "8-occ_on"])
async def bed(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    fast_tb = await start_fast_testbed(espo_profile="8", occ=request.param, salutation_options=STOCK_SALUTATIONS)
    try:
        yield fast_tb
    finally:
        await fast_tb.close()


async def test_hostile_sync_check_writes_nothing_for_equivalent_values(bed: Testbed):
    """Stock 'Mrs.' (= Frau), a phone number Advoware keeps with blanks and EspoCRM normalises, and an
    Advoware edit of unmapped fields only (rowId moves, mapped values do not): no write, no Note."""
    fast_tb = bed
    ids = []
    for i in range(3):
        rec = fast_tb.espo.seed(**{**SAMPLE, "lastName": f"Müller {i}", "salutationName": "Mrs."})
        ids.append(rec["id"])
    await fast_tb.flush()
    await fast_tb.flush()
    for espo_id in ids:
        betnr = fast_tb.espo_record(espo_id)["betnr"]
        fast_tb.advo.edit(betnr, telefon="+49 (30) 123-4567", kurzname="KURZ")
    fast_tb.espo.user_edit(ids[0], salutationName="Ms.")
    await fast_tb.flush()
    fast_tb.reset_calls()
    for _ in range(3):
        await fast_tb.sync_check()
        await fast_tb.flush()
    assert fast_tb.writes() == 0, fast_tb.calls()
    assert all(not fast_tb.espo.notes_for(i) for i in ids)
    assert all(fast_tb.espo_record(i)["syncStatus"] == "clean" for i in ids)


async def test_hostile_fatal_failure_is_not_requeued_by_every_sync_check(bed: Testbed):
    fast_tb = bed
    rec = fast_tb.espo.seed(**SAMPLE | {"salutationName": "Dr."})  # no Advoware anrede for it: fatal
    await fast_tb.flush()
    assert fast_tb.espo_record(rec["id"])["syncStatus"] == "failed"
    fast_tb.reset_calls()
    for _ in range(3):
        fast_tb.clock.advance(7 * 3600)
        await fast_tb.sync_check()
        await fast_tb.flush()
    assert fast_tb.writes() == 0, fast_tb.calls()
    assert [k for k in fast_tb.calls() if "advonet" in k and "POST" in k] == []


async def test_hostile_mass_change_guard_does_not_hold_unrelated_advoware_changes():
    fast_tb = await start_fast_testbed(espo_profile="8", occ=False)
    try:
        ids = [fast_tb.espo.seed(**{**SAMPLE, "lastName": f"Müller {i}"})["id"] for i in range(10)]
        await fast_tb.flush()
        await fast_tb.flush()
        betnrs = [fast_tb.espo_record(i)["betnr"] for i in ids]
        for b in betnrs[:3]:
            fast_tb.advo.edit(b, email=None)  # three ordinary clean-ups in Advoware
        fast_tb.advo.edit(betnrs[5], vorname="Anneliese")  # an unrelated, ordinary edit
        for _ in range(2):  # two cron runs
            fast_tb.clock.advance(900)
            await fast_tb.sync_check()
        assert fast_tb.espo_record(ids[5])["firstName"] == "Anneliese"
    finally:
        await fast_tb.close()
