"""The per-record writer lease in Redis (part of :class:`adapters.sync_state_store.SyncStateStore`).

- ``lock:<espoId>``  ``SET NX PX`` with a token and a short TTL that the holder's heartbeat extends;
                     released only by its owner, and only when no change is waiting
                     (:meth:`RecordLeases.release_unless_dirty`, one atomic step)
- ``dirty:<espoId>`` a change arrived while the lock was held: the holder runs once more

On a real Redis each step is one Lua script, one round trip: taking the lease also reads the link
(and can first look whether a webhook's record is settled); the release also stores the pass's last
base. Without scripting (fakeredis in the fast tests) the same semantics are kept with WATCH/MULTI.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import ResponseError, WatchError

from adapters.link_codec import Link, decode_link
from adapters.redis_ops import as_text, delete_if_equals, extend_if_equals

LEASE_MS = 30 * 1000  # a dead worker's records are free again after this
DIRTY_TTL_MS = 60 * 60 * 1000
NO_SCRIPTING = "unknown command"  # fakeredis without Lua: the WATCH/MULTI forms below are used

# KEYS: lock, dirty, link, retry. ARGV: token, ttl ms, "1" to look for a settled link first. The
# lease, the flags set so far taken, and the link as the lease finds it (read under the lease, so
# nobody changes it meanwhile), in one step: {1, link}. {2, link}: not taken, the link is settled
# (no sync holds the lease, no failure waits for a retry): the caller compares a webhook's values.
# {0}: another holder has the lease.
_ACQUIRE_FRESH = """
local link = redis.call('GET', KEYS[3])
if ARGV[3] == '1' and link and redis.call('EXISTS', KEYS[4]) == 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  return {2, link}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return {1, link}
end
return {0}
"""
# KEYS: lock, dirty. ARGV: token, ttl ms. 1: released (or lost), 0: a flag was taken, run once more.
_RELEASE_UNLESS_DIRTY = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 1
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('DEL', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class Lease:
    """A record's writer lease, and its link as it was when the lease was taken."""

    token: str
    link: Link | None


@dataclass(frozen=True)
class Settled:
    """No lease taken: the record's link is the settled result of its last sync."""

    link: Link


class _StoreParts(Protocol):
    """What the lease takes from :class:`adapters.sync_state_store.SyncStateStore`."""

    redis: Redis

    def _k(self, kind: str, espo_id: str) -> str: ...

    def _queue_link(self, pipe: Any, espo_id: str, link: Link | None, *, clear_retry: bool) -> None: ...

    async def save_link(self, espo_id: str, link: Link, *, clear_create_attempt: bool = False,
                        clear_retry: bool = False) -> None: ...

    async def clear_retry(self, espo_id: str) -> None: ...

    async def get_link(self, espo_id: str) -> Link | None: ...


