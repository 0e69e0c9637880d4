"""Pairs an operator declared different parties (issue 11), in Redis: ids only, no client data.

``bsync:mdecl:<espo id>`` is the set of ``betNr`` that are *not* this EspoCRM record's party: a
``keep=no`` row applied by ``match --apply --yes``, or every candidate of the record at
``match --create-new``. The create does not count them as candidates (it creates instead of holding
the record for a person); ``match`` writes them to its review file as ``no`` again. A row applied
with ``yes`` takes its decline back.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from adapters.redis_ops import as_text


class MatchDeclines:
    def __init__(self, redis: Redis, prefix: str = "bsync") -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, espo_id: str) -> str:
        return f"{self.prefix}:mdecl:{espo_id}"

    async def add(self, espo_id: str, betnrs: Iterable[int]) -> int:
        """Declines these pairs; how many were not declined before (0: done already, idempotent)."""
        members = sorted({int(b) for b in betnrs})
        return int(await self.redis.sadd(self._key(espo_id), *members)) if members else 0

    async def forget(self, espo_id: str, betnr: int) -> None:
        await self.redis.srem(self._key(espo_id), betnr)

    async def of(self, espo_id: str) -> set[int]:
        return {int(as_text(b) or 0) for b in await self.redis.smembers(self._key(espo_id))}

    async def of_many(self, espo_ids: list[str]) -> dict[str, set[int]]:
        """One round trip for many records (the scan's review file)."""
        pipe = self.redis.pipeline(transaction=False)
        for espo_id in espo_ids:
            pipe.smembers(self._key(espo_id))
        sets = await pipe.execute() if espo_ids else []
        return {i: {int(as_text(b) or 0) for b in raw} for i, raw in zip(espo_ids, sets, strict=True) if raw}
