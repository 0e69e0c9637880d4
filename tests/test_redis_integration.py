"""The Redis code proven on a real redis-server (started by the test session on a free port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.sync_state_store import LEASE_MS, Lease, Link, Settled, SyncStateStore
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis(real_redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(real_redis_url)
    await client.flushdb()  # our own throwaway server
    yield client
    await client.aclose()


async def test_lock_is_exclusive_across_clients_and_released_only_by_its_owner(redis: Redis, real_redis_url: str):
    other = Redis.from_url(real_redis_url)
    try:
        a, b = SyncStateStore(redis), SyncStateStore(other)
        token = await a.acquire("rec1")
        assert token is not None
        assert await b.acquire("rec1") is None
        assert 0 < await redis.pttl("bsync:lock:rec1") <= LEASE_MS
        assert await a.extend("rec1", token) and not await b.extend("rec1", "not-the-token")
        assert await b.release("rec1", "not-the-token") is False
        assert await b.is_locked("rec1")
        assert await a.release("rec1", token) is True
        assert await b.acquire("rec1") is not None
    finally:
        await other.aclose()


async def test_lock_expires_after_its_ttl(redis: Redis):
    store = SyncStateStore(redis)
    assert await store.acquire("rec2", ttl_ms=100) is not None
    await asyncio.sleep(0.25)
    assert await store.acquire("rec2") is not None


async def test_release_hands_off_a_flagged_change_atomically(redis: Redis, real_redis_url: str):
    other = Redis.from_url(real_redis_url)
    try:
        holder, waiter = SyncStateStore(redis), SyncStateStore(other)
        token = await holder.acquire("rec4")
        assert token is not None
        await waiter.mark_dirty("rec4")
        # A flagged change: the holder keeps the lease, takes the flag and must run once more.
        assert await holder.release_unless_dirty("rec4", token) is False
        assert await waiter.is_locked("rec4") and not await waiter.is_dirty("rec4")
        # Nothing flagged: released.
        assert await holder.release_unless_dirty("rec4", token) is True
        assert not await waiter.is_locked("rec4")
        # A lease lost to another holder is not released by the old one.
        token2 = await waiter.acquire("rec4")
        assert token2 is not None
        assert await holder.release_unless_dirty("rec4", token) is True
        assert await waiter.is_locked("rec4")
    finally:
        await other.aclose()


async def test_dirty_flag_and_link_round_trip(redis: Redis):
    store = SyncStateStore(redis)
    await store.mark_dirty("rec3")
    assert await store.is_dirty("rec3") is True
    await store.clear_dirty("rec3")
    assert await store.is_dirty("rec3") is False
    link = Link(betnr=5, row_id="r", espo={"lastName": "a"}, advo={"lastName": "b"}, synced_at=1.0)
    await store.save_link("rec3", link)
    assert await store.get_links(["rec3", "nope"]) == {"rec3": link, "nope": None}
    await redis.set("bsync:link:broken", "{not json")
    assert await store.get_link("broken") is None  # unreadable base degrades to a full compare


@pytest.fixture
async def tb_redis(redis: Redis, real_redis_url: str) -> AsyncIterator[Testbed]:
    bed = await start_testbed(redis_url=real_redis_url)
    try:
        yield bed
    finally:
        await bed.close()


async def test_whole_sync_on_real_redis_with_the_durable_bus(tb_redis: Testbed, redis: Redis):
    tb = tb_redis
    assert await redis.exists("bsync:bus:step:beteiligte_sync_event")  # events go through Redis Streams
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"]
    assert await redis.exists(f"bsync:link:{rec['id']}")
    assert [k async for k in redis.scan_iter("beteiligte-sync:advoware:token:*")]  # token shared through Redis
    tb.advo.edit(rec["betnr"], ort="Köln")
    await tb.sync_check()
    assert tb.espo_record(rec["id"])["addressCity"] == "Köln"
    tb.reset_calls()
    await tb.sync_check()
    assert tb.writes() == 0


def _stores(redis: Redis) -> list[SyncStateStore]:
    """The store on a real Redis (Lua), and the same store made to use its WATCH/MULTI forms."""
    lua, watch = SyncStateStore(redis), SyncStateStore(redis)
    watch._scripting = False
    return [lua, watch]


@pytest.mark.parametrize("form", [0, 1], ids=["lua", "watch-multi"])
async def test_the_lease_looks_for_a_settled_link_in_the_same_round_trip(redis: Redis, form: int):
    store = _stores(redis)[form]
    link = Link(betnr=7, row_id="r7", espo={"lastName": "fp"}, advo={"lastName": "fp"}, synced_at=1.0)
    # no link yet: the lease is taken at once, nothing to look at
    first = await store.acquire_unless_settled("rec5")
    assert isinstance(first, Lease) and first.link is None and await store.is_locked("rec5")
    assert await store.acquire_unless_settled("rec5") is None  # held: neither settled nor taken
    await store.release_unless_dirty("rec5", first.token, link=link, clear_retry=True)
    # settled: reported, and no lease taken (a webhook's values are compared first)
    assert await store.acquire_unless_settled("rec5") == Settled(link)
    assert not await store.is_locked("rec5")
    # a failure waiting for its retry is not settled: the lease is taken, with the link
    await redis.set("bsync:retry:rec5", "{}")
    got = await store.acquire_unless_settled("rec5")
    assert isinstance(got, Lease) and got.link == link
    await store.release("rec5", got.token)
    # not asked to look: the lease, with the link
    fresh = await store.acquire_fresh("rec5")
    assert fresh is not None and fresh.link == link


@pytest.mark.parametrize("form", [0, 1], ids=["lua", "watch-multi"])
async def test_the_last_base_is_stored_with_the_release(redis: Redis, form: int):
    store = _stores(redis)[form]
    link = Link(betnr=8, row_id="r8", espo={"lastName": "x"}, advo={"lastName": "y"}, synced_at=2.0)
    lease = await store.acquire_fresh("rec6")
    assert lease is not None
    await redis.set("bsync:retry:rec6", "{}")
    await store.mark_dirty("rec6")  # a change arrived meanwhile: the base is stored, the lease kept
    assert await store.release_unless_dirty("rec6", lease.token, link=link, clear_retry=True) is False
    assert await store.get_link("rec6") == link and await store.betnr_owner(8) == "rec6"
    assert not await redis.exists("bsync:retry:rec6") and await store.is_locked("rec6")
    newer = Link(betnr=8, row_id="r9", espo={"lastName": "z"}, advo={"lastName": "z"}, synced_at=3.0)
    assert await store.release_unless_dirty("rec6", lease.token, link=newer) is True
    assert await store.get_link("rec6") == newer and not await store.is_locked("rec6")
