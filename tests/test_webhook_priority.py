"""Issue 20: webhooks keep priority over the change feed. A bulk job in Advoware puts a backlog of feed
events into the queue; a staff edit in EspoCRM arriving meanwhile (its webhook) is synced before most
of that backlog: the feed's and the sync check's events have their own lane in Redis Streams, which a
worker reads only while no other event waits. Real HTTP, the session's redis-server, both EspoCRM
profiles, both simulators answering 30 ms late (a sync takes a few round trips)."""

from __future__ import annotations

import asyncio
import time

from tests.test_advoware_feed import FEED, linked, settled
from tests.testbed import Testbed

BACKLOG = 60
LATENCY_S = 0.03


def synced(tb: Testbed, ids: list[str], city: str) -> int:
    return sum(1 for i in ids if (r := tb.espo_record(i))["addressCity"] == city and r["syncStatus"] == "clean")


async def test_a_webhook_is_synced_before_most_of_a_feed_backlog(firm_both: Testbed) -> None:
    tb = firm_both
    records = await linked(tb, BACKLOG + 1)
    staff, bulk = records[0], records[1:]
    await settled(tb)
    ids = [r["id"] for r in bulk]
    tb.espo.faults.latency = tb.advo.faults.latency = LATENCY_S
    tb.advo.store.bulk_edit([r["betnr"] for r in bulk], {"ort": "Massenort"})
    await tb.host.run_cron(FEED)  # one poll queues the whole backlog (not drained)
    assert tb.host.queue_depth() >= BACKLOG - 8, tb.host.queue_depth()
    started = time.monotonic()
    tb.espo.user_edit(staff["id"], phoneNumber="+49 30 777777")
    mark = tb.espo.webhook_mark()
    while tb.espo.webhook_events_waiting(mark):  # its webhook comes in now (runs of EspoCRM's job)
        await tb.espo.flush_webhooks(up_to=mark)
    deadline = started + 60
    while "777777" not in (tb.advo_record(staff["betnr"]).get("telefon") or "").replace(" ", ""):
        assert time.monotonic() < deadline, "the webhook's sync did not finish"
        await asyncio.sleep(0.01)
    webhook_s, before = time.monotonic() - started, synced(tb, ids, "Massenort")
    await tb.host.drain(120)
    backlog_s = time.monotonic() - started
    assert synced(tb, ids, "Massenort") == BACKLOG
    print(f"\nwebhook synced after {webhook_s:.2f} s, {before} of {BACKLOG} feed events before it; "
          f"backlog done after {backlog_s:.2f} s")
    # 4 workers: the webhook waits for a worker to finish its current sync, not for the backlog
    assert before <= BACKLOG // 4, before
    assert webhook_s < backlog_s / 3, (webhook_s, backlog_s)
