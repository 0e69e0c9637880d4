"""Claims on a party's identity while it is being created in Advoware (issue 11: twins at once).

The create's lookup (:mod:`sync.create_match`) finds a Beteiligter only once it exists: two EspoCRM
twins created at the same moment (a double submit, an import, one webhook batch) would both look,
find nothing, and both ``POST``. So a create first claims the hashes of the record's match keys
(``bsync:mcreating:<hash>`` = EspoCRM id, ``SET NX`` with a TTL) and holds them across lookup, ``POST``
and indexing; a twin that finds one of them claimed by another record waits for a retry, and then
the lookup finds the first one's Beteiligter. Hashes and ids only, no client data.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from adapters.match_index import key_hash
from adapters.redis_ops import as_text

CLAIM_TTL_MS = 60_000  # longer than a create takes; a claim of a crashed process runs out by itself


class CreateClaims:
    def __init__(self, redis: Redis, prefix: str = "bsync") -> None:
        self.redis = redis
        self.prefix = prefix

    def _k(self, h: str) -> str:
        return f"{self.prefix}:mcreating:{h}"

    async def claim(self, espo_id: str, keys: Iterable[str]) -> str | None:
        """Claim every key for ``espo_id``; returns the EspoCRM id that holds one of them already
        (nothing is then kept claimed), or ``None`` when all are ours."""
        names = sorted({self._k(key_hash(k)) for k in keys})
        if not names:
            return None
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.set(name, espo_id, nx=True, px=CLAIM_TTL_MS)
        got = await pipe.execute()
        taken = [n for n, ok in zip(names, got, strict=True) if not ok]
        owners = [as_text(o) for o in await self.redis.mget(taken)] if taken else []
        other = next((o for o in owners if o is not None and o != espo_id), None)
        if other is not None:
            await self.release(espo_id, [n for n, ok in zip(names, got, strict=True) if ok], hashed=True)
        return other

    async def release(self, espo_id: str, keys: Iterable[str], *, hashed: bool = False) -> None:
        """Drop this record's claims (never another record's)."""
        names = list(keys) if hashed else sorted({self._k(key_hash(k)) for k in keys})
        if not names:
            return
        owners = await self.redis.mget(names)
        mine = [n for n, o in zip(names, owners, strict=True) if as_text(o) == espo_id]
        if mine:
            await self.redis.delete(*mine)
