"""context.state and dead letters on fakeredis and on a real redis-server started by the test."""

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from stephost.host import StepHost
from stephost.state import RedisState
from tests.stephost_fixtures.support import fast_config


@pytest.fixture
def redis_url(real_redis_url: str) -> str:
    return real_redis_url


@pytest.fixture(params=["fakeredis", pytest.param("redis-server", marks=pytest.mark.redis)])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "fakeredis":
        yield fakeredis.FakeAsyncRedis()
        return
    real = aioredis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    await real.flushdb()
    yield real
    await real.aclose()


async def test_get_set_delete(client: Any) -> None:
    state = RedisState(client, "p")
    assert await state.get("g", "k") is None
    value = {"betnr": 7, "names": ["a", "ü"], "ok": True, "none": None}
    assert await state.set("g", "k", value) == value
    assert await state.get("g", "k") == value
    assert await state.delete("g", "k") == value
    assert await state.get("g", "k") is None
    assert await state.delete("g", "k") is None


async def test_get_group_and_clear(client: Any) -> None:
    state = RedisState(client, "p")
    await state.set("g", "b", 2)
    await state.set("g", "a", 1)
    await state.set("other", "a", "x")
    assert await state.get_group("g") == [1, 2]
    await state.clear("g")
    assert await state.get_group("g") == []
    assert await state.get("other", "a") == "x"
    assert await client.exists("p:state:other") == 1


async def test_prefixes_isolate_hosts(client: Any) -> None:
    await RedisState(client, "one").set("g", "k", 1)
    assert await RedisState(client, "two").get("g", "k") is None


async def test_non_json_values_are_refused(client: Any) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await RedisState(client, "p").set("g", "k", object())


async def test_host_retries_and_dead_letters_through_real_redis(client: Any) -> None:
    async with StepHost(fast_config(), client) as host:
        await host.emit("fx.flaky", {"id": "r", "failTimes": 99}, trace_id="t-real")
        await host.emit("fx.flaky", {"id": "s", "failTimes": 1})
        assert await host.drain(5)
        assert await host.state.get("flaky-done", "s") == 1
        [letter] = await host.dead_letters()
    assert letter["trace_id"] == "t-real" and letter["attempts"] == 3
    assert await client.llen("t:deadletters") == 1
