"""Issue 20: Advoware's changes reach EspoCRM within a poll of the change feed, not at the next sync
check; correct at the edges of time (same-stamp rows across pages, clock skew, the repeated autumn
hour), after the watermark is lost, without the list endpoint, and in a bulk change. On the session's
real redis-server, both EspoCRM profiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis import Redis

from entrypoints.status_facts import gather
from sync import advoware_feed
from sync.advoware_feed import DST_OVERLAP, OVERLAP, FeedState, overlap
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed

FEED = "beteiligte_advoware_feed"
LIST = "GET /api/v1/advonet/Beteiligte"


async def linked(tb: Testbed, n: int) -> list[dict[str, Any]]:
    ids = [tb.espo.seed(**{**SAMPLE, "lastName": f"Feed{i:04d}", "emailAddress": f"f{i}@example.org"})["id"]
           for i in range(n)]
    await tb.flush()
    records = [tb.espo_record(i) for i in ids]
    assert all(r["syncStatus"] == "clean" and r["betnr"] for r in records)
    return records


async def poll(tb: Testbed) -> None:
    await tb.host.run_cron(FEED)
    await tb.host.drain(60)


async def settled(tb: Testbed) -> None:
    """The feed has read everything up to now (its first poll sets the watermark)."""
    await poll(tb)
    await poll(tb)


async def test_an_advoware_edit_reaches_espocrm_within_one_poll(firm_both: Testbed) -> None:
    tb = firm_both
    [rec] = await linked(tb, 1)
    await settled(tb)
    tb.advo.edit(rec["betnr"], ort="Feldafing")
    tb.reset_calls()
    await poll(tb)  # no sync check
    assert tb.espo_record(rec["id"])["addressCity"] == "Feldafing"
    assert tb.espo_record(rec["id"])["syncStatus"] == "clean"
    assert tb.calls().get(f"advoware {LIST}") == 1  # one list read, then the usual sync of that record


async def test_an_idle_poll_is_one_request_and_writes_nothing(firm_both: Testbed, real_redis_url: str) -> None:
    tb = firm_both
    await linked(tb, 3)
    await settled(tb)
    client = Redis.from_url(real_redis_url)
    feed_state = client.hgetall("bsync:feed")
    tb.reset_calls()
    for _ in range(3):
        await poll(tb)
    calls = tb.calls()
    assert calls.get(f"advoware {LIST}") == 3 and sum(calls.values()) == 3, calls  # one request per poll
    assert tb.writes() == 0
    assert client.hgetall("bsync:feed") == feed_state  # the watermark did not move: no write


async def test_same_stamp_rows_across_a_page_boundary_all_arrive(firm_both: Testbed,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tb = firm_both
    monkeypatch.setattr(advoware_feed, "PAGE", 3)
    records = await linked(tb, 8)
    await settled(tb)
    stamp = tb.advo.store.bulk_edit([r["betnr"] for r in records], {"ort": "Gleichzeit"})
    assert len({tb.advo_record(r["betnr"])["geaendertAm"] for r in records}) == 1, stamp
    await poll(tb)
    await poll(tb)  # 8 rows, 3 a page, 5 pages a poll at most: one poll; the second changes nothing
    assert [tb.espo_record(r["id"])["addressCity"] for r in records] == ["Gleichzeit"] * 8


@pytest.mark.parametrize("skew_s", [-120.0, 120.0], ids=["advoware_2_min_behind", "advoware_2_min_ahead"])
async def test_a_clock_skew_of_two_minutes_loses_nothing(firm_both: Testbed, real_redis_url: str,
                                                          skew_s: float) -> None:
    tb = firm_both
    tb.advo.store.clock_offset_s = skew_s  # Advoware's clock differs from ours, all along
    [rec] = await linked(tb, 1)
    Redis.from_url(real_redis_url).delete("bsync:feed")  # a fresh feed: its first watermark from our clock
    await poll(tb)
    tb.advo.edit(rec["betnr"], ort=f"Schief {skew_s:+.0f}")
    await poll(tb)
    assert tb.espo_record(rec["id"])["addressCity"] == f"Schief {skew_s:+.0f}"


async def test_a_lost_watermark_starts_from_now_and_says_so(firm_both: Testbed, real_redis_url: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    tb = firm_both
    [rec] = await linked(tb, 1)
    await settled(tb)
    tb.advo.edit(rec["betnr"], ort="Nachher")
    Redis.from_url(real_redis_url).delete("bsync:feed")  # the watermark is lost (links are not: see test_lost_base)
    caplog.clear()
    await poll(tb)
    lines = [r.getMessage() for r in caplog.records if "no watermark" in r.getMessage()]
    assert len(lines) == 1 and "the next sync check catches up" in lines[0]
    assert tb.espo_record(rec["id"])["addressCity"] == "Nachher"  # within the overlap: not lost


@pytest.mark.parametrize(("profile", "occ"), [("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
async def test_without_the_list_endpoint_the_feed_turns_itself_off(real_redis_url: str, profile: str,
                                                                   occ: bool) -> None:
    Redis.from_url(real_redis_url).flushdb()
    tb = await start_testbed(redis_url=real_redis_url, list_endpoint=False, espo_profile=profile, occ=occ)
    try:
        await linked(tb, 1)
        tb.reset_calls()
        await poll(tb)
        await poll(tb)
        assert tb.services.feed is not None and tb.services.feed.status.state == FeedState.NO_LIST
        assert "no list endpoint" in (await gather(tb.services, tb.host)).feed
        assert tb.writes() == 0
        assert sum(v for k, v in tb.calls().items() if "advoware" in k) <= 1  # probed once, then quiet
    finally:
        await tb.close()


async def test_a_bulk_change_is_read_page_by_page_without_flooding_the_queue(
    firm_both: Testbed, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tb = firm_both
    monkeypatch.setattr(advoware_feed, "PAGE", 10)
    monkeypatch.setattr(advoware_feed, "PAGES_PER_POLL", 3)
    records = await linked(tb, 75)
    await settled(tb)
    tb.advo.store.bulk_edit([r["betnr"] for r in records], {"ort": "Massenjob"})
    queued: list[int] = []
    assert tb.services.feed is not None
    for _ in range(10):
        step = next(s for s in tb.host.steps if s.name == FEED)
        result = await tb.services.feed.poll(tb.host.make_context(step).emit)
        queued.append(result.queued)
        await tb.host.drain(60)
        if not result.more and result.queued == 0:
            break
    assert max(queued) <= 30, queued  # never more than a poll's budget of rows at once
    assert sum(queued) == 75, queued
    assert {tb.espo_record(r["id"])["addressCity"] for r in records} == {"Massenjob"}


async def test_an_advoware_edit_racing_a_staff_edit_loses_neither(firm_both: Testbed) -> None:
    tb = firm_both
    [rec] = await linked(tb, 1)
    await settled(tb)
    tb.advo.edit(rec["betnr"], ort="Advostadt")
    tb.espo.user_edit(rec["id"], phoneNumber="+49 30 5555")
    await poll(tb)
    await tb.flush()
    assert tb.espo_record(rec["id"])["addressCity"] == "Advostadt"
    assert tb.advo_record(rec["betnr"])["telefon"].replace(" ", "") == "+49305555"
    assert tb.advo_record(rec["betnr"])["ort"] == "Advostadt"


def test_the_repeated_autumn_hour_is_read_again() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    back = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 03:00 CEST becomes 02:00 CET
    assert overlap(back - timedelta(minutes=5), berlin) == OVERLAP
    assert overlap(back + timedelta(minutes=1), berlin) == DST_OVERLAP  # the hour's stamps repeat
    assert overlap(back + timedelta(minutes=60), berlin) == DST_OVERLAP
    assert overlap(back + timedelta(minutes=62), berlin) == OVERLAP
    assert overlap(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), berlin) == OVERLAP  # spring: nothing repeats


async def test_the_feed_shows_on_the_status_page_and_in_metrics(firm_both: Testbed) -> None:
    tb = firm_both
    [rec] = await linked(tb, 1)
    await settled(tb)
    tb.advo.edit(rec["betnr"], ort="Sichtbar")
    await poll(tb)
    facts = await gather(tb.services, tb.host)
    assert facts.feed.startswith("running, every 10 s; last poll ") and "watermark 20" in facts.feed
    assert "1 changes queued this hour" in facts.feed, facts.feed
    async with httpx.AsyncClient(base_url=tb.url, timeout=10) as client:
        metrics = (await client.get("/metrics")).text
    assert 'advoware_feed_polls_total{outcome="running"}' in metrics
    assert "advoware_feed_lag_seconds " in metrics


async def test_a_long_queue_holds_the_burst_back_so_webhooks_keep_their_turn(
    firm_both: Testbed, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tb = firm_both
    monkeypatch.setattr(advoware_feed, "PAGE", 5)
    records = await linked(tb, 12)
    await settled(tb)
    feed = tb.services.feed
    assert feed is not None
    assert feed.queue_depth() == 0  # the runtime handed it the host's queue depth
    tb.advo.store.bulk_edit([r["betnr"] for r in records], {"ort": "Später"})
    step = next(s for s in tb.host.steps if s.name == FEED)
    emit = tb.host.make_context(step).emit
    monkeypatch.setattr(feed, "queue_depth", lambda: advoware_feed.BACKLOG)  # webhooks fill the queue
    held = await feed.poll(emit)
    assert (held.requests, held.queued, held.more) == (0, 0, True)
    monkeypatch.setattr(feed, "queue_depth", lambda: 0)  # worked off
    for _ in range(3):
        await feed.poll(emit)
        await tb.host.drain(60)
    assert {tb.espo_record(r["id"])["addressCity"] for r in records} == {"Später"}
