"""Issue 20: a bulk job in Advoware changes 10 000 rows at one stamp (the simulator's bulk-change fault,
``POST /__sim/bulk-change``). The feed reads them 200 a page while the sync works the queue off: every
linked row is synced once, the queue stays short, and the match index holds the unlinked ones. Both
EspoCRM profiles, the session's redis-server, real HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx

from adapters.match_index import MatchKeyIndex
from domain.match_keys import strong_keys, weak_keys
from domain.match_party import party_from_advoware
from sync.advoware_feed import BACKLOG, PAGE
from sync.index_rebuild import build_index
from tests.test_advoware_feed import FEED, linked, settled
from tests.testbed import Testbed

ROWS = 10_000
LINKED = 200
BOUND_S = 60.0


def unlinked_rows(tb: Testbed, n: int) -> list[int]:
    """Parties only Advoware has, stamped an hour ago: before the feed's watermark and the index's."""
    tb.advo.store.clock_offset_s = -3600
    try:
        return [tb.advo.seed(name=f"Nurhier{i:05d}", vorname="Ina", rechtsform="natürliche Person",
                             plz=f"{10000 + i}", ort="Vorher")["betNr"] for i in range(n)]
    finally:
        tb.advo.store.clock_offset_s = 0


async def in_index(tb: Testbed, betnrs: list[int]) -> tuple[int, int]:
    """How many of ``betnrs`` have match keys (a placeholder plz such as 11111 gives none), and how
    many of those the index finds."""
    index = MatchKeyIndex(tb.services.store.redis, tb.services.store.prefix)
    findable = found = 0
    for betnr in betnrs:
        party = party_from_advoware(tb.advo_record(betnr))
        keys = strong_keys(party) + weak_keys(party)
        findable += bool(keys)
        found += bool(keys) and betnr in await index.lookup(keys)
    return findable, found


async def test_a_bulk_change_of_10000_rows(firm_both: Testbed) -> None:
    tb = firm_both
    feed = tb.services.feed
    assert feed is not None
    records = await linked(tb, LINKED)
    await settled(tb)
    await build_index(tb.services.advo, feed.index)
    others = unlinked_rows(tb, ROWS - LINKED)
    assert (await in_index(tb, others[:50]))[1] == 0  # not indexed before the bulk job
    async with httpx.AsyncClient(base_url=tb.advo_server.url if tb.advo_server else "", timeout=30) as client:
        answer = await client.post("/__sim/bulk-change", json={"count": ROWS, "changes": {"ort": "Massenort"}})
    assert answer.status_code == 200 and answer.json()["changed"] == ROWS, answer.text
    step = next(s for s in tb.host.steps if s.name == FEED)
    emit = tb.host.make_context(step).emit
    depths: list[int] = []

    async def watch_queue() -> None:
        while True:
            depths.append(tb.host.queue_depth())
            await asyncio.sleep(0.005)

    tb.reset_calls()
    watcher = asyncio.create_task(watch_queue())
    started, queued, rows = time.monotonic(), 0, 0
    while time.monotonic() - started < BOUND_S:  # polls back to back; the workers sync meanwhile
        result = await feed.poll(emit)
        queued, rows = queued + result.queued, rows + result.rows
        if not result.more:
            break
        await asyncio.sleep(0.05)
    await tb.host.drain(BOUND_S)
    took = time.monotonic() - started
    watcher.cancel()
    deepest = max(depths)
    assert rows == ROWS and queued == LINKED, (rows, queued)  # every row read once, each linked one queued once
    espo_writes = sum(v for k, v in tb.calls().items() if k.startswith(("espocrm PUT", "espocrm POST")))
    assert espo_writes <= 2 * LINKED, espo_writes  # the values, and the syncing mark the design keeps
    assert deepest <= BACKLOG + PAGE, deepest  # a page at most beyond the backlog
    assert {tb.espo_record(r["id"])["addressCity"] for r in records} == {"Massenort"}
    assert {tb.espo_record(r["id"])["syncStatus"] for r in records} == {"clean"}
    findable, found = await in_index(tb, others)
    assert found == findable > len(others) - 50, (findable, found)
    assert took < BOUND_S, took
    print(f"\n{ROWS} rows ({LINKED} linked) read and synced in {took:.1f} s, deepest queue {deepest}, "
          f"{espo_writes} EspoCRM writes")
