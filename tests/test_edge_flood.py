"""A bounded flood against the service in its own process, served like ``serve`` (issue 7, point 4).

Idle and trickling sockets, unsigned 4 MiB bodies and 160 concurrent signed 50-item batches at once.
Only outcomes are asserted; ``bench/edge_flood.py`` prints the latencies and memory figures.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import redis

from tests.edge_service import edge_service
from tests.flood import MIB, FloodSpec, flood_client, partial_headers_swarm, post_signed, rss_mib, run_flood

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


async def test_many_idle_connections_from_one_address_do_not_crowd_out_another() -> None:
    """Issue 19: clients from one address hold connections open with part of their headers and
    reconnect when cut; with more of them than maxConnections, every signed webhook and every /health
    from another address is still answered 200 (that address's slowest connections are shed).
    ``bench/edge_connections.py`` runs 2000 of them and prints the latencies."""
    swarm, swarm_source = 300, "127.0.0.2"  # loopback: another client address on this machine
    with edge_service(maxConnections=100, maxConnectionsPerClient=20, headerTimeoutSeconds=1) as svc:
        stop = asyncio.Event()
        flood = asyncio.create_task(partial_headers_swarm(svc.url, swarm, swarm_source, stop))
        await asyncio.sleep(2)  # the swarm is at full strength
        async with flood_client(svc.url) as client:
            signed = [(await post_signed(client, svc.hooks["update"], 5))[0] for _ in range(20)]
            health = [(await client.get("/health")).status_code for _ in range(20)]
        stop.set()
        cut = await flood
        svc.stop()
    assert Counter(signed) == {200: 20}, Counter(signed)
    assert Counter(health) == {200: 20}, Counter(health)
    assert cut >= swarm // 2  # the swarm was cut (beyond its share: within 1 s) and came back, never served
