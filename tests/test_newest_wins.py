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
from simulators.common import FaultRule
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed


def at(hh_mm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-02T{hh_mm}:00+00:00").astimezone(UTC)


def set_clocks(tb: Testbed, espo: str, advo: str | None = None) -> None:
    tb.espo.set_clock(lambda: at(espo))
    tb.advo.store.clock = lambda: at(advo or espo)


@pytest.fixture(params=["8", "9"])
async def tb(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    bed = await start_testbed(policy=ConflictPolicy.uniform("newest_wins"), espo_profile=request.param, occ=False)
    try:
        yield bed
    finally:
        await bed.close()


async def linked(tb: Testbed) -> dict[str, Any]:
    set_clocks(tb, "09:00")
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    return tb.espo_record(rec["id"])


async def test_advoware_edited_later_wins_although_our_mark_is_newer(tb: Testbed):
    rec = await linked(tb)
    set_clocks(tb, "10:00")
    tb.espo.user_edit(rec["id"], addressCity="Espostadt")
    set_clocks(tb, "10:30")
    tb.advo.edit(rec["betnr"], ort="Advostadt")
    set_clocks(tb, "11:00")  # our mark and release happen now
    await tb.services.sync.sync(rec["id"], "webhook_update")
    assert tb.espo_record(rec["id"])["addressCity"] == "Advostadt"
    assert tb.advo_record(rec["betnr"])["ort"] == "Advostadt"
    assert "advoware gewinnt" in tb.espo.notes_for(rec["id"])[-1]["post"]


async def test_espocrm_edited_later_wins(tb: Testbed):
    rec = await linked(tb)
    set_clocks(tb, "10:00")
    tb.advo.edit(rec["betnr"], ort="Advostadt")
    set_clocks(tb, "10:30")
    tb.espo.user_edit(rec["id"], addressCity="Espostadt")
    set_clocks(tb, "11:00")
    await tb.services.sync.sync(rec["id"], "webhook_update")
    assert tb.advo_record(rec["betnr"])["ort"] == "Espostadt"
    assert "espocrm gewinnt" in tb.espo.notes_for(rec["id"])[-1]["post"]


async def test_a_failed_attempt_does_not_make_espocrm_look_newer(tb: Testbed):
    rec = await linked(tb)
    set_clocks(tb, "10:00")
    tb.espo.user_edit(rec["id"], addressCity="Espostadt")
    set_clocks(tb, "10:30")
    tb.advo.edit(rec["betnr"], ort="Advostadt")
    set_clocks(tb, "11:00")
    tb.espo.faults.add(method="PUT", path="/CBeteiligte/", status=500, times=2, skip=1)  # the release fails
    failed = await tb.services.sync.sync(rec["id"], "webhook_update")
    assert failed.status == "failed"
    assert tb.espo_record(rec["id"])["modifiedAt"] == "2026-11-02 11:00:00"  # our failure write
    set_clocks(tb, "12:00")
    await tb.services.sync.sync(rec["id"], "retry")
    assert tb.espo_record(rec["id"])["addressCity"] == "Advostadt"
    assert tb.advo_record(rec["betnr"])["ort"] == "Advostadt"


async def test_an_edit_during_a_failing_attempt_keeps_its_time(tb: Testbed):
    rec = await linked(tb)
    set_clocks(tb, "10:00")
    tb.advo.edit(rec["betnr"], email="advoware@example.org")  # older edit

    def person_saves() -> None:  # 10:30, while the attempt is running; our failure write comes at 10:40
        set_clocks(tb, "10:30")
        tb.espo.user_edit(rec["id"], emailAddress="person@example.org")
        set_clocks(tb, "10:40")

    set_clocks(tb, "10:29")
    tb.advo.faults.add(FaultRule(method="GET", path=r"/advonet/Beteiligte/\d+$", status=500, times=1,
                                  before=person_saves))
    tb.advo.faults.add(FaultRule(method="GET", path=r"/advonet/Beteiligte/\d+$", status=500, times=1))
    failed = await tb.services.sync.sync(rec["id"], "sync_check")
    assert failed.status == "failed", failed.describe()
    assert tb.espo_record(rec["id"])["modifiedById"] == tb.espo.api_user_id
    set_clocks(tb, "11:00")
    await tb.services.sync.sync(rec["id"], "retry")
    espo, advo = tb.espo_record(rec["id"]), tb.advo_record(rec["betnr"])
    assert (espo["emailAddress"], advo["email"]) == ("person@example.org", "person@example.org"), (
        "the 10:30 EspoCRM edit lost to the 10:00 Advoware edit")
