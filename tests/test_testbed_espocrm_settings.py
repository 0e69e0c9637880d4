"""The testbed's EspoCRM settings: profile, OCC, salutation options, and ``flush`` over job runs of 20."""

from __future__ import annotations

import pytest

from simulators.espocrm import GERMAN_SALUTATIONS
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed


async def test_defaults_are_a_real_espocrm_with_german_salutations() -> None:
    tb = await start_testbed()
    try:
        assert str(tb.espo.profile) == "9" and tb.espo.occ is False
        assert tb.espo.salutation_options == GERMAN_SALUTATIONS
        assert tb.espo.seed(lastName="X", phoneNumber="+49 30 1")["phoneNumber"] == "+49301"
    finally:
        await tb.close()


async def test_flush_delivers_more_than_one_job_run(tb: Testbed) -> None:
    ids = [tb.espo.seed(**{**SAMPLE, "lastName": f"Person {i}"})["id"] for i in range(25)]
    results = await tb.flush()
    assert [r.item_count for r in results] == [20, 5]  # two job runs
    assert all(tb.espo_record(i)["syncStatus"] == "clean" for i in ids)
    assert len(tb.advo.all()) == 25


@pytest.mark.parametrize(("profile", "echoes_queued"), [("8", True), ("9", False)])
async def test_profile_reaches_the_simulator(profile: str, echoes_queued: bool) -> None:
    tb = await start_testbed(espo_profile=profile, occ=False)
    try:
        assert tb.espo.occ is False
        assert all(("skipOwn" in w) is (profile == "9") for w in tb.espo.webhooks)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        rec = tb.espo_record(rec["id"])
        assert rec["syncStatus"] == "clean" and "versionNumber" not in rec
        assert tb.advo_record(rec["betnr"])["name"] == SAMPLE["lastName"]
        # 8.x has no skipOwn: the sync's own writes are queued as update events for the next flush
        assert (tb.espo.pending_webhook_events() > 0) is echoes_queued
    finally:
        await tb.close()
