"""In-process event bus: fan-out, retry with backoff, dead letters, drain, bounded queue."""

import logging
import random
from pathlib import Path

import fakeredis
import httpx
import pytest

from stephost.bus_common import QueueFullError, backoff_delay
from stephost.bus_memory import InProcessBus
from stephost.config import QueueConfig
from stephost.discovery import Step
from stephost.host import StepHost
from stephost.state import DeadLetterStore
from tests.stephost_fixtures.support import fast_config, http_server
from tests.waiting import until

RETRY_S = 5.0


async def test_every_subscriber_gets_its_own_copy(host: StepHost) -> None:
    trace_id = await host.emit("fx.fanout", {"n": 1})
    assert await host.drain(5)
    a = await host.state.get("fanout", "a")
    b = await host.state.get("fanout", "b")
    assert a == {"data": {"n": 1, "touchedBy": "a"}, "traceId": trace_id}
    assert b == {"data": {"n": 1}, "traceId": trace_id}
    assert host.bus_stats()["delivered"] == 2


async def test_failing_handler_is_retried_then_dead_lettered(
    host: StepHost, caplog: pytest.LogCaptureFixture
) -> None:
    trace_id = await host.emit("fx.flaky", {"id": "x", "failTimes": 99}, trace_id="trace-dl")
    assert await host.drain(5)
    assert await host.state.get("flaky-calls", "x") == 3  # maxAttempts
    assert await host.state.get("flaky-done", "x") is None
    [letter] = await host.dead_letters()
    assert letter["topic"] == "fx.flaky" and letter["step"] == "flaky"
    assert letter["data"] == {"id": "x", "failTimes": 99}
    assert letter["attempts"] == 3 and letter["trace_id"] == trace_id == "trace-dl"
    assert "ValueError: flaky failure 3" in letter["error"] and letter["failed_at"]
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "trace-dl" in r.getMessage()]
    assert len(retries) == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "dead-lettered" in r.getMessage()]
    assert len(errors) == 1 and "trace-dl" in errors[0].getMessage()
    assert host.queue_depth() == 0 and host.bus_stats()["dead_lettered"] == 1


async def test_handler_failing_once_is_delivered_exactly_once_more(host: StepHost) -> None:
    await host.emit("fx.flaky", {"id": "once", "failTimes": 1})
    assert await host.drain(5)
    assert await host.state.get("flaky-calls", "once") == 2
    assert await host.state.get("flaky-done", "once") == 1
    assert await host.dead_letters() == []


async def test_drain_waits_for_chained_emits_from_an_api_call(host: StepHost) -> None:
    async with http_server(host.http_app) as base, httpx.AsyncClient(base_url=base) as client:
        resp = await client.post("/chain", json={"data": {"hops": 0}})
    assert resp.status_code == 202
    trace_id = resp.json()["traceId"]
    assert await host.drain(5)
    assert await host.state.get("chain", trace_id) == {"hops": 2}  # api -> chain-first -> chain-last


async def test_drain_times_out_while_work_is_in_flight(host: StepHost) -> None:
    await host.emit("fx.slow", {"id": 1, "seconds": 0.3})
    assert await host.drain(0.05) is False
    assert host.queue_depth() == 1
    assert await host.drain(5) is True


async def test_retry_wait_does_not_block_a_worker() -> None:
    # The failed event waits RETRY_S for its retry: far longer than the other event needs on one worker.
    h = StepHost(fast_config(workers=1, backoffBaseSeconds=RETRY_S, backoffMaxSeconds=RETRY_S),
                 fakeredis.FakeAsyncRedis())
    async with h:
        await h.emit("fx.flaky", {"id": "w", "failTimes": 1})
        await until(lambda: h.state.get("flaky-calls", "w"), "the flaky event to fail once")
        await h.emit("fx.fanout", {"n": 2})
        await until(lambda: h.state.get("fanout", "b"), "the other event to run while the retry waits")
        assert await h.state.get("flaky-done", "w") is None  # still waiting for its retry
        assert await h.drain(RETRY_S + 10)
        assert await h.state.get("flaky-done", "w") == 1


async def test_full_queue_refuses_the_whole_publish() -> None:
    h = StepHost(fast_config(maxSize=3), fakeredis.FakeAsyncRedis())  # not started: nothing consumes
    await h.emit("fx.fanout", {"n": 1})  # two subscribers -> two deliveries
    with pytest.raises(QueueFullError):
        await h.emit("fx.fanout", {"n": 2})  # needs two more, only one free: nothing queued
    assert h.queue_depth() == 2
    await h.emit("fx.flaky", {"id": "y", "failTimes": 0})
    assert h.queue_depth() == 3


async def test_topic_without_subscribers_is_accepted_and_counted(host: StepHost) -> None:
    await host.emit("fx.nobody", {"x": 1})
    assert host.queue_depth() == 0 and host.bus_stats()["published"] == 1


async def test_dead_letter_is_logged_in_full_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    server = fakeredis.FakeServer()
    store = DeadLetterStore(fakeredis.FakeAsyncRedis(server=server), "t")
    server.connected = False

    async def handler(data: object, context: object) -> None:
        raise RuntimeError("always")

    step = Step(name="s", type="event", file=Path("s_step.py"), handler=handler, config={}, subscribes=("t",))

    async def runner(st: Step, data: object, trace_id: str) -> None:
        await st.handler(data, None)

    bus = InProcessBus([step], runner, store, QueueConfig(maxAttempts=2, backoffBaseSeconds=0, workers=1))
    await bus.start()
    await bus.publish("t", {"id": "keep-me"}, "trace-down")
    assert await bus.drain(5)
    await bus.stop()
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("could not be stored" in m and "keep-me" in m and "trace-down" in m for m in logged)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 60.0, rng) for n in range(1, 9)]
    for n, d in enumerate(delays, start=1):
        assert min(60.0, 2 ** (n - 1)) <= d <= min(60.0, 2 ** (n - 1) + 1)
    assert delays[-1] == 60.0
    assert len({backoff_delay(1, 1.0, 60.0, rng) for _ in range(5)}) > 1
