"""The Redis Streams bus through Redis outages, on real redis-server processes that are stopped,
killed and started again on the same port: with their AOF (nothing acknowledged is lost) and empty
(the workers still resume). Every wait polls a condition with a generous deadline; no assertion
depends on timing. ``pytest -s`` prints the recovery figures the README quotes."""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from entrypoints.bootstrap import REDIS_CLIENT_OPTIONS
from stephost.config import HostConfig, parse_host_config
from stephost.host import StepHost
from tests.redis_server import RedisServer
from tests.stephost_fixtures import outage as rec
from tests.testbed import start_testbed

pytestmark = pytest.mark.redis

DEADLINE = 30.0  # seconds any awaited condition may take before the test fails
PREFIX = "o"
STREAM = f"{PREFIX}:bus:step:record"
HANDLER_SECONDS = 0.005
BURST = 200
EMIT_PAUSE = 0.005


def outage_config(**queue: Any) -> HostConfig:
    """The production defaults for reconnecting and taking over (claimIdleSeconds 60: recovery must
    not wait for it), quick handler retries, and attempts enough that outages cannot use them up."""
    q = {"workers": 4, "maxAttempts": 10, "backoffBaseSeconds": 0.01, "backoffMaxSeconds": 0.05, **queue}
    return parse_host_config({"steps": {"dirs": [str(rec.OUTAGE_STEPS)]}, "queue": q, "redis": {"keyPrefix": PREFIX}})


async def until(condition: Callable[[], Any], what: str) -> float:
    """Poll ``condition`` (sync or async) until true; returns the monotonic time it became true."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic()
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        await asyncio.sleep(0.01)


@dataclass
class Recovery:
    how: str
    down_s: float  # Redis stopped -> Redis answering again
    reading_s: float  # Redis answering -> every worker reading
    handled_s: float  # Redis answering -> first event handled


class Emitter:
    """Publishes events with fresh ids until stopped; remembers when ``emit`` acknowledged each."""

    def __init__(self, host: StepHost, prefix: str) -> None:
        self._host, self._prefix = host, prefix
        self.acked: list[tuple[str, float]] = []
        self.refused = 0
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            event_id, n = f"{self._prefix}{n}", n + 1
            try:
                await self._host.emit(rec.TOPIC, {"id": event_id, "seconds": HANDLER_SECONDS})
            except Exception:  # Redis down: not acknowledged, so nothing is promised
                self.refused += 1
            else:
                self.acked.append((event_id, time.monotonic()))
            await asyncio.sleep(EMIT_PAUSE)

    async def stop(self) -> list[tuple[str, float]]:
        self._stop.set()
        await self._task
        return self.acked


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    rec.reset()
    yield
    rec.reset()


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def bare_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=False)  # comes back empty after every restart
    server.start()
    yield server
    server.close()


@pytest.fixture
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    server = request.getfixturevalue(request.param)
    redis = aioredis.from_url(server.url, **REDIS_CLIENT_OPTIONS)  # the service's own timeouts
    yield redis
    await redis.aclose()


def failures_to_reach_cap(cfg: HostConfig) -> int:
    """Consecutive failures after which a loop's reconnect backoff is at its cap."""
    return 1 + math.ceil(math.log2(cfg.queue.reconnect_max_seconds / cfg.queue.reconnect_base_seconds))


async def outage(
    server: RedisServer, host: StepHost, emitter: Emitter, *, crash: bool = False, long: bool = False
) -> Recovery:
    """While events are being handled, stop (or kill) Redis until the workers and publishers feel
    it (``long``: until every loop's reconnect backoff reached its cap, as in an outage of minutes),
    start it again and wait until the workers read and handle events again."""
    handled_before, refused_before = len(rec.HANDLED_AT), emitter.refused
    await until(lambda: len(rec.HANDLED_AT) > handled_before, "events handled before the outage")
    down = time.monotonic()
    await asyncio.to_thread(server.kill if crash else server.stop)
    await until(lambda: not host.workers_healthy(), "workers reported not reading during the outage")
    await until(lambda: emitter.refused > refused_before, "a publish refused during the outage")
    if long:
        capped = failures_to_reach_cap(host.config)
        await until(lambda: all(s["failures"] >= capped for s in host.worker_status().values()), "backoff capped")
    await asyncio.to_thread(server.start)
    back = time.monotonic()
    reading = await until(host.workers_healthy, "workers reading again after the outage")
    handled = await until(lambda: rec.HANDLED_AT[-1] > back, "an event handled after the outage")
    how = ("kill -9" if crash else "stop") + (", long" if long else "")
    return Recovery(how, back - down, reading - back, handled - back)


def report(title: str, recoveries: list[Recovery]) -> None:
    print(f"\n{title}")
    for r in recoveries:
        print(f"  {r.how:14} down {r.down_s:5.2f}s  workers reading {r.reading_s:5.2f}s  "
              f"first event handled {r.handled_s:5.2f}s after Redis was back")


