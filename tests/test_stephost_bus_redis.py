"""Durable Redis Streams bus, proven on a real redis-server started by the test."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from stephost.bus_common import QueueFullError
from stephost.config import HostConfig
from stephost.host import StepHost
from tests.stephost_fixtures.support import fast_config

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url(real_redis_url: str) -> str:
    return real_redis_url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    real = aioredis.from_url(redis_url)
    await real.flushdb()
    yield real
    await real.aclose()


def durable(client: Any, cfg: HostConfig | None = None) -> StepHost:
    return StepHost(cfg or fast_config(claimIdleSeconds=0.2), client, durable_bus=True)


async def test_fan_out_and_chained_emits_are_delivered_and_drained(client: Any) -> None:
    async with durable(client) as host:
        fan_trace = await host.emit("fx.fanout", {"n": 1})
        chain_trace = await host.emit("fx.chain.start", {"hops": 0})
        assert await host.drain(5)
        assert host.queue_depth() == 0
        assert await host.state.get("fanout", "a") == {"data": {"n": 1, "touchedBy": "a"}, "traceId": fan_trace}
        assert await host.state.get("fanout", "b") == {"data": {"n": 1}, "traceId": fan_trace}
        assert await host.state.get("chain", chain_trace) == {"hops": 2}
    assert await client.xlen("t:bus:step:fanout-a") == 0  # acked entries are deleted


async def test_retry_then_dead_letter_and_fail_once_then_succeed(client: Any) -> None:
    async with durable(client) as host:
        await host.emit("fx.flaky", {"id": "dead", "failTimes": 99}, trace_id="t-dead")
        await host.emit("fx.flaky", {"id": "once", "failTimes": 1})
        assert await host.drain(5)
        assert await host.state.get("flaky-calls", "dead") == 3
        assert await host.state.get("flaky-calls", "once") == 2
        assert await host.state.get("flaky-done", "once") == 1
        [letter] = await host.dead_letters()
    assert (letter["step"], letter["attempts"], letter["trace_id"]) == ("flaky", 3, "t-dead")
    assert await client.zcard("t:bus:retry") == 0


async def test_events_survive_a_restart_and_a_dead_workers_entry_is_taken_over(client: Any) -> None:
    first = durable(client)
    await first.start()
    await first.stop()
    offline = durable(client)  # publishes while no worker runs
    trace_a = await offline.emit("fx.chain.next", {"hops": 10})
    trace_b = await offline.emit("fx.chain.next", {"hops": 20})
    # A worker reads the first entry and dies before acknowledging it.
    taken = await client.xreadgroup("workers", "dead-worker", {"t:bus:step:chain-last": ">"}, count=1)
    assert len(taken[0][1]) == 1
    async with durable(client) as host:
        assert await host.drain(5)
        assert await host.state.get("chain", trace_a) == {"hops": 11}
        assert await host.state.get("chain", trace_b) == {"hops": 21}
    pending = await client.xpending("t:bus:step:chain-last", "workers")
    assert pending["pending"] == 0


async def test_bounded_queue_refuses_whole_publish(client: Any) -> None:
    host = durable(client, fast_config(maxSize=3))
    await host.emit("fx.fanout", {"n": 1})
    with pytest.raises(QueueFullError):
        await host.emit("fx.fanout", {"n": 2})
    assert await client.xlen("t:bus:step:fanout-a") == 1
    assert int(await client.get("t:bus:pending")) == 2


async def test_a_background_topic_has_its_own_lane_that_survives_a_dead_worker_and_retries(client: Any) -> None:
    """Issue 20: events of ``backgroundTopics`` (the change feed's) wait in their own stream per step,
    read after the others; a dead worker's entry there is taken over and a retry goes back into it."""
    cfg = fast_config(claimIdleSeconds=0.2, backgroundTopics=["fx.flaky"])
    first = durable(client, cfg)
    await first.start()  # creates the consumer groups
    await first.stop()
    offline = durable(client, cfg)
    await offline.emit("fx.flaky", {"id": "once", "failTimes": 1})
    await offline.emit("fx.flaky", {"id": "twice", "failTimes": 2})
    assert (await client.xlen("t:bus:step:flaky:background"), await client.xlen("t:bus:step:flaky")) == (2, 0)
    taken = await client.xreadgroup("workers", "dead-worker", {"t:bus:step:flaky:background": ">"}, count=1)
    assert len(taken[0][1]) == 1  # a worker took it and died (kill -9) before acknowledging it
    async with durable(client, cfg) as host:
        assert await host.drain(5)
        assert await host.state.get("flaky-done", "once") == 1
        assert await host.state.get("flaky-calls", "twice") == 3  # retried twice, back in its lane
    assert await client.xlen("t:bus:step:flaky:background") == 0
    assert (await client.xpending("t:bus:step:flaky:background", "workers"))["pending"] == 0
    assert await client.xlen("t:bus:step:flaky") == 0  # never in the other lane
