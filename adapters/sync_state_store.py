"""What the sync keeps in Redis: per-record lock, the base of the last sync, retry schedule.

Keys (prefix ``bsync``):
- ``lock:<espoId>``   the writer lease: ``SET NX PX`` with a token and a short TTL that the holder's
                      heartbeat extends; released only by its owner, and only when no change is
                      waiting (:meth:`release_unless_dirty`, one atomic step)
- ``dirty:<espoId>``  a change arrived while the lock was held: the holder runs once more
- ``edited:<espoId>`` when a person last changed the EspoCRM record (for ``newest_wins``: our own
                      writes move ``modifiedAt`` too)
- ``link:<espoId>``   JSON base: betnr, rowId, per-field fingerprints of both sides at the last sync,
                      compact (:func:`encode_link`: fingerprints by field position, 11 characters each;
                      under 1 KB per linked record with its other keys); the older spelled-out form is
                      still read
- ``betnr_owner``     hash betNr -> espoId of every link (a lost create never adopts another's twin)
- ``create:<espoId>`` JSON: a create attempt in flight (its start, the values each attempt sent)
- ``retry:<espoId>``  JSON retry schedule: next attempt, fatal flag, EspoCRM fingerprint at failure
- ``retry_due``  sorted set: espoId by the time its retry is due (queued then, every few seconds)
Losing any of this is safe: a missing base degrades to a full compare, a missing lock to the
``syncing`` status check, a missing retry record to an immediate retry.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis

from adapters.link_codec import Link, decode_link, encode_link
from adapters.record_lease import LEASE_MS, Lease, RecordLeases, Settled
from adapters.redis_ops import as_text, set_if_equals
from domain.fingerprint_key import keyed, scheme

__all__ = ["LEASE_MS", "CreateAttempt", "Lease", "Link", "RetryState", "Settled", "SyncStateStore", "decode_link",
           "encode_link"]

CREATE_ATTEMPT_TTL_S = 7 * 24 * 3600
DUE_BATCH = 1000  # retries queued per run of the retry step at most (the rest on its next run)
T = TypeVar("T")

@dataclass
class CreateAttempt:
    at: datetime  # when the first attempt started
    sent: list[dict[str, str]]  # fingerprints of the values each attempt sent


@dataclass
class RetryState:
    count: int
    next_at: float  # epoch seconds; 0 = now
    fatal: bool
    espo_fp: str  # fingerprint of EspoCRM's mapped values when it failed
    advo_row_id: str | None
    message: str
    # Held for a person (a possible duplicate before a create): the sync check looks again whether
    # its candidates are still there, although nothing changed in EspoCRM.
    held: bool = False


class SyncStateStore(RecordLeases):
    def __init__(self, redis: Redis, prefix: str = "bsync") -> None:
        self.redis = redis
        self.prefix = prefix
        self._register_lease_scripts(redis)

    def _k(self, kind: str, espo_id: str) -> str:
        return f"{self.prefix}:{kind}:{espo_id}"

    # -- a person's last EspoCRM edit ---------------------------------------------------------------
    async def espo_edited_at(self, espo_id: str) -> str | None:
        return as_text(await self.redis.get(self._k("edited", espo_id)))

    async def save_espo_edited_at(self, espo_id: str, modified_at: str) -> None:
        await self.redis.set(self._k("edited", espo_id), modified_at)

    async def forget_espo_edited_at(self, espo_id: str) -> None:
        """The record is gone from EspoCRM: when a person last edited it means nothing any more."""
        await self.redis.delete(self._k("edited", espo_id))

    # -- base ---------------------------------------------------------------------------------
    async def get_link(self, espo_id: str) -> Link | None:
        return (await self.get_links([espo_id]))[espo_id]

    async def get_links(self, espo_ids: list[str]) -> dict[str, Link | None]:
        if not espo_ids:
            return {}
        raws = await self.redis.mget([self._k("link", i) for i in espo_ids])
        return {i: decode_link(raw) if raw else None for i, raw in zip(espo_ids, raws, strict=True)}

    async def upgrade_links(self, links: dict[str, Link | None]) -> int:
        """Store again, in this process's fingerprint form, every link read from the plain form (before
        the installation's fingerprint key): compare-and-set, so a sync that wrote the link meanwhile
        wins. How many were replaced."""
        done = 0
        for espo_id, link in links.items():
            if link is not None and link.legacy_raw is not None:
                done += await set_if_equals(self.redis, self._k("link", espo_id), link.legacy_raw, encode_link(link))
        return done

    async def save_link(self, espo_id: str, link: Link, *, clear_create_attempt: bool = False,
                        clear_retry: bool = False) -> None:
        """Store the base (and the ``betNr`` owner); in the same transaction, one round trip, drop the
        create attempt it settles and/or the retry schedule it ends."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self._queue_link(pipe, espo_id, link, clear_retry=clear_retry)
            if clear_create_attempt:
                pipe.delete(self._k("create", espo_id))
            await pipe.execute()

    def _queue_link(self, pipe: Any, espo_id: str, link: Link | None, *, clear_retry: bool) -> None:
        if link is not None:
            pipe.set(self._k("link", espo_id), encode_link(link))
            pipe.hset(self._betnr_owner, str(link.betnr), espo_id)
        if clear_retry:
            pipe.delete(self._k("retry", espo_id))

    async def claim_betnr(self, betnr: int, espo_id: str) -> str | None:
        """Claim a Beteiligter for one EspoCRM record before linking it (``HSETNX``, one atomic step):
        two records linking one Beteiligter at once cannot both win. Returns the other owner, or
        ``None`` when the claim holds (this record owns it now, or did already)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self._betnr_owner, str(betnr), espo_id)
            pipe.hget(self._betnr_owner, str(betnr))
            _, owner = await pipe.execute()
        owner_id = as_text(owner)
        return owner_id if owner_id is not None and owner_id != espo_id else None

    async def release_betnr(self, betnr: int, espo_id: str) -> None:
        """Give up a claim whose link was not stored (only this record's own claim)."""
        if await self.betnr_owner(betnr) == espo_id:  # no other record can claim it meanwhile (HSETNX)
            await self.redis.hdel(self._betnr_owner, str(betnr))

    async def owners(self, betnrs: list[int]) -> dict[int, str | None]:
        """The EspoCRM record linked to each Beteiligter (one round trip); ``None`` for an unlinked one."""
        if not betnrs:
            return {}
        raw = await self.redis.hmget(self._betnr_owner, [str(b) for b in betnrs])
        return {b: as_text(r) for b, r in zip(betnrs, raw, strict=True)}

    async def betnr_owner(self, betnr: int) -> str | None:
        """The EspoCRM record a Beteiligter is linked to (links saved since this index exists)."""
        return as_text(await self.redis.hget(self._betnr_owner, str(betnr)))

    @property
    def _betnr_owner(self) -> str:
        return f"{self.prefix}:betnr_owner"

    async def linked_ids(self) -> set[str]:
        """Every EspoCRM id we hold a link for (SCAN, so a large keyspace does not block Redis)."""
        prefix = self._k("link", "")
        return {str(as_text(k))[len(prefix):] async for k in self.redis.scan_iter(match=prefix + "*", count=500)}

    async def iter_linked_ids(self) -> AsyncIterator[str]:
        """Every EspoCRM id we hold a link for, streamed (SCAN): the sync check never holds them all."""
        prefix = self._k("link", "")
        async for key in self.redis.scan_iter(match=prefix + "*", count=1000):
            yield str(as_text(key))[len(prefix):]

    async def forget(self, espo_id: str) -> None:
        """A record deleted in EspoCRM: its link, retry schedule, create attempt and failed delete go."""
        await self.drop_link(espo_id)
        await self.clear_retry(espo_id)
        await self.redis.delete(self._k("create", espo_id))
        await self.redis.hdel(self._failed_deletes, espo_id)

    async def record_failed_delete(self, espo_id: str, betnr: int, message: str, at: float) -> None:
        """Kept for operators: an Advoware delete that failed (e.g. still referenced by a matter)."""
        await self.redis.hset(self._failed_deletes, espo_id, json.dumps({"betnr": betnr, "message": message, "at": at}))

    @property
    def _failed_deletes(self) -> str:
        return f"{self.prefix}:failed_deletes"

    async def drop_link(self, espo_id: str) -> None:
        link = await self.get_link(espo_id)
        await self.redis.delete(self._k("link", espo_id), self._k("edited", espo_id))
        if link is not None and await self.betnr_owner(link.betnr) == espo_id:
            await self.redis.hdel(self._betnr_owner, str(link.betnr))

    # -- creates whose answer may be lost ---------------------------------------------------------
    async def mark_create_attempt(self, espo_id: str, at: datetime, sent: dict[str, str],
                                  previous: CreateAttempt | None) -> None:
        """Note a ``POST`` (or the ``PUT`` after an adoption) before it is sent: when it started and the
        fingerprint of the values it carries. Earlier attempts are kept: any of them may have landed.
        ``previous``: :meth:`create_attempt` as read under the same lease (not read again here)."""
        attempt = CreateAttempt(at=previous.at if previous else at, sent=[*(previous.sent if previous else []), sent])
        raw = json.dumps({"at": attempt.at.isoformat(), "sent": attempt.sent, "k": scheme()})
        await self.redis.set(self._k("create", espo_id), raw, ex=CREATE_ATTEMPT_TTL_S)

    async def refused_create_attempt(self, espo_id: str, previous: CreateAttempt | None) -> None:
        """Advoware refused the ``POST`` just noted (400/403: nothing was created): only the earlier
        attempts stay noted (any of them may have landed), none when there were none. A refused attempt
        kept would make a party typed in by hand later "the one our create made" (adopted, and deleted
        with the record under ``DELETE_POLICY=delete``)."""
        if previous is None:
            await self.redis.delete(self._k("create", espo_id))
            return
        raw = json.dumps({"at": previous.at.isoformat(), "sent": previous.sent, "k": scheme()})
        await self.redis.set(self._k("create", espo_id), raw, ex=CREATE_ATTEMPT_TTL_S)

    async def create_attempt(self, espo_id: str) -> CreateAttempt | None:
        raw = as_text(await self.redis.get(self._k("create", espo_id)))
        if not raw:
            return None
        try:
            if not raw.startswith("{"):  # written before the values were noted: the time only
                return CreateAttempt(at=datetime.fromisoformat(raw), sent=[])
            data = json.loads(raw)
            sent = [dict(s) for s in data["sent"]]
            form = data.get("k", "")
            if form != scheme():  # plain (before the fingerprint key): in this process's form; another key: unknown
                sent = [{f: keyed(fp) for f, fp in s.items()} for s in sent] if not form else []
            return CreateAttempt(at=datetime.fromisoformat(data["at"]), sent=sent)
        except (KeyError, TypeError, ValueError):
            return None

    # -- retries ------------------------------------------------------------------------------
    async def get_retry(self, espo_id: str) -> RetryState | None:
        return (await self.get_retries([espo_id]))[espo_id]

    async def get_retries(self, espo_ids: list[str]) -> dict[str, RetryState | None]:
        return await self._mget("retry", espo_ids, RetryState)

    async def save_retry(self, espo_id: str, state: RetryState) -> None:
        """The schedule, and (unless a person must act first) its due time in ``retry_due``, from which
        :meth:`take_due_retries` queues the retry at the time the record's message states."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._k("retry", espo_id), json.dumps(asdict(state)))
            if not state.fatal and not state.held:
                pipe.zadd(self._retry_due, {espo_id: state.next_at})
            await pipe.execute()

    async def take_due_retries(self, now: float, limit: int = DUE_BATCH) -> list[str]:
        """The records whose retry is due, taken off ``retry_due`` (a failed retry schedules itself
        again). An entry whose schedule was cleared (synced since) or moved on is dropped, not queued;
        one lost between taking and queueing is found by the next sync check."""
        raw = await self.redis.zrangebyscore(self._retry_due, "-inf", now, start=0, num=limit)
        ids = [as_text(i) or "" for i in raw]
        if not ids:
            return []
        await self.redis.zrem(self._retry_due, *ids)
        states = await self.get_retries(ids)
        return [i for i in ids if (st := states[i]) is not None and not st.fatal and not st.held
                and st.next_at <= now]

    @property
    def _retry_due(self) -> str:
        return f"{self.prefix}:retry_due"

    async def clear_retry(self, espo_id: str) -> None:
        await self.redis.delete(self._k("retry", espo_id))

    async def _mget(self, kind: str, espo_ids: list[str], cls: type[T]) -> dict[str, T | None]:
        """Read many JSON records at once; an unreadable one counts as missing (safe fallback)."""
        if not espo_ids:
            return {}
        raws = await self.redis.mget([self._k(kind, i) for i in espo_ids])
        out: dict[str, T | None] = {}
        for i, raw in zip(espo_ids, raws, strict=True):
            try:
                out[i] = cls(**json.loads(raw)) if raw else None
            except (TypeError, ValueError):
                out[i] = None
        return out

    async def locked_ids(self, espo_ids: list[str]) -> set[str]:
        if not espo_ids:
            return set()
        pipe = self.redis.pipeline()
        for i in espo_ids:
            pipe.exists(self._k("lock", i))
        res: list[Any] = await pipe.execute()
        return {i for i, r in zip(espo_ids, res, strict=True) if r}
