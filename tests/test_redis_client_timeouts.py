"""The service's Redis client gives up on a frozen Redis instead of hanging a handler forever, and
its read timeout does not break the bus's blocking reads (the outage tests use the same options)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.settings import Settings
from entrypoints.bootstrap import REDIS_SOCKET_TIMEOUT_S, make_redis
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

DEADLINE_S = 60.0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer()
    srv.start()
    yield srv
    srv.resume()
    srv.close()


async def test_a_command_on_a_frozen_redis_fails_after_the_socket_timeout(server: RedisServer) -> None:
    client = make_redis(Settings(redis_url=server.url))
    try:
        await client.set("k", "v")
        server.freeze()
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(client.get("k"), DEADLINE_S)  # the deadline only guards the test
        assert time.monotonic() - started >= REDIS_SOCKET_TIMEOUT_S
        server.resume()
        assert await client.get("k") == b"v"  # the client reconnects by itself
    finally:
        await client.aclose()
