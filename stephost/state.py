"""Step state (``context.state``) and the dead-letter store, both kept in Redis as JSON.

Layout (``<p>`` is the configured key prefix):

* ``<p>:state:<group>`` - a hash, field = key, value = JSON
* ``<p>:deadletters``   - a list of JSON records ``{topic, step, data, error, attempts, trace_id, failed_at}``

Works with any ``redis.asyncio`` client (real or fakeredis), with or without ``decode_responses``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol


class StateStore(Protocol):
    """What ``context.state`` offers to steps (Motia's state shape)."""

    async def get(self, group: str, key: str) -> Any: ...
    async def set(self, group: str, key: str, value: Any) -> Any: ...
    async def delete(self, group: str, key: str) -> Any: ...
    async def get_group(self, group: str) -> list[Any]: ...
    async def clear(self, group: str) -> None: ...


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"state values must be JSON-serialisable: {exc}") from exc


class RedisState:
    """:class:`StateStore` on a ``redis.asyncio`` client."""

    def __init__(self, redis: Any, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix

    def _key(self, group: str) -> str:
        if not isinstance(group, str) or not group:
            raise ValueError("state group must be a non-empty string")
        return f"{self._prefix}:state:{group}"

    async def get(self, group: str, key: str) -> Any:
        raw = await self._redis.hget(self._key(group), key)
        return None if raw is None else json.loads(_text(raw))

    async def set(self, group: str, key: str, value: Any) -> Any:
        await self._redis.hset(self._key(group), key, _dumps(value))
        return value

    async def delete(self, group: str, key: str) -> Any:
        """Remove ``key`` and return its previous value (None if absent)."""
        name = self._key(group)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(name, key)
            pipe.hdel(name, key)
            raw, _ = await pipe.execute()
        return None if raw is None else json.loads(_text(raw))

    async def get_group(self, group: str) -> list[Any]:
        raw = await self._redis.hgetall(self._key(group))
        return [json.loads(_text(v)) for _, v in sorted(raw.items(), key=lambda kv: _text(kv[0]))]

    async def clear(self, group: str) -> None:
        await self._redis.delete(self._key(group))


def dead_letter_record(
    *, topic: str, step: str, data: Any, error: str, attempts: int, trace_id: str
) -> dict[str, Any]:
    return {
        "topic": topic,
        "step": step,
        "data": data,
        "error": error,
        "attempts": attempts,
        "trace_id": trace_id,
        "failed_at": datetime.now(UTC).isoformat(),
    }


class DeadLetterStore:
    """Events that failed every attempt, oldest first, in ``<prefix>:deadletters``."""

    def __init__(self, redis: Any, key_prefix: str) -> None:
        self._redis = redis
        self.key = f"{key_prefix}:deadletters"

    async def add(self, record: dict[str, Any]) -> None:
        await self._redis.rpush(self.key, json.dumps(record, default=str, ensure_ascii=False))

    async def read_all(self) -> list[dict[str, Any]]:
        return [json.loads(_text(r)) for r in await self._redis.lrange(self.key, 0, -1)]

    async def count(self) -> int:
        return int(await self._redis.llen(self.key))
