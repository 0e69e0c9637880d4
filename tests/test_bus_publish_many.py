"""``publish_many`` / ``context.emit_many``: a webhook batch is queued in one bus call, all or nothing,
on both buses (in-process and Redis Streams on a real redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from stephost.bus_common import QueueFullError
from stephost.context import TopicNotDeclaredError
from stephost.host import StepHost
from tests.stephost_fixtures.support import fast_config


@pytest.fixture(params=["memory", "redis"])
async def make_host(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """Builds (unstarted) hosts on the bus under test; queue settings go to ``fast_config``."""
    if request.param == "memory":
        yield lambda **queue: StepHost(fast_config(**queue), fakeredis.FakeAsyncRedis())
        return
    client = aioredis.from_url(request.getfixturevalue("real_redis_url"))
    await client.flushdb()
    yield lambda **queue: StepHost(fast_config(claimIdleSeconds=0.2, **queue), client, durable_bus=True)
    await client.aclose()


async def test_every_item_is_delivered_once(make_host: Any) -> None:
    async with make_host() as host:
        ids = [f"i{n}" for n in range(60)]
        count = await host.bus.publish_many("fx.flaky", [{"id": i, "failTimes": 0} for i in ids], "t-batch")
        assert count == 60
        assert await host.drain(10)
        assert [await host.state.get("flaky-done", i) for i in ids] == [1] * 60
        assert host.bus_stats()["published"] == 60


async def test_a_batch_that_does_not_fit_queues_nothing(make_host: Any) -> None:
    host = make_host(maxSize=10)
    await host.start()
    try:
        await host.bus.publish_many("fx.slow", [{"id": "a", "seconds": 1}], "t-1")
        with pytest.raises(QueueFullError):
            await host.bus.publish_many("fx.flaky", [{"id": f"x{n}", "failTimes": 0} for n in range(10)], "t-2")
        assert host.queue_depth() <= 1
        assert await host.drain(10)
        assert await host.state.get_group("flaky-done") == []
    finally:
        await host.stop()


async def test_emit_many_checks_the_declared_topic(make_host: Any) -> None:
    async with make_host() as host:
        step = host.step("chain-first")
        ctx = host.make_context(step)
        with pytest.raises(TopicNotDeclaredError):
            await ctx.emit_many("fx.flaky", [{"id": "no", "failTimes": 0}])
        assert host.bus_stats()["published"] == 0
