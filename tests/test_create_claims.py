"""Claims on a party's identity during a create (adapters/create_claims.py), on a real Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from adapters.create_claims import CreateClaims

pytestmark = [pytest.mark.redis]


async def test_a_twin_gets_nothing_while_one_key_is_claimed_and_everything_after_release(real_redis_url: str) -> None:
    redis = Redis.from_url(real_redis_url)
    claims = CreateClaims(redis, prefix="claimtest")
    try:
        assert await claims.claim("a", ["nd:mueller|anna|1980-04-12", "ne:mueller|anna|x@y.de"]) is None
        assert await claims.claim("a", ["nd:mueller|anna|1980-04-12"]) is None  # its own claim again
        # the twin shares one key: it is told who creates, and keeps none of its other keys
        assert await claims.claim("b", ["np:mueller|anna|10115", "ne:mueller|anna|x@y.de"]) == "a"
        assert len(await redis.keys("claimtest:mcreating:*")) == 2
        await claims.release("b", ["nd:mueller|anna|1980-04-12"])  # never another record's claim
        assert len(await redis.keys("claimtest:mcreating:*")) == 2
        await claims.release("a", ["nd:mueller|anna|1980-04-12", "ne:mueller|anna|x@y.de"])
        assert await redis.keys("claimtest:mcreating:*") == []
        assert await claims.claim("b", ["np:mueller|anna|10115", "ne:mueller|anna|x@y.de"]) is None
        ttls = [await redis.pttl(k) for k in await redis.keys("claimtest:mcreating:*")]
        assert len(ttls) == 2 and all(0 < t <= 60_000 for t in ttls), ttls  # a crashed create's claim runs out
    finally:
        for k in await redis.keys("claimtest:*"):
            await redis.delete(k)
        await redis.aclose()
