"""The shared Advoware token cache: fakeredis for speed, a real redis-server where Redis matters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import fakeredis
import pytest
import redis.asyncio as aioredis

from adapters.advoware_token_cache import AdvowareTokenCache
from tests.redis_server import redis_server

needs_redis = pytest.mark.redis  # a real redis-server; missing binary fails, never skips


class CountingFetcher:
    def __init__(self, expires_in: float = 3600, delay: float = 0.0) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.delay = delay

    async def __call__(self) -> tuple[str, float]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return f"token-{self.calls}", self.expires_in


@pytest.fixture
async def real_redis_url() -> AsyncIterator[str]:
    with redis_server() as url:
        yield url


async def test_fetches_once_then_serves_cached() -> None:
    cache = AdvowareTokenCache(fakeredis.FakeAsyncRedis(), margin=60)
    fetch = CountingFetcher()
    assert await cache.get_or_fetch(fetch) == "token-1"
    assert await cache.get_or_fetch(fetch) == "token-1"
    assert fetch.calls == 1
    assert 3539_000 < await cache.redis.pttl(cache.key) <= 3540_000


async def test_short_lived_token_kept_for_half_its_life() -> None:
    cache = AdvowareTokenCache(fakeredis.FakeAsyncRedis(decode_responses=True), margin=60)
    await cache.store("short", expires_in=30)
    assert 14_000 < await cache.redis.pttl(cache.key) <= 15_000
    assert await cache.get() == "short"


async def test_invalidate_only_removes_same_token() -> None:
    cache = AdvowareTokenCache(fakeredis.FakeAsyncRedis())
    await cache.store("new-token", 3600)
    assert await cache.invalidate("old-token") is False
    assert await cache.get() == "new-token"
    assert await cache.invalidate("new-token") is True
    assert await cache.get() is None


@pytest.mark.redis
@needs_redis
async def test_concurrent_processes_fetch_once(real_redis_url: str) -> None:
    clients = [aioredis.from_url(real_redis_url) for _ in range(5)]
    fetch = CountingFetcher(delay=0.1)
    try:
        caches = [AdvowareTokenCache(c, poll_interval=0.01) for c in clients]
        tokens = await asyncio.gather(*(cache.get_or_fetch(fetch) for cache in caches))
        assert tokens == ["token-1"] * 5
        assert fetch.calls == 1
        assert await clients[0].exists(caches[0].lock_key) == 0  # lock released
    finally:
        for c in clients:
            await c.aclose()


@pytest.mark.redis
@needs_redis
async def test_token_expires_before_its_lifetime_in_real_redis(real_redis_url: str) -> None:
    client = aioredis.from_url(real_redis_url)
    try:
        cache = AdvowareTokenCache(client, margin=0.2)
        await cache.store("brief", expires_in=0.5)  # kept 0.3 s: gone 0.2 s before it expires
        assert await cache.get() == "brief"
        assert 0 < await client.pttl(cache.key) <= 300
        await asyncio.sleep(0.45)
        assert await cache.get() is None
    finally:
        await client.aclose()


@pytest.mark.redis
@needs_redis
async def test_lock_of_a_dead_process_expires(real_redis_url: str) -> None:
    client = aioredis.from_url(real_redis_url)
    try:
        cache = AdvowareTokenCache(client, poll_interval=0.02)
        await client.set(cache.lock_key, "crashed-process", px=150)
        fetch = CountingFetcher()
        assert await asyncio.wait_for(cache.get_or_fetch(fetch), timeout=2) == "token-1"
        assert fetch.calls == 1
    finally:
        await client.aclose()


async def test_token_held_in_memory_until_a_401() -> None:
    """Between calls the token comes from memory: Redis is read again only after invalidate()."""
    redis = fakeredis.FakeAsyncRedis()
    cache, other = AdvowareTokenCache(redis), AdvowareTokenCache(redis)
    fetch = CountingFetcher()
    assert await cache.get_or_fetch(fetch) == "token-1"
    await redis.set(cache.key, "renewed-elsewhere", px=60_000)  # another process renewed it
    assert await cache.get_or_fetch(fetch) == "token-1"  # no Redis read per call
    assert await other.get_or_fetch(fetch) == "renewed-elsewhere"  # a fresh process reads Redis
    assert await cache.invalidate("token-1") is False  # our 401: Redis holds another token already
    assert await cache.get_or_fetch(fetch) == "renewed-elsewhere"
    assert fetch.calls == 1


@pytest.mark.redis
@needs_redis
async def test_token_read_from_redis_is_held_only_for_its_ttl(real_redis_url: str) -> None:
    client = aioredis.from_url(real_redis_url)
    try:
        writer, reader = AdvowareTokenCache(client, margin=0.2), AdvowareTokenCache(client, margin=0.2)
        await writer.store("brief", expires_in=0.5)  # kept 0.3 s in Redis
        fetch = CountingFetcher()
        assert await reader.get_or_fetch(fetch) == "brief"
        deadline = asyncio.get_running_loop().time() + 10
        while await reader.get_or_fetch(fetch) == "brief":  # held in memory until the key's TTL ends
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert fetch.calls == 1 and await reader.get() == "token-1"
    finally:
        await client.aclose()
