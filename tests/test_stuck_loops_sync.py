"""Issue 17, item 5, our own loops: the record lease's heartbeat and the dependency checks stop by a
flag and a bounded wait, never by a cancel alone (redis-py can swallow it: tests/swallow.py), and a
pass holding its lease past MAX_LEASE_HOLD_S is reported and its lease left to lapse (the watchdog)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from adapters.sync_state_store import LEASE_MS
from entrypoints.status_facts import stuck_lines
from installation.dependency_health import Dependency, DependencyHealth, DependencyStatus
from sync import beteiligte_sync, check_scan
from sync.metrics import Stall
from tests.conftest import synced_record
from tests.swallow import SwallowingCall
from tests.testbed import Testbed

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beteiligte_sync, "HEARTBEAT_S", 0.05, raising=False)
    monkeypatch.setattr(beteiligte_sync, "HEARTBEAT_STOP_GRACE_S", 0.5, raising=False)


def _read_waits_for(tb: Testbed, gate: Callable[[], Awaitable[Any]]) -> None:
    """The pass's record read returns only after ``gate``: the pass ends at a moment the test picks."""
    real = tb.services.sync.espo.get

    async def get(*args: Any, **kwargs: Any) -> Any:
        await gate()
        return await real(*args, **kwargs)

    tb.services.sync.espo.get = get  # type: ignore[method-assign]


@pytest.mark.parametrize("extend_returns", ["within_grace", "never_swallowing_every_cancel"])
async def test_a_pass_ending_while_its_heartbeat_is_in_flight_ends_and_the_heartbeat_stops(
    firm: Testbed, extend_returns: str
) -> None:
    rec = await synced_record(firm)
    sync = firm.services.sync
    extend = SwallowingCall(sync.store.extend)
    sync.store.extend = extend  # type: ignore[method-assign]
    _read_waits_for(firm, extend.in_flight.wait)  # the pass goes on once a heartbeat is in flight
    if extend_returns == "within_grace":
        asyncio.get_running_loop().call_later(0.2, extend.release)  # answers after the pass ended
    started = time.monotonic()
    result = await asyncio.wait_for(sync.sync(rec["id"], trigger="cli"), 10)
    took = time.monotonic() - started
    calls = extend.calls
    extend.release()
    await asyncio.sleep(0.3)
    assert result.status == "clean"
    assert took < 2, f"the pass waited {took:.1f} s for its heartbeat"
    assert extend.calls == calls == 1, "the lease was extended again after the pass ended"
    left = sync.metrics.registry.get_sample_value("beteiligte_stalled_total", {"kind": Stall.HEARTBEAT_LEFT})
    assert (left or 0) == (0 if extend_returns == "within_grace" else 1)


async def test_a_pass_past_max_lease_hold_is_reported_and_its_lease_lapses(firm: Testbed) -> None:
    rec = await synced_record(firm)
    sync = firm.services.sync
    sync.max_lease_hold_s = 0.3
    extend = SwallowingCall(sync.store.extend, hold=False)
    sync.store.extend = extend  # type: ignore[method-assign]
    stuck = asyncio.Event()
    _read_waits_for(firm, stuck.wait)
    run = asyncio.create_task(sync.sync(rec["id"], trigger="cli"))
    for _ in range(200):
        if sync.overdue_leases:
            break
        await asyncio.sleep(0.02)
    assert list(sync.overdue_leases) == [rec["id"]]
    calls = extend.calls
    await asyncio.sleep(0.3)
    assert extend.calls == calls, "the watchdog's lease was still extended"
    ttl = await sync.store.redis.pttl(sync.store._k("lock", rec["id"]))
    assert 0 < ttl < LEASE_MS - 200  # lapsing: free for another worker once it runs out
    assert sync.metrics.registry.get_sample_value("beteiligte_stalled_total", {"kind": Stall.LEASE}) == 1
    [line] = stuck_lines(firm.services, firm.host)  # what the status page and `status` show
    assert line.startswith(f"record {rec['id']}: sync pass running for over 0 s, its lease let go")
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{firm.url}/metrics", timeout=10)).text
    assert 'beteiligte_overdue{kind="lease"} 1.0' in metrics
    stuck.set()
    assert (await asyncio.wait_for(run, 10)).status == "clean"
    assert sync.overdue_leases == {}


async def test_dependency_checks_are_bounded_and_stop_when_a_probe_swallows_the_cancel() -> None:
    async def ok() -> None:
        return None

    hung = SwallowingCall(ok)
    health = DependencyHealth({Dependency.REDIS: hung, Dependency.ESPOCRM: ok}, timeout=0.2)
    started = time.monotonic()
    states = {s.name: s for s in await health.check()}
    assert time.monotonic() - started < 1, "the probe's timeout waited for a call that swallowed its cancel"
    assert states[Dependency.REDIS].status == DependencyStatus.FAILING
    assert "no answer within 0.2 s" in str(states[Dependency.REDIS].last_error)
    assert states[Dependency.ESPOCRM].status == DependencyStatus.OK
    assert hung.swallowed >= 1

    stop = asyncio.Event()
    run = asyncio.create_task(health.run(0.05, stop))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(asyncio.wait({run}), 1)
    assert run.done()
    hung.release()


async def test_a_dropped_read_ahead_page_that_swallows_the_cancel_does_not_hold_the_sync_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(check_scan, "DROP_GRACE_S", 0.2)

    async def page() -> list[Any]:
        return []

    read = SwallowingCall(page)
    ahead = asyncio.ensure_future(read())
    await read.in_flight.wait()
    started = time.monotonic()
    await check_scan._drop(ahead)
    assert time.monotonic() - started < 1 and read.swallowed == 1
    read.release()
    await ahead
