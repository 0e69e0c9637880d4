"""A change that arrives at any point of a running sync reaches Advoware without a sync check.

A person's edit (and its update webhook, run as a concurrent sync of the same record) is fired at
every request of a running sync and right after its release write: the lease hand-off must either
let the holder run once more or let the newcomer sync. The simulators call the test's hook at the
exact moment a request is served, so there are no timing margins.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.decision import item_fingerprints
from simulators.faults import FaultRule
from sync.beteiligte_sync import LockBusyError
from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed

# (simulator, method, path, matching requests to let through first, "before" | "after")
POINTS: dict[str, tuple[str, str, str, int, str]] = {
    "before_espo_read": ("espo", "GET", r"/CBeteiligte/[0-9a-f]{17}$", 0, "before"),
    "before_advoware_read": ("advo", "GET", r"/advonet/Beteiligte/\d+$", 0, "before"),
    "before_mark": ("espo", "PUT", r"/CBeteiligte/", 0, "before"),
    "before_advoware_write": ("advo", "PUT", r"/advonet/Beteiligte/\d+$", 0, "before"),
    "before_release": ("espo", "PUT", r"/CBeteiligte/", 1, "before"),
    "after_release": ("espo", "PUT", r"/CBeteiligte/", 1, "after"),
}
_counter = itertools.count()


async def linked_record(fast_tb: Testbed) -> dict[str, Any]:
    rec = fast_tb.espo.seed(**SAMPLE)
    await fast_tb.flush()
    rec = fast_tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean"
    return rec


def fire_at(fast_tb: Testbed, point: str, action: Callable[[], None]) -> FaultRule:
    sim, method, path, skip, when = POINTS[point]
    target = fast_tb.espo if sim == "espo" else fast_tb.advo
    rule = FaultRule(method=method, path=path, skip=skip, times=1)
    if when == "before":
        rule.before = action
    else:
        rule.after = action
    target.faults.add(rule)
    return rule


async def race_once(fast_tb: Testbed, point: str) -> tuple[str, list[Any]]:
    rec = await linked_record(fast_tb)
    espo_id = rec["id"]
    loop = asyncio.get_running_loop()
    late_value = f"Spät {next(_counter)}"
    concurrent: list[Any] = []  # concurrent.futures.Future of the webhook's sync
    fired = threading.Event()

    def person_edits_and_webhook_arrives() -> None:  # runs in the simulator's server thread
        fast_tb.espo.user_edit(espo_id, firstName=late_value)
        seen = item_fingerprints({"firstName": late_value, "id": espo_id})
        fut = asyncio.run_coroutine_threadsafe(fast_tb.services.sync.sync(espo_id, "webhook_update", seen), loop)
        concurrent.append(fut)
        fired.set()

    fast_tb.espo.user_edit(espo_id, firstName="Erste")  # the change the running sync is about
    fire_at(fast_tb, point, person_edits_and_webhook_arrives)
    holder = await fast_tb.services.sync.sync(espo_id, "webhook_update")
    # an "after" hook may still be running when the holder is done: wait for the person's edit
    assert await asyncio.to_thread(fired.wait, 10), f"{point}: the race was never fired"
    others = [await asyncio.wrap_future(f) for f in concurrent]
    fast_tb.espo.faults.clear()
    fast_tb.advo.faults.clear()
    return late_value, [holder, *others]


@pytest.mark.parametrize("point", list(POINTS))
async def test_a_change_at_any_point_of_a_sync_reaches_advoware(fast_tb: Testbed, point: str):
    for _ in range(4):
        late_value, results = await race_once(fast_tb, point)
        espo_id = results[0].espo_id
        rec = fast_tb.espo_record(espo_id)
        assert rec["firstName"] == late_value
        assert fast_tb.advo_record(rec["betnr"])["vorname"] == late_value, (point, [r.describe() for r in results])
        assert rec["syncStatus"] == "clean"
        assert not await fast_tb.services.store.is_locked(espo_id)


@pytest.fixture(params=[("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
async def redis_tb(real_redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    """``fast_tb`` on a real redis-server: the lease's Lua scripts (one round trip each, the release
    carrying the pass's last base) instead of fakeredis's WATCH/MULTI forms."""
    client = Redis.from_url(real_redis_url)
    await client.flushdb()  # the session's throwaway server
    profile, occ = request.param
    bed = await start_fast_testbed(espo_profile=profile, occ=occ, redis=client)
    try:
        yield bed
    finally:
        await bed.close()
        await client.aclose()


@pytest.mark.redis
@pytest.mark.parametrize("point", list(POINTS))
async def test_a_change_at_any_point_of_a_sync_reaches_advoware_on_a_real_redis(redis_tb: Testbed, point: str):
    await test_a_change_at_any_point_of_a_sync_reaches_advoware(redis_tb, point)


async def test_a_waiting_event_takes_over_a_dead_holders_lapsed_lease(fast_tb: Testbed):
    rec = await linked_record(fast_tb)
    store = fast_tb.services.store
    dead_token = await store.acquire(rec["id"], ttl_ms=300)  # a worker that died holding the lease
    assert dead_token is not None
    fast_tb.espo.user_edit(rec["id"], firstName="Nach dem Absturz")
    result = await fast_tb.services.sync.sync(rec["id"], "webhook_update")
    assert result.action == "update", result.describe()
    assert fast_tb.advo_record(rec["betnr"])["vorname"] == "Nach dem Absturz"


async def test_an_event_never_waits_forever_behind_a_live_holder(fast_tb: Testbed):
    rec = await linked_record(fast_tb)
    token = await fast_tb.services.store.acquire(rec["id"])
    assert token is not None
    fast_tb.services.sync.lock_wait_s = 0.2
    with pytest.raises(LockBusyError):  # the host retries the event later: it is not acknowledged
        await fast_tb.services.sync.sync(rec["id"], "webhook_update")
    assert await fast_tb.services.store.is_dirty(rec["id"])  # and the holder would run once more