@pytest.mark.parametrize("client", ["aof_server"], indirect=True)
async def test_outages_with_aof_lose_no_acknowledged_event(
    aof_server: RedisServer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host = StepHost(outage_config(), client, durable_bus=True)
    await host.start()
    burst = [f"burst{i}" for i in range(BURST)]
    for event_id in burst:
        await host.emit(rec.TOPIC, {"id": event_id, "seconds": HANDLER_SECONDS})
    emitter = Emitter(host, "live")
    recoveries = [
        await outage(aof_server, host, emitter, crash=crash, long=long)
        for crash, long in ((False, False), (True, False), (False, True))
    ]
    acked = burst + [event_id for event_id, _ in await emitter.stop()]
    assert await host.drain(DEADLINE)
    assert host.workers_healthy()
    await host.stop()

    assert [event_id for event_id in acked if rec.HANDLED[event_id] == 0] == []
    stored = {key.decode() for key in await client.hkeys(f"{PREFIX}:state:{rec.STATE_GROUP}")}
    assert set(acked) <= stored
    assert await host.dead_letters() == []
    assert int(await client.get(f"{PREFIX}:bus:pending")) == 0
    assert (await client.xpending(STREAM, "workers"))["pending"] == 0
    assert await client.zcard(f"{PREFIX}:bus:retry") == 0
    # Entries held at the outage were re-read by their own worker, not left for claimIdleSeconds (60 s).
    assert not [r for r in caplog.records if "from a dead worker" in r.getMessage()]
    report(f"AOF: {len(acked)} acknowledged events, all handled, "
           f"{sum(rec.HANDLED.values()) - len(rec.HANDLED)} handled twice", recoveries)


@pytest.mark.parametrize("client", ["bare_server"], indirect=True)
async def test_workers_resume_when_redis_comes_back_empty(bare_server: RedisServer, client: Any) -> None:
    host = StepHost(outage_config(), client, durable_bus=True)
    await host.start()
    for i in range(BURST):
        await host.emit(rec.TOPIC, {"id": f"burst{i}", "seconds": HANDLER_SECONDS})
    emitter = Emitter(host, "live")
    recoveries = [await outage(bare_server, host, emitter, long=long) for long in (False, True)]
    last_back = time.monotonic() - recoveries[-1].handled_s
    after = [event_id for event_id, at in await emitter.stop() if at > last_back]
    assert after, "events were acknowledged after the last restart"
    assert await host.drain(DEADLINE)
    assert host.workers_healthy()
    await host.stop()

    assert [event_id for event_id in after if rec.HANDLED[event_id] == 0] == []
    assert int(await client.get(f"{PREFIX}:bus:pending")) == 0  # no count left over from the lost data
    assert await client.xinfo_groups(STREAM)  # the group was recreated
    report(f"empty restarts: {len(after)} events acknowledged after the last one, all handled", recoveries)


@pytest.mark.parametrize("client", ["aof_server"], indirect=True)
async def test_a_retry_waiting_in_redis_survives_a_restart_with_aof(aof_server: RedisServer, client: Any) -> None:
    first = StepHost(outage_config(backoffBaseSeconds=1.0, backoffMaxSeconds=1.0), client, durable_bus=True)
    await first.start()
    await first.emit(rec.TOPIC, {"id": "flaky", "failTimes": 1})
    await until(lambda: client.zcard(f"{PREFIX}:bus:retry"), "the failed event waiting for its retry")
    [(_, due)] = await client.zrange(f"{PREFIX}:bus:retry", 0, -1, withscores=True)
    await first.stop()
    still_waiting = time.time() < due  # else the retry is already back in its stream: also durable

    await asyncio.to_thread(aof_server.stop)
    await asyncio.to_thread(aof_server.start)
    if still_waiting:
        assert await client.zcard(f"{PREFIX}:bus:retry") == 1
    async with StepHost(outage_config(), client, durable_bus=True) as second:
        assert await second.drain(DEADLINE)
    assert (rec.FAILED["flaky"], rec.HANDLED["flaky"]) == (1, 1)


@pytest.mark.parametrize("client", ["bare_server"], indirect=True)
async def test_an_unreadable_entry_is_dead_lettered_and_the_workers_go_on(client: Any) -> None:
    async with StepHost(outage_config(), client, durable_bus=True) as host:
        await client.incr(f"{PREFIX}:bus:pending")  # as if published: the count stays right
        await client.xadd(STREAM, {"garbage": "1"})
        await host.emit(rec.TOPIC, {"id": "after-garbage"})
        assert await host.drain(DEADLINE)
        assert host.workers_healthy()
        [letter] = await host.dead_letters()
    assert letter["error"].startswith("unreadable entry") and letter["data"] == {"garbage": "1"}
    assert rec.HANDLED["after-garbage"] == 1


async def test_health_is_not_ready_while_workers_cannot_read_and_ready_again_after(
    bare_server: RedisServer,
) -> None:
    ready, not_ready = (200, "ok", "reading"), (503, "unavailable", "not_reading")
    bed = await start_testbed(redis_url=bare_server.url)
    try:
        async with httpx.AsyncClient(base_url=bed.url, timeout=10.0) as http:

            async def health_is(expected: tuple[int, str, str]) -> bool:
                body = (resp := await http.get("/health")).json()
                return (resp.status_code, body["status"], body["workers"]) == expected

            assert await health_is(ready)
            await asyncio.to_thread(bare_server.stop)
            await until(lambda: health_is(not_ready), "/health not ready during the outage")
            await asyncio.to_thread(bare_server.start)
            await until(lambda: health_is(ready), "/health ready again after the outage")
    finally:
        await bed.close()
