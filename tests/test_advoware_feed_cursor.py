"""Issue 20: after a burst, the change feed's polls read only rows they have not read (its cursor in the
overlap window, sync/feed_cursor.py), and still lose nothing: a row arriving late with the burst's stamp
or an earlier one inside the window, a row of the window changed again, both at once. Real HTTP against
both simulators, the session's redis-server, both EspoCRM profiles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from sync import advoware_feed
from sync.advoware_feed import PollResult
from tests.test_advoware_feed import FEED, LIST, linked, settled
from tests.testbed import Testbed

PAGE = 10  # so a burst of a few dozen rows spans pages, as 1000 rows span pages of 200


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(advoware_feed, "PAGE", PAGE)


async def poll_once(tb: Testbed) -> PollResult:
    assert tb.services.feed is not None
    step = next(s for s in tb.host.steps if s.name == FEED)
    result = await tb.services.feed.poll(tb.host.make_context(step).emit)
    await tb.host.drain(60)
    return result


async def burst(tb: Testbed, records: list[dict[str, Any]], value: str) -> str:
    """A bulk job changes ``records`` at one stamp; the feed reads all of it (several polls)."""
    stamp = tb.advo.store.bulk_edit([r["betnr"] for r in records], {"ort": value})
    for _ in range(10):
        if not (await poll_once(tb)).more:
            break
    assert {tb.espo_record(r["id"])["addressCity"] for r in records} == {value}
    return stamp


def list_reads(tb: Testbed) -> int:
    return tb.calls().get(f"advoware {LIST}", 0)


async def test_idle_polls_right_after_a_burst_are_one_request_each(firm_both: Testbed) -> None:
    tb = firm_both
    records = await linked(tb, 35)
    await settled(tb)
    await burst(tb, records, "Massenort")
    tb.reset_calls()
    for _ in range(3):
        result = await poll_once(tb)
        assert (result.rows, result.queued) == (0, 0)
    calls = tb.calls()
    assert list_reads(tb) == 3 and sum(calls.values()) == 3, calls  # 35 rows in the window, not read again
    assert tb.writes() == 0


def shifted(stamp: str, seconds: float) -> str:
    return (datetime.fromisoformat(stamp) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


async def test_a_late_row_with_the_bursts_stamp_or_an_earlier_one_is_found(firm_both: Testbed) -> None:
    tb = firm_both
    records = await linked(tb, 37)
    late, earlier, bulk = records[0], records[1], records[2:]  # the lowest betNrs: before the anchor
    await settled(tb)
    tb.advo.store.clock_offset_s = 60  # the burst a minute after the linking: alone in the window
    stamp = await burst(tb, bulk, "Massenort")
    await poll_once(tb)
    tb.advo.store.bulk_edit([late["betnr"]], {"ort": "Spät"}, stamp=stamp)  # committed after the burst
    result = await poll_once(tb)
    assert tb.espo_record(late["id"])["addressCity"] == "Spät", result
    assert result.rereads == 1, result  # the anchor moved: the window was read whole
    tb.advo.store.bulk_edit([earlier["betnr"]], {"ort": "Früher"}, stamp=shifted(stamp, -10))
    await poll_once(tb)
    assert tb.espo_record(earlier["id"])["addressCity"] == "Früher"
    tb.reset_calls()
    await poll_once(tb)
    assert list_reads(tb) == 1  # idle again


async def test_a_late_row_hidden_by_its_own_earlier_version_is_found_when_the_window_moves_on(
    firm_both: Testbed,
) -> None:
    """Its earlier version left the window's front as it came in: the anchor did not move. The rows
    about to leave the window are read whole once more: it is found then, before it could be lost."""
    tb = firm_both
    records = await linked(tb, 36)
    other, bulk = records[0], records[1:]
    await settled(tb)
    stamp = await burst(tb, bulk, "Massenort")
    await poll_once(tb)
    tb.advo.store.bulk_edit([bulk[0]["betnr"]], {"ort": "Spät"}, stamp=stamp)  # a late commit of a burst row
    await poll_once(tb)
    tb.advo.store.bulk_edit([other["betnr"]], {"ort": "Weiter"}, stamp=shifted(stamp, 31))
    await poll_once(tb)  # reads the change behind the anchor; the watermark moves on
    assert tb.espo_record(other["id"])["addressCity"] == "Weiter"
    await poll_once(tb)  # the burst leaves the window: read once more
    assert tb.espo_record(bulk[0]["id"])["addressCity"] == "Spät"
    tb.reset_calls()
    await poll_once(tb)
    assert list_reads(tb) == 1


async def test_a_row_of_the_window_changed_again_costs_one_more_read(firm_both: Testbed) -> None:
    tb = firm_both
    records = await linked(tb, 35)
    await settled(tb)
    await burst(tb, records, "Massenort")
    await poll_once(tb)
    middle = records[17]
    tb.advo.edit(middle["betnr"], ort="Nochmal")
    tb.reset_calls()
    result = await poll_once(tb)
    assert tb.espo_record(middle["id"])["addressCity"] == "Nochmal"
    assert list_reads(tb) == 2 and result.rereads == 0, result  # the anchor one row earlier, no re-read
    last = records[-1]  # the anchor itself changed: the window is read again, nothing lost
    tb.advo.edit(last["betnr"], ort="Anker")
    await poll_once(tb)
    assert tb.espo_record(last["id"])["addressCity"] == "Anker"
    tb.reset_calls()
    await poll_once(tb)
    assert list_reads(tb) == 1


async def test_a_change_again_and_a_late_row_at_once_lose_neither(firm_both: Testbed) -> None:
    """The edit moves a row out of the window's front, the late row moves one in: the anchor stays
    where it was, and only the edit shows behind it. The feed must still find the late row."""
    tb = firm_both
    records = await linked(tb, 36)
    late, bulk = records[0], records[1:]
    await settled(tb)
    tb.advo.store.clock_offset_s = 60
    stamp = await burst(tb, bulk, "Massenort")
    await poll_once(tb)
    tb.advo.edit(bulk[5]["betnr"], ort="Nochmal")
    tb.advo.store.bulk_edit([late["betnr"]], {"ort": "Spät"}, stamp=stamp)
    result = await poll_once(tb)
    assert tb.espo_record(bulk[5]["id"])["addressCity"] == "Nochmal"
    assert tb.espo_record(late["id"])["addressCity"] == "Spät", result


async def test_a_poll_failing_half_way_through_a_burst_loses_nothing(firm_both: Testbed) -> None:
    """Advoware fails on a later page, or the queue refuses an event (Redis away) in the middle of a
    page: the next poll reads on from the last poll that finished, not from the rows half handled."""
    tb = firm_both
    records = await linked(tb, 35)
    await settled(tb)
    tb.advo.store.bulk_edit([r["betnr"] for r in records], {"ort": "Halbweg"})
    tb.advo.faults.add(method="GET", path=r"/Beteiligte$", status=503, skip=2, times=None)
    failed = await poll_once(tb)  # a page is read and queued, then Advoware fails
    assert failed.error and failed.queued > 0, failed
    tb.advo.faults.clear()
    assert tb.services.feed is not None
    step = next(s for s in tb.host.steps if s.name == FEED)
    emit, sent = tb.host.make_context(step).emit, list[dict[str, Any]]()

    async def refusing(event: dict[str, Any]) -> None:
        if len(sent) == 3:
            raise ConnectionError("the queue is away")
        sent.append(event)
        await emit(event)

    assert (await tb.services.feed.poll(refusing)).error
    await tb.host.drain(60)
    for _ in range(5):
        if not (await poll_once(tb)).more:
            break
    assert {tb.espo_record(r["id"])["addressCity"] for r in records} == {"Halbweg"}
