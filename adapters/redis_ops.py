"""Small Redis operations shared by the lock and the token cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.exceptions import WatchError


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def _if_equals(redis: Any, key: str, expected: str, act: Callable[[Any], Any]) -> bool:
    """Run ``act(pipeline)`` in one transaction only while ``key`` holds ``expected`` (WATCH/MULTI:
    atomic without Lua, so it works on fakeredis too)."""
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            if as_text(await pipe.get(key)) != expected:
                await pipe.unwatch()
                return False
            pipe.multi()
            act(pipe)
            await pipe.execute()
            return True
        except WatchError:
            return False


async def delete_if_equals(redis: Any, key: str, expected: str) -> bool:
    """Compare-and-delete: a lock or token is removed only by its owner."""
    return await _if_equals(redis, key, expected, lambda pipe: pipe.delete(key))


async def extend_if_equals(redis: Any, key: str, expected: str, ttl_ms: int) -> bool:
    """Compare-and-pexpire: a lease is extended only for its owner."""
    return await _if_equals(redis, key, expected, lambda pipe: pipe.pexpire(key, ttl_ms))


async def set_if_equals(redis: Any, key: str, expected: str, value: str) -> bool:
    """Compare-and-set: ``key`` takes ``value`` only while it still holds ``expected`` (a writer in between
    wins), keeping its expiry."""
    return await _if_equals(redis, key, expected, lambda pipe: pipe.set(key, value, keepttl=True))
