"""BeteiligteSync: one record at a time, under a Redis lease, decided by :func:`decide`.

Per record: skip at once when the webhook's values are the stored state (an echo of our own write,
a late or duplicated delivery); otherwise take the record's lease, run one pass
(:mod:`sync.sync_pass`), and hand off atomically: a change that arrived while we held the lease
makes us run once more before we let go (:meth:`SyncStateStore.release_unless_dirty`). An event that
meets a held lease flags the change and waits until the holder has taken the flag (its next pass
covers the change) or the lease has lapsed (the holder died: we take over); it is never acknowledged
and forgotten. A heartbeat extends the lease while a pass runs, so a dead worker's records are free
again within :data:`~adapters.sync_state_store.LEASE_MS`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from adapters.background import Background, pause
from adapters.errors import (
    ApiError,
    DeferredError,
    FatalError,
    NotFoundError,
    OutcomeUnknownError,
    RetryableError,
    StaleWriteError,
)
from adapters.facts_cache import FactsCache
from adapters.sync_state_store import LEASE_MS, Lease, Link, Settled, SyncStateStore
from domain.conflict_policy import ConflictPolicy
from domain.decision import Decision
from domain.sync_status import ENTITY, Action, DeletePolicy, SyncStatus
from domain.timestamps import parse_espo
from sync.advoware_create import AdvowareCreator
from sync.beteiligte_delete import BeteiligteDeleter
from sync.conflict_note import conflict_note
from sync.espocrm_facts import EspoFacts
from sync.metrics import Stall, SyncMetrics
from sync.sync_failure_writer import FailureWriter
from sync.sync_failures import classify
from sync.sync_journal import SyncJournal
from sync.sync_log import log_record
from sync.sync_pass import PassState, RecordMoved, SyncPass
from sync.sync_result import SyncResult
from sync.sync_skips import runs_nothing

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

__all__ = ["BeteiligteSync", "SyncResult", "LockBusyError"]

MAX_REDECIDE = 3
MAX_PASSES = 10  # hand-off passes; after that the flag stays for the waiting event to take over
QUICK_RETRY_S = 0.5
MAX_INLINE_WAIT_S = 5.0
LOCK_WAIT_S = 120.0
HEARTBEAT_S = LEASE_MS / 1000 / 3
MAX_LEASE_HOLD_S = 300.0  # the watchdog: a pass holding its lease longer is reported and let go
HEARTBEAT_STOP_GRACE_S = 2.0  # the heartbeat gets this long (twice) to stop when the pass ends


class LockBusyError(RetryableError):
    """The record's lease stayed held for longer than an event may wait: the host retries it."""


