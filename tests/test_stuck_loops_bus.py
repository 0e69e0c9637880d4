"""Issue 17, item 5: no loop of the host is stopped by a cancel alone. A handler that ends while its
entry's touch is in flight (and that touch swallows the cancel, as redis-py does) still finishes its
entry and the queue drains; a handler running past ``maxHandlerSeconds`` is reported and its entry
taken over; stopping the bus, the cron and the loops is bounded whatever the calls in flight do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from stephost import bus_watchdog
from stephost.config import parse_host_config
from stephost.cron import CronScheduler
from stephost.discovery import Step
from stephost.host import StepHost
from tests.stephost_fixtures import outage as rec
from tests.swallow import SwallowingCall, cancel_is_swallowed

pytestmark = pytest.mark.redis

CLAIM_IDLE_S = 1.5  # touches every 0.5 s; a held touch stays well within it
STREAM = "c:bus:step:record"



@pytest.fixture(autouse=True)
def _fresh_records(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bus_watchdog, "TOUCH_STOP_GRACE_SECONDS", 0.3)
    rec.reset()
    yield
    rec.reset()


def host_for(own_redis: Any, **queue: Any) -> StepHost:
    cfg = parse_host_config({"steps": {"dirs": [str(rec.OUTAGE_STEPS)]}, "redis": {"keyPrefix": "c"},
                             "queue": {"workers": 1, "claimIdleSeconds": CLAIM_IDLE_S, **queue}})
    return StepHost(cfg, own_redis, durable_bus=True)


def swallowing_touch(host: StepHost) -> SwallowingCall:
    scripts = host.bus._scripts  # type: ignore[attr-defined]  # the fault goes where redis-py swallows
    touch = SwallowingCall(scripts.touch)
    scripts.touch = touch
    return touch


async def test_the_model_swallows_a_cancel_like_redis_py(own_redis: Any) -> None:
    assert await cancel_is_swallowed(SwallowingCall(own_redis.ping))


@pytest.mark.parametrize("touch_returns", ["within_grace", "never_swallowing_every_cancel"])
async def test_a_handler_ending_while_its_touch_is_in_flight_finishes_its_entry(
    own_redis: Any, touch_returns: str
) -> None:
    host = host_for(own_redis)
    touch = swallowing_touch(host)
    await host.start()
    try:
        await host.emit(rec.TOPIC, {"id": "a", "seconds": 0.8})  # the first touch (0.5 s) holds until released
        await asyncio.wait_for(touch.in_flight.wait(), 5)
        if touch_returns == "within_grace":
            for _ in range(500):  # the handler ends while the touch is in flight ...
                if rec.HANDLED["a"]:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            touch.release()  # ... and the touch answers within the grace: the flag stops the loop
        started = time.monotonic()
        assert await host.drain(5), "the entry was never finished: the touch loop kept the worker"
        assert time.monotonic() - started < 3
        calls = touch.calls
        touch.release()
        await asyncio.sleep(0.5)
        assert touch.calls == calls == 1, "the entry was touched again after its handler ended"
        assert await own_redis.xlen(STREAM) == 0 and not (await own_redis.xpending(STREAM, "workers"))["pending"]
        left = host.bus_stats()["touch_loops_left"]
        assert left == (0 if touch_returns == "within_grace" else 1)
    finally:
        touch.release()
        await host.stop()
    assert rec.HANDLED["a"] == 1


async def test_a_handler_past_max_handler_seconds_is_reported_and_its_entry_taken_over(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host = host_for(own_redis, workers=2, maxHandlerSeconds=0.5, claimIdleSeconds=0.3)
    await host.start()
    try:
        await host.emit(rec.TOPIC, {"id": "slow", "seconds": 3.0})
        deadline = time.monotonic() + 5
        while not host.overdue_events():
            assert time.monotonic() < deadline, "the watchdog never reported the entry"
            await asyncio.sleep(0.05)
        [overdue] = host.overdue_events()
        assert overdue["step"] == "record" and overdue["stream"] == STREAM
        assert host.bus_stats()["overdue"] == 1
        assert any("in flight for" in r.getMessage() and "maxHandlerSeconds" in r.getMessage()
                   for r in caplog.records)
        assert await host.drain(15)
    finally:
        await host.stop()
    assert rec.HANDLED["slow"] == 2  # taken over by a live worker (at least once), the stuck one ended too
    assert any("from a dead worker" in r.getMessage() for r in caplog.records)


async def test_stopping_the_bus_is_bounded_when_a_read_swallows_the_cancel(own_redis: Any) -> None:
    host = host_for(own_redis)
    await host.start()
    await asyncio.sleep(0.2)
    read = SwallowingCall(own_redis.xreadgroup)
    own_redis.xreadgroup = read
    await asyncio.wait_for(read.in_flight.wait(), 5)
    started = time.monotonic()
    await host.stop(grace=0.3)
    assert time.monotonic() - started < 2
    assert read.swallowed >= 1  # the cancel alone would not have ended it
    read.release()


async def test_stopping_cron_is_bounded_and_starts_no_handler_when_its_claim_swallowed_the_cancel() -> None:
    started: list[str] = []

    async def runner(step: Step) -> None:
        started.append(step.name)

    claim_calls = SwallowingCall(_true)
    step = Step(name="tick", type="cron", file=Path("tick_step.py"), handler=runner, config={}, cron="* * * * * *")
    sched = CronScheduler([step], runner, claim=lambda _n, _at: claim_calls())
    sched.start()
    await asyncio.wait_for(claim_calls.in_flight.wait(), 5)
    began = time.monotonic()
    left = await sched.stop(grace=0.2)
    assert time.monotonic() - began < 1.5
    assert left and claim_calls.swallowed >= 1
    claim_calls.release()
    await asyncio.sleep(0.1)
    assert started == []  # the claim answered after the stop: nothing runs


async def _true() -> bool:
    return True


STUBBORN_STEP = """
import asyncio
from pathlib import Path

config = {"type": "event", "name": "stubborn", "subscribes": ["fx.stubborn"], "emits": []}


async def handler(data, context):
    while not Path(data["done"]).exists():  # swallows every cancel, as redis-py's cleanup can
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            continue
"""


async def test_stopping_the_in_process_bus_is_bounded_when_a_handler_swallows_the_cancel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "stubborn_step.py").write_text(STUBBORN_STEP)
    cfg = parse_host_config({"steps": {"dirs": [str(tmp_path)]}, "queue": {"workers": 1}})
    host = StepHost(cfg, fakeredis.FakeAsyncRedis())
    await host.start()
    done = tmp_path / "done"
    await host.emit("fx.stubborn", {"done": str(done)})
    await asyncio.sleep(0.1)
    started = time.monotonic()
    try:
        await host.stop(grace=0.2)
        assert time.monotonic() - started < 1.5
        assert any("left behind" in r.getMessage() for r in caplog.records)
    finally:
        done.touch()  # the handler left behind ends now
        await asyncio.sleep(0.2)
