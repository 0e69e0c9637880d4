"""``newest_wins`` compares when people edited each side, never the time of our own writes.

EspoCRM moves ``modifiedAt`` on every save, our ``syncing`` mark and failure writes included; both
simulators run on clocks the test sets, so the order of the edits is exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.conflict_policy import ConflictPolicy
from simulators.faults import FaultRule
from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed


def at(hh_mm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-02T{hh_mm}:00+00:00").astimezone(UTC)


def set_clocks(fast_tb: Testbed, espo: str, advo: str | None = None) -> None:
    fast_tb.espo.set_clock(lambda: at(espo))
    fast_tb.advo.store.clock = lambda: at(advo or espo)


@pytest.fixture(params=["8", "9"])
async def fast_tb(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    bed = await start_fast_testbed(policy=ConflictPolicy.uniform("newest_wins"), espo_profile=request.param, occ=False)
    try:
        yield bed
    finally:
        await bed.close()


async def linked(fast_tb: Testbed) -> dict[str, Any]:
    set_clocks(fast_tb, "09:00")
    rec = fast_tb.espo.seed(**SAMPLE)
    await fast_tb.flush()
    return fast_tb.espo_record(rec["id"])


async def test_advoware_edited_later_wins_although_our_mark_is_newer(fast_tb: Testbed):
    rec = await linked(fast_tb)
    set_clocks(fast_tb, "10:00")
    fast_tb.espo.user_edit(rec["id"], addressCity="Espostadt")
    set_clocks(fast_tb, "10:30")
    fast_tb.advo.edit(rec["betnr"], ort="Advostadt")
    set_clocks(fast_tb, "11:00")  # our mark and release happen now
    await fast_tb.services.sync.sync(rec["id"], "webhook_update")
    assert fast_tb.espo_record(rec["id"])["addressCity"] == "Advostadt"
    assert fast_tb.advo_record(rec["betnr"])["ort"] == "Advostadt"
    assert "advoware gewinnt" in fast_tb.espo.notes_for(rec["id"])[-1]["post"]


async def test_espocrm_edited_later_wins(fast_tb: Testbed):
    rec = await linked(fast_tb)
    set_clocks(fast_tb, "10:00")
    fast_tb.advo.edit(rec["betnr"], ort="Advostadt")
    set_clocks(fast_tb, "10:30")
    fast_tb.espo.user_edit(rec["id"], addressCity="Espostadt")
    set_clocks(fast_tb, "11:00")
    await fast_tb.services.sync.sync(rec["id"], "webhook_update")
    assert fast_tb.advo_record(rec["betnr"])["ort"] == "Espostadt"
    assert "espocrm gewinnt" in fast_tb.espo.notes_for(rec["id"])[-1]["post"]


async def test_a_failed_attempt_does_not_make_espocrm_look_newer(fast_tb: Testbed):
    rec = await linked(fast_tb)
    set_clocks(fast_tb, "10:00")
    fast_tb.espo.user_edit(rec["id"], addressCity="Espostadt")
    set_clocks(fast_tb, "10:30")
    fast_tb.advo.edit(rec["betnr"], ort="Advostadt")
    set_clocks(fast_tb, "11:00")
    fast_tb.espo.faults.add(method="PUT", path="/CBeteiligte/", status=500, times=2, skip=1)  # the release fails
    failed = await fast_tb.services.sync.sync(rec["id"], "webhook_update")
    assert failed.status == "failed"
    assert fast_tb.espo_record(rec["id"])["modifiedAt"] == "2026-11-02 11:00:00"  # our failure write
    set_clocks(fast_tb, "12:00")
    await fast_tb.services.sync.sync(rec["id"], "retry")
    assert fast_tb.espo_record(rec["id"])["addressCity"] == "Advostadt"
    assert fast_tb.advo_record(rec["betnr"])["ort"] == "Advostadt"


async def test_an_edit_during_a_failing_attempt_keeps_its_time(fast_tb: Testbed):
    rec = await linked(fast_tb)
    set_clocks(fast_tb, "10:00")
    fast_tb.advo.edit(rec["betnr"], email="advoware@example.org")  # older edit

    def person_saves() -> None:  # 10:30, while the attempt is running; our failure write comes at 10:40
        set_clocks(fast_tb, "10:30")
        fast_tb.espo.user_edit(rec["id"], emailAddress="person@example.org")
        set_clocks(fast_tb, "10:40")

    set_clocks(fast_tb, "10:29")
    fast_tb.advo.faults.add(FaultRule(method="GET", path=r"/advonet/Beteiligte/\d+$", status=500, times=1,
                                  before=person_saves))
    fast_tb.advo.faults.add(FaultRule(method="GET", path=r"/advonet/Beteiligte/\d+$", status=500, times=1))
    failed = await fast_tb.services.sync.sync(rec["id"], "sync_check")
    assert failed.status == "failed", failed.describe()
    assert fast_tb.espo_record(rec["id"])["modifiedById"] == fast_tb.espo.api_user_id
    set_clocks(fast_tb, "11:00")
    await fast_tb.services.sync.sync(rec["id"], "retry")
    espo, advo = fast_tb.espo_record(rec["id"]), fast_tb.advo_record(rec["betnr"])
    assert (espo["emailAddress"], advo["email"]) == ("person@example.org", "person@example.org"), (
        "the 10:30 EspoCRM edit lost to the 10:00 Advoware edit")