class BeteiligteSync:
    def __init__(
        self,
        espo: EspoCRMAPI,
        advo: AdvowareAPI,
        store: SyncStateStore,
        *,
        policy: ConflictPolicy,
        metrics: SyncMetrics,
        timezone: str = "Europe/Berlin",
        delete_policy: DeletePolicy | str = DeletePolicy.UNLINK,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        lock_wait_s: float = LOCK_WAIT_S,
        max_lease_hold_s: float = MAX_LEASE_HOLD_S,
    ) -> None:
        self.espo = espo
        self.advo = advo
        self.store = store
        self.policy = policy
        self.metrics = metrics
        self.timezone = timezone
        self.delete_policy = delete_policy
        self.clock = clock
        self.lock_wait_s = lock_wait_s
        self.max_lease_hold_s = max_lease_hold_s
        self.overdue_leases: dict[str, float] = {}  # espo id -> when the watchdog let its lease go
        self.failures = FailureWriter(espo, store, metrics, clock=clock, rng=rng or random.Random())
        self.espo_facts = EspoFacts(espo, FactsCache.for_system(store.redis, getattr(espo, "base_url", "")))
        self.creates = AdvowareCreator(advo, store, metrics, clock=clock, espo=espo, timezone=timezone,
                                       facts=self.espo_facts)
        self.deleter = BeteiligteDeleter(espo, advo, store, metrics, policy=delete_policy, clock=clock,
                                         lost_create=self.creates.lost_create_betnr)
        self._pass = SyncPass(self)
        self.journal = SyncJournal(store.redis, clock=clock, prefix=store.prefix)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- entry point ----------------------------------------------------------------------------
    async def sync(self, espo_id: str, trigger: str = "webhook", seen: dict[str, str] | None = None) -> SyncResult:
        """Sync one record. ``seen``: fingerprints of the mapped values (and ``betnr``) a webhook item
        carried; when they are the stored state of the last sync, nothing is read or written. The
        final result goes to the record's history and the shared day counters."""
        result = await self._sync(espo_id, trigger, seen)
        await self.journal.note(result, trigger)
        return result

    async def _sync(self, espo_id: str, trigger: str, seen: dict[str, str] | None) -> SyncResult:
        # Only a settled base proves anything: never synced, failed (the webhook may carry the fix) or
        # a sync running (its base is about to change) means the event goes through the lease. The
        # look and, when it proves nothing, the lease are one round trip.
        got = await self.store.acquire_unless_settled(espo_id, look=bool(seen))
        if isinstance(got, Settled):
            if seen and _proves(got.link, seen):
                self.metrics.syncs.labels(Action.SKIP_IN_SYNC, "ok").inc()
                log_record(logging.DEBUG, "webhook values already synced", espo_id=espo_id, betnr=None,
                           decision=Action.SKIP_IN_SYNC, trigger=trigger)
                return SyncResult(espo_id, None, Action.SKIP_IN_SYNC, SyncStatus.CLEAN)
            got = None
        lease = got or await self._take_lease(espo_id, trigger)
        if lease is None:
            return SyncResult(espo_id, None, Action.COVERED_BY_HOLDER, SyncStatus.SYNCING)
        token = lease.token
        started = time.monotonic()
        try:
            async with self._heartbeat(espo_id, token):
                for n in range(MAX_PASSES):
                    last = n + 1 == MAX_PASSES  # then the flag stays for the waiting event: a plain release
                    # the link read with the lease serves the first pass; a later one reads it again
                    prefetched = (lease.link,) if n == 0 else None
                    result, released = await self._sync_locked(
                        espo_id, trigger if n == 0 else "changed_during_sync", prefetched, None if last else token)
                    if released is None and not last:  # the pass ended without releasing (nothing settled)
                        released = await self.store.release_unless_dirty(espo_id, token)
                    if released:
                        token = ""
                        return result
                return result
        finally:
            if token:
                await self.store.release(espo_id, token)
            self.metrics.duration.observe(time.monotonic() - started)

    async def _take_lease(self, espo_id: str, trigger: str) -> Lease | None:
        """Our lease, or ``None`` when the holder took our change's flag (it runs once more)."""
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            lease = await self.store.acquire_fresh(espo_id)  # takes the flags set so far: the pass reads after them
            if lease is not None:
                return lease
            await self.store.mark_dirty(espo_id)
            log_record(logging.INFO, "lease held, change flagged for the holder", espo_id=espo_id,
                       betnr=None, decision="deferred_to_lock_holder", trigger=trigger)
            delay = 0.02
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
                if not await self.store.is_dirty(espo_id):
                    return None  # the holder took the flag: its next pass reads our change
                if not await self.store.is_locked(espo_id):
                    break  # released or lapsed with the flag still set: take over
                if time.monotonic() > deadline:
                    raise LockBusyError(f"record {espo_id} stayed locked for {self.lock_wait_s:.0f} s",
                                        system="redis")

    @asynccontextmanager
    async def _heartbeat(self, espo_id: str, token: str) -> AsyncIterator[None]:
        """Extend the lease every HEARTBEAT_S while the pass runs, up to MAX_LEASE_HOLD_S: a pass still
        running then is reported (log, metric, :attr:`overdue_leases`) and its lease left to lapse, so
        the record is free again LEASE_MS later (the watchdog). Stopped by a flag, never by a cancel
        alone: a cancel landing in ``extend`` (a Redis script) can be swallowed by redis-py."""
        started = time.monotonic()

        async def beat(stop: asyncio.Event) -> None:
            while not await pause(stop, HEARTBEAT_S):
                if time.monotonic() - started >= self.max_lease_hold_s:
                    self.overdue_leases[espo_id] = self.clock()
                    self.metrics.stalled.labels(Stall.LEASE).inc()
                    log_record(logging.ERROR, f"sync pass still running after {self.max_lease_hold_s:.0f} s: "
                               "lease no longer extended, it lapses for other workers", espo_id=espo_id,
                               betnr=None, decision="lease_overdue")
                    return
                try:
                    kept = await self.store.extend(espo_id, token)
                except Exception as exc:  # Redis away: keep trying while the pass runs
                    log_record(logging.WARNING, f"lease heartbeat failed: {exc}", espo_id=espo_id,
                               betnr=None, decision="lease_heartbeat_failed")
                    continue
                if not kept:
                    log_record(logging.ERROR, "lease lost while syncing", espo_id=espo_id, betnr=None,
                               decision="lease_lost")
                    return

        heart = Background(beat, f"lease-heartbeat-{espo_id}")
        try:
            yield
        finally:
            self.overdue_leases.pop(espo_id, None)
            if not await heart.stop(HEARTBEAT_STOP_GRACE_S):
                self.metrics.stalled.labels(Stall.HEARTBEAT_LEFT).inc()
                log_record(logging.ERROR, "lease heartbeat did not stop; left behind (it ends after its call)",
                           espo_id=espo_id, betnr=None, decision="heartbeat_left_behind")

    # -- one record, under the lease ------------------------------------------------------------
    async def _sync_locked(self, espo_id: str, trigger: str, prefetched: tuple[Link | None] | None = None,
                           lease_token: str | None = None) -> tuple[SyncResult, bool | None]:
        """One pass, and whether it released the lease: with ``lease_token`` a pass that settles the
        record releases it with its last base (``False``: a change is waiting); ``None`` when it did
        not (no token, the record gone, a failure)."""
        record = await self._read_record(espo_id, trigger)
        if isinstance(record, SyncResult):
            return record, None
        skipped = await runs_nothing(self.store, self.metrics, record, trigger)
        if skipped is not None:
            return skipped, None
        await self.espo_facts.load()  # before edit_time: it needs our own user id
        st = PassState(record, await self.edit_time(record), prefetched=prefetched, lease_token=lease_token)
        result = await self._run_with_retries(st, trigger)
        return result, st.released

    async def _read_record(self, espo_id: str, trigger: str) -> dict[str, Any] | SyncResult:
        """The EspoCRM record, or the result when there is none to sync."""
        try:
            return await self.espo.get(ENTITY, espo_id)
        except NotFoundError:
            if await self.store.create_attempt(espo_id) is not None:  # deleted before its create's answer came:
                return await self.deleter.delete_locked(espo_id)  # maybe its delete webhook was lost too
            await self.store.forget_espo_edited_at(espo_id)
            log_record(logging.INFO, "record gone in EspoCRM, nothing to sync", espo_id=espo_id,
                       betnr=None, decision=Action.SKIP_DELETED, trigger=trigger)
            self.metrics.syncs.labels(Action.SKIP_DELETED, "ok").inc()
            return SyncResult(espo_id, None, Action.SKIP_DELETED, SyncStatus.DELETED)
        except ApiError as exc:
            # EspoCRM itself is unreachable: nothing can be marked. The event is retried by the
            # host; the sync check finds the record again if every retry fails.
            self.metrics.failures.labels(classify(exc)).inc()
            log_record(logging.ERROR, f"cannot read record: {exc}", espo_id=espo_id, betnr=None,
                       decision=Action.ERROR, trigger=trigger)
            if isinstance(exc, FatalError):
                return SyncResult(espo_id, None, Action.ERROR, SyncStatus.UNKNOWN, message=str(exc))
            raise

    async def _run_with_retries(self, st: PassState, trigger: str) -> SyncResult:
        transient_left = 1  # one quick in-call retry for a short wait or a passing fault
        redecide_left = MAX_REDECIDE
        while True:
            try:
                return await self._pass.run(st, trigger)
            except (StaleWriteError, RecordMoved) as exc:
                redecide_left -= 1
                if redecide_left <= 0:
                    return await self._failed(st, _as_error(exc), trigger)
                log_record(logging.INFO, f"record moved, deciding again: {_as_error(exc)}", espo_id=st.espo_id,
                           betnr=st.record.get("betnr"), decision="redecide", trigger=trigger)
                if isinstance(exc, StaleWriteError):
                    try:
                        st.record = await self.espo.get(ENTITY, st.espo_id)
                    except ApiError as exc2:
                        return await self._failed(st, exc2, trigger)
                    st.espo_edited_at = await self.edit_time(st.record, fallback=True)
            except (DeferredError, RetryableError) as exc:
                wait = exc.retry_after if isinstance(exc, DeferredError) else QUICK_RETRY_S
                if transient_left <= 0 or wait > MAX_INLINE_WAIT_S or isinstance(exc, OutcomeUnknownError):
                    return await self._failed(st, exc, trigger)
                transient_left -= 1
                log_record(logging.INFO, f"transient error, retrying in {wait:.1f} s: {exc}", espo_id=st.espo_id,
                           betnr=st.record.get("betnr"), decision="retry_inline", trigger=trigger)
                await asyncio.sleep(wait)
            except RedisError:
                raise  # our own store is away, not the record's fault: the bus runs the event again
            except Exception as exc:  # every failure ends on the record, readable
                return await self._failed(st, exc, trigger)

    async def _failed(self, st: PassState, exc: BaseException, trigger: str) -> SyncResult:
        return await self.failures.record(st.record, exc, trigger, advo_row_id=st.advo_row_id, betnr=st.betnr)

    async def edit_time(self, record: dict[str, Any], *, fallback: bool = False) -> datetime | None:
        """When a person last changed the record. Our own writes move ``modifiedAt`` too: then the
        edit time stored when we last saw a person's change counts (``fallback``: a change found in
        the answer to our own write happened just before it, so that write's time is the best guess)."""
        espo_id = str(record["id"])
        modified_at = record.get("modifiedAt")
        ours = self.espo_facts.user_id is not None and record.get("modifiedById") == self.espo_facts.user_id
        if modified_at and (not ours or fallback):
            await self.store.save_espo_edited_at(espo_id, modified_at)  # one write, not a read and a write
            return parse_espo(modified_at)
        return parse_espo(await self.store.espo_edited_at(espo_id))

    async def report_conflicts(self, espo_id: str, betnr: int, decision: Decision,
                               record: dict[str, Any] | None = None, advo_obj: dict[str, Any] | None = None) -> None:
        """Count and log each conflict (field names, ids and the decision only: the values are client
        data) and post the Note listing them; ``record``/``advo_obj``: the EspoCRM record and the
        Beteiligter the decision was taken on, so each value reads as its system holds it."""
        if not decision.conflicts:
            return
        for c in decision.conflicts:
            self.metrics.conflicts.labels(c.group, c.winner).inc()
            log_record(logging.WARNING, "conflict", espo_id=espo_id, betnr=betnr, decision=c.strategy,
                       group=c.group, field=c.field, winner=c.winner)
        text = conflict_note(decision, betnr, record, advo_obj)
        try:
            await self.espo.post_note(ENTITY, espo_id, text)
        except ApiError as exc:
            log_record(logging.ERROR, f"could not post conflict note: {exc}", espo_id=espo_id,
                       betnr=betnr, decision="conflict_note_failed")

    # -- delete -------------------------------------------------------------------------------
    async def delete(self, espo_id: str) -> SyncResult:
        result = await self.deleter.delete(espo_id)
        await self.journal.note(result, "delete")
        return result


def _proves(link: Link, seen: dict[str, str]) -> bool:
    """A webhook's values (fingerprints, and ``betnr``) are the settled link's: nothing to sync."""
    if "betnr" in seen and seen["betnr"] != str(link.betnr):
        return False
    return all(link.espo.get(f) == fp for f, fp in seen.items() if f != "betnr")


def _as_error(exc: BaseException) -> BaseException:
    if isinstance(exc, RecordMoved):
        return StaleWriteError("the record kept changing while it was synced; will retry", system="espocrm")
    return exc