class RecordLeases(_StoreParts):
    """The lease half of the store (a base class of it: one object, one key layout)."""

    def _register_lease_scripts(self, redis: Redis) -> None:
        self._scripting = True
        self._acquire_fresh = redis.register_script(_ACQUIRE_FRESH)
        self._release_unless_dirty = redis.register_script(_RELEASE_UNLESS_DIRTY)

    # -- lock ---------------------------------------------------------------------------------
    async def acquire(self, espo_id: str, ttl_ms: int = LEASE_MS) -> str | None:
        token = secrets.token_hex(8)
        ok = await self.redis.set(self._k("lock", espo_id), token, nx=True, px=ttl_ms)
        return token if ok else None

    async def acquire_fresh(self, espo_id: str, ttl_ms: int = LEASE_MS) -> Lease | None:
        """:meth:`acquire`, and on success take every "dirty" flag set so far (the pass about to run
        reads after them) and read the link: one atomic step, one round trip."""
        got = await self.acquire_unless_settled(espo_id, ttl_ms, look=False)
        if isinstance(got, Settled):  # pragma: no cover - never without look
            raise RuntimeError("the lease script looked for a settled link although it was not asked to")
        return got

    async def acquire_unless_settled(self, espo_id: str, ttl_ms: int = LEASE_MS, *,
                                     look: bool = True) -> Lease | Settled | None:
        """:class:`Settled` when the record's link is settled (:meth:`settled_link`; only with
        ``look``), else :meth:`acquire_fresh`: the check of a webhook's values and the lease of a
        record that needs a sync cost one round trip, not two."""
        if self._scripting:
            token = secrets.token_hex(8)
            keys = [self._k(kind, espo_id) for kind in ("lock", "dirty", "link", "retry")]
            try:
                reply = await self._acquire_fresh(keys=keys, args=[token, ttl_ms, "1" if look else "0"])
            except ResponseError as exc:
                if NO_SCRIPTING not in str(exc):
                    raise
                self._scripting = False
            else:
                raw = reply[1] if len(reply) > 1 else None
                link = decode_link(raw) if raw else None
                if int(reply[0]) == 2 and link is not None:
                    return Settled(link)
                return Lease(token, link) if int(reply[0]) == 1 else None
        if look and (settled := await self.settled_link(espo_id)) is not None:
            return Settled(settled)
        taken = await self.acquire(espo_id, ttl_ms)
        if taken is None:
            return None
        await self.clear_dirty(espo_id)
        return Lease(taken, await self.get_link(espo_id))

    async def extend(self, espo_id: str, token: str, ttl_ms: int = LEASE_MS) -> bool:
        """The holder's heartbeat: ``False`` when the lease was lost (lapsed or taken over)."""
        return await extend_if_equals(self.redis, self._k("lock", espo_id), token, ttl_ms)

    async def release(self, espo_id: str, token: str) -> bool:
        return await delete_if_equals(self.redis, self._k("lock", espo_id), token)

    async def release_unless_dirty(self, espo_id: str, token: str, ttl_ms: int = LEASE_MS, *,
                                   link: Link | None = None, clear_retry: bool = False) -> bool:
        """One atomic step: if a change arrived while we held the lock, take its flag, keep the lock
        and answer ``False`` (run once more); otherwise release and answer ``True``. No flag set in
        between can be missed: one Lua script, or (no scripting) a WATCH/MULTI transaction that is
        retried when either key moves. ``link`` and ``clear_retry``: :meth:`save_link` first, in the
        same transaction (a pass's last base and its release are one round trip)."""
        lock, dirty = self._k("lock", espo_id), self._k("dirty", espo_id)
        if self._scripting:
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    self._queue_link(pipe, espo_id, link, clear_retry=clear_retry)
                    await self._release_unless_dirty(keys=[lock, dirty], args=[token, ttl_ms], client=pipe)
                    replies = await pipe.execute()
                return bool(replies[-1])
            except ResponseError as exc:
                if NO_SCRIPTING not in str(exc):
                    raise
                self._scripting = False
        if link is not None:
            await self.save_link(espo_id, link, clear_retry=clear_retry)
        elif clear_retry:
            await self.clear_retry(espo_id)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(lock, dirty)
                    holder, flag = await pipe.mget(lock, dirty)
                    if as_text(holder) != token:
                        await pipe.unwatch()
                        return True  # lease lost: the new holder (or the waiter) covers the change
                    waiting = flag is not None
                    pipe.multi()
                    if waiting:
                        pipe.delete(dirty)
                        pipe.pexpire(lock, ttl_ms)
                    else:
                        pipe.delete(lock)
                    await pipe.execute()
                    return not waiting
                except WatchError:
                    continue

    async def settled_link(self, espo_id: str) -> Link | None:
        """The link, only when it is the settled result of the last sync: no sync holds the lease and
        no failure waits for a retry, read in one transaction (a snapshot, not three reads)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self._k("link", espo_id))
            pipe.exists(self._k("retry", espo_id))
            pipe.exists(self._k("lock", espo_id))
            raw, retry, locked = await pipe.execute()
        if retry or locked or not raw:
            return None
        return decode_link(raw)

    async def is_locked(self, espo_id: str) -> bool:
        return bool(await self.redis.exists(self._k("lock", espo_id)))

    async def mark_dirty(self, espo_id: str) -> None:
        await self.redis.set(self._k("dirty", espo_id), "1", px=DIRTY_TTL_MS)

    async def is_dirty(self, espo_id: str) -> bool:
        return bool(await self.redis.exists(self._k("dirty", espo_id)))

    async def clear_dirty(self, espo_id: str) -> None:
        await self.redis.delete(self._k("dirty", espo_id))

