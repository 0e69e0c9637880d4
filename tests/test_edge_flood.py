"""A bounded flood against the service in its own process, served like ``serve`` (issue 7, point 4).

Idle and trickling sockets, unsigned 4 MiB bodies and 160 concurrent signed 50-item batches at once.
Only outcomes are asserted; ``bench/edge_flood.py`` prints the latencies and memory figures.
"""

from __future__ import annotations

from collections import Counter

import pytest
import redis

from tests.edge_service import edge_service
from tests.flood import MIB, FloodSpec, rss_mib, run_flood

BODY_BUDGET = 16 * MIB
# Bodies held at once, each possibly copied once, plus the interpreter's own slack.
RSS_GROWTH_BOUND_MIB = 2 * BODY_BUDGET / MIB + 32


FLOOD_DB = 9  # its own database of the session's redis-server, emptied first: no queue left by others


@pytest.fixture(params=["embedded", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    """Both stores: the real Redis (its pool of 100 connections) is where 150 batches once got 503s."""
    if request.param == "embedded":
        return None
    url = request.getfixturevalue("real_redis_url").rsplit("/", 1)[0] + f"/{FLOOD_DB}"
    redis.Redis.from_url(url).flushdb()
    return str(url)


async def test_flood_keeps_health_and_answers_every_signed_batch(redis_url: str | None) -> None:
    spec = FloodSpec(signed_batches=160, unsigned_large=40, trickle_every_s=0.2, give_up_s=30)
    with edge_service(redis_url=redis_url, headerTimeoutSeconds=1, bodyTimeoutSeconds=1,
                      maxBufferedBodyBytes=BODY_BUDGET) as svc:
        before = rss_mib(svc.pid)
        result = await run_flood(svc.url, svc.hooks["update"], spec)
        growth = rss_mib(svc.pid) - before
        stats = svc.stop()

    signed = Counter(result.signed)
    assert set(signed) <= {200, 503}, signed  # never dropped, reset or timed out
    assert signed[200] >= len(result.signed) // 2  # a flood on an empty queue is mostly served
    assert result.health and set(result.health) == {200}, Counter(result.health)
    # Unsigned: 401, or 503 over the body budget (a large body refused unread may also see the
    # connection closed under it: it is not worth receiving). Never 200.
    assert 200 not in result.unsigned and {401, 503} & set(result.unsigned), Counter(result.unsigned)
    assert set(result.trickled_bodies) <= {408, "closed"}, Counter(result.trickled_bodies)
    assert result.sockets_left_open == 0
    assert result.sockets_closed_by_server == spec.idle_sockets + spec.trickled_headers
    assert growth < RSS_GROWTH_BOUND_MIB, f"RSS grew {growth:.0f} MiB"
    # Every queued event comes from a signed batch that was answered 200, and all of them were queued.
    assert stats["published"] == result.signed_items_accepted == signed[200] * spec.items_per_batch
