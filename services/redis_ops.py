"""Small Redis operations shared by the lock and the token cache."""

from __future__ import annotations

from typing import Any

from redis.exceptions import WatchError


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def delete_if_equals(redis: Any, key: str, expected: str) -> bool:
    """Compare-and-delete with WATCH/MULTI: atomic without Lua (works on fakeredis too)."""
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            if as_text(await pipe.get(key)) != expected:
                await pipe.unwatch()
                return False
            pipe.multi()
            pipe.delete(key)
            await pipe.execute()
            return True
        except WatchError:
            return False


async def extend_if_equals(redis: Any, key: str, expected: str, ttl_ms: int) -> bool:
    """Compare-and-pexpire with WATCH/MULTI: extends a lease only for its owner."""
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            if as_text(await pipe.get(key)) != expected:
                await pipe.unwatch()
                return False
            pipe.multi()
            pipe.pexpire(key, ttl_ms)
            await pipe.execute()
            return True
        except WatchError:
            return False
