"""BeteiligteSync: one record at a time, under a Redis lock, decided by :func:`decide`.

Per record: take the lock (``SET NX``, 15 min), mark ``syncStatus=syncing`` with a ``PUT`` whose
answer doubles as the fetch, read the Advoware twin, decide, write Advoware if needed, and release
with ONE EspoCRM write carrying status, ``advowareLastSync``, ``advowareRowId``, ``betnr`` and any
values taken from Advoware. The base of the next three-way compare is stored only after that.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mappers.beteiligte_mapper import (
    advoware_to_canonical,
    canonical_to_advoware,
    canonical_to_espo,
    espo_to_canonical,
)
from services.conflict_policy import ConflictPolicy
from services.errors import (
    ApiError,
    DeferredError,
    FatalError,
    NotFoundError,
    RetryableError,
    StaleWriteError,
)
from services.metrics import SyncMetrics
from services.sync_decision import Decision, decide_records, fingerprint
from services.sync_failure_writer import FailureWriter
from services.sync_failures import classify
from services.sync_log import log_record
from services.sync_state_store import Link, SyncStateStore
from services.timestamps import format_espo, utc_now

if TYPE_CHECKING:
    from services.advoware_api import AdvowareAPI
    from services.espocrm_api import EspoCRMAPI

ENTITY = "CBeteiligte"
MAX_REDECIDE = 3
PENDING = "pending"  # fingerprint that matches no value: "this side changed, not yet applied"
QUICK_RETRY_S = 0.5
MAX_INLINE_WAIT_S = 5.0


@dataclass
class SyncResult:
    espo_id: str
    betnr: int | None
    action: str
    status: str
    decision: Decision | None = None
    message: str = ""

    def describe(self) -> str:
        d = self.decision.summary() if self.decision else self.action
        extra = f" - {self.message}" if self.message else ""
        return f"{self.espo_id} betnr={self.betnr} status={self.status} decision={d}{extra}"


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
        delete_policy: str = "unlink",
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        max_passes: int = 3,
    ) -> None:
        self.espo = espo
        self.advo = advo
        self.store = store
        self.policy = policy
        self.metrics = metrics
        self.timezone = timezone
        self.delete_policy = delete_policy
        self.clock = clock
        self.max_passes = max_passes
        self.failures = FailureWriter(espo, store, metrics, clock=clock, rng=rng or random.Random())

    # -- entry points -------------------------------------------------------------------------
    async def sync(self, espo_id: str, trigger: str = "webhook") -> SyncResult:
        token = await self.store.acquire(espo_id)
        if token is None:
            # Someone holds the lock: tell them to look again before they let go.
            await self.store.mark_dirty(espo_id)
            log_record(logging.INFO, "lock held, change queued behind it", espo_id=espo_id, betnr=None,
                       decision="deferred_to_lock_holder", trigger=trigger)
            return SyncResult(espo_id, None, "queued_behind_lock", "syncing")
        started = time.monotonic()
        try:
            result = await self._sync_locked(espo_id, trigger)
            for _ in range(self.max_passes - 1):
                if not await self.store.take_dirty(espo_id):
                    break
                result = await self._sync_locked(espo_id, "changed_during_sync")
            return result
        finally:
            await self.store.release(espo_id, token)
            self.metrics.duration.observe(time.monotonic() - started)

    async def _sync_locked(self, espo_id: str, trigger: str) -> SyncResult:
        try:
            record = await self.espo.update(ENTITY, espo_id, {"syncStatus": "syncing"})
        except NotFoundError:
            log_record(logging.INFO, "record gone in EspoCRM, nothing to sync", espo_id=espo_id,
                       betnr=None, decision="skip_deleted", trigger=trigger)
            self.metrics.syncs.labels("skip_deleted", "ok").inc()
            return SyncResult(espo_id, None, "skip_deleted", "deleted")
        except ApiError as exc:
            # EspoCRM itself is unreachable: nothing can be marked. The event is retried by the
            # host; the sync check finds the record again if every retry fails.
            self.metrics.failures.labels(classify(exc)).inc()
            log_record(logging.ERROR, f"cannot mark record syncing: {exc}", espo_id=espo_id, betnr=None,
                       decision="error", trigger=trigger)
            if isinstance(exc, FatalError):
                return SyncResult(espo_id, None, "error", "unknown", message=str(exc))
            raise
        betnr = record.get("betnr")
        transient_left = 1  # one quick in-call retry for a short wait or a passing fault
        stale_left = MAX_REDECIDE
        seen: dict[str, Any] = {}  # the Advoware rowId last read: a failure remembers it
        while True:
            try:
                return await self._run(record, trigger, seen)
            except StaleWriteError as exc:
                stale_left -= 1
                if stale_left <= 0:
                    return await self.failures.record(record, exc, trigger, advo_row_id=seen.get("rowId"))
                log_record(logging.INFO, f"stale write, re-reading and deciding again: {exc}",
                           espo_id=espo_id, betnr=betnr, decision="redecide", trigger=trigger)
                try:
                    record = await self.espo.get(ENTITY, espo_id)
                except ApiError as exc2:
                    return await self.failures.record(record, exc2, trigger, advo_row_id=seen.get("rowId"))
            except (DeferredError, RetryableError) as exc:
                wait = exc.retry_after if isinstance(exc, DeferredError) else QUICK_RETRY_S
                if transient_left <= 0 or wait > MAX_INLINE_WAIT_S:
                    return await self.failures.record(record, exc, trigger, advo_row_id=seen.get("rowId"))
                transient_left -= 1
                log_record(logging.INFO, f"transient error, retrying in {wait:.1f} s: {exc}",
                           espo_id=espo_id, betnr=betnr, decision="retry_inline", trigger=trigger)
                await asyncio.sleep(wait)
            except Exception as exc:  # every failure ends on the record, readable
                return await self.failures.record(record, exc, trigger, advo_row_id=seen.get("rowId"))

    # -- one pass -----------------------------------------------------------------------------
    async def _run(self, record: dict[str, Any], trigger: str, seen: dict[str, Any]) -> SyncResult:
        espo_id = record["id"]
        espo_vals = espo_to_canonical(record)
        betnr: int | None = record.get("betnr")
        link = await self.store.get_link(espo_id)
        if link and betnr and link.betnr != betnr:
            link = None  # relinked by an operator: the old base says nothing about the new pair
        if not betnr and link:
            betnr = link.betnr  # a create whose release write never landed: do not create twice
        advo_obj: dict[str, Any] | None = None
        if betnr:
            try:
                advo_obj = await self.advo.get_beteiligter(int(betnr))
                seen["rowId"] = advo_obj.get("rowId")
            except NotFoundError:
                advo_obj = None
        decision = decide_records(record, advo_obj, link.base() if link else None, policy=self.policy,
                                  linked=bool(betnr), timezone=self.timezone)
        if decision.action == "advoware_missing":
            return await self.failures.advoware_missing(record, int(betnr or 0), decision, trigger)

        final_advo = advo_obj
        if decision.action == "create":
            body = canonical_to_advoware(espo_vals)
            final_advo = await self._adopt_lost_create(espo_id, body)
            if final_advo is None:
                # Noted BEFORE the POST: if its answer is lost (timeout, 5xx after the commit), the
                # next attempt looks for the object instead of creating a second one.
                await self.store.mark_create_attempt(espo_id, utc_now())
                final_advo = await self.advo.create_beteiligter(body)
            betnr = int(final_advo["betNr"])
            # Remember the link at once: a lost release write must not lead to a second create.
            await self._save_link(espo_id, betnr, espo_vals, final_advo)
            await self.store.clear_create_attempt(espo_id)
            self.metrics.writes.labels("advoware").inc()
        elif decision.to_advoware and advo_obj is not None:
            merged = {**advoware_to_canonical(advo_obj), **decision.to_advoware}
            final_advo = await self.advo.update_beteiligter(int(betnr or 0),
                                                            canonical_to_advoware(merged, advo_obj))
            self.metrics.writes.labels("advoware").inc()
            # Account for our Advoware write at once: if the release below fails or meets a newer
            # EspoCRM edit, the next decision must not take our own write for a person's change.
            # Values still owed to EspoCRM stay marked as Advoware changes, so they are not lost.
            advo_fp = fingerprint(advoware_to_canonical(final_advo))
            advo_fp.update(dict.fromkeys(decision.to_espo, PENDING))
            await self.store.save_link(espo_id, Link(
                betnr=int(betnr or 0), row_id=final_advo.get("rowId"),
                espo=link.espo if link else fingerprint(espo_vals), advo=advo_fp, synced_at=self.clock(),
            ))
        assert final_advo is not None and betnr is not None
        seen["rowId"] = final_advo.get("rowId")

        release: dict[str, Any] = {
            **canonical_to_espo(decision.to_espo),
            "syncStatus": "clean",
            "advowareLastSync": format_espo(utc_now()),
            "advowareRowId": final_advo.get("rowId"),
            "betnr": betnr,
            "syncRetryCount": 0,
            "syncErrorMessage": None,
        }
        updated = await self.espo.update(ENTITY, espo_id, release, version_number=record.get("versionNumber"))
        self.metrics.writes.labels("espocrm").inc()
        await self._save_link(espo_id, betnr, espo_to_canonical(updated), final_advo)
        await self.store.clear_retry(espo_id)
        await self._report_conflicts(espo_id, betnr, decision)
        self.metrics.syncs.labels(decision.action, "ok").inc()
        log_record(logging.INFO, "synced", espo_id=espo_id, betnr=betnr, decision=decision.summary(),
                   trigger=trigger)
        return SyncResult(espo_id, betnr, decision.action, "clean", decision)

    async def _adopt_lost_create(self, espo_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The Beteiligter an earlier create of this record made although its answer was lost: one
        changed since that attempt with exactly the mapped values we are about to send."""
        since = await self.store.create_attempt(espo_id)
        if since is None or not await self.advo.supports_list():
            return None  # without the list endpoint it cannot be found: the create is repeated
        want = advoware_to_canonical(body)
        async for obj in self.advo.iter_beteiligte(geaendert_seit=since - timedelta(minutes=1)):
            if advoware_to_canonical(obj) == want:
                log_record(logging.WARNING, "adopting the Beteiligter of a create whose answer was lost",
                           espo_id=espo_id, betnr=obj.get("betNr"), decision="adopt_lost_create")
                return obj
        return None

    async def _save_link(self, espo_id: str, betnr: int, espo_vals: dict[str, Any],
                         advo_obj: dict[str, Any]) -> None:
        await self.store.save_link(espo_id, Link(
            betnr=betnr,
            row_id=advo_obj.get("rowId"),
            espo=fingerprint(espo_vals),
            advo=fingerprint(advoware_to_canonical(advo_obj)),
            synced_at=self.clock(),
        ))

    async def _report_conflicts(self, espo_id: str, betnr: int, decision: Decision) -> None:
        if not decision.conflicts:
            return
        lines = []
        for c in decision.conflicts:
            self.metrics.conflicts.labels(c.group, c.winner).inc()
            log_record(logging.WARNING, "conflict", espo_id=espo_id, betnr=betnr, decision=c.strategy,
                       group=c.group, field=c.field, espocrm=c.espo_value, advoware=c.advo_value,
                       winner=c.winner)
            lines.append(f"- **{c.field}** ({c.group}): EspoCRM `{c.espo_value}` / Advoware "
                         f"`{c.advo_value}` → {c.winner} gewinnt ({c.strategy})")
        text = ("Sync-Konflikt: beide Systeme wurden seit dem letzten Abgleich geändert. "
                "Überschrieben wurde:\n" + "\n".join(lines))
        try:
            await self.espo.post_note(ENTITY, espo_id, text)
        except ApiError as exc:
            log_record(logging.ERROR, f"could not post conflict note: {exc}", espo_id=espo_id,
                       betnr=betnr, decision="conflict_note_failed")

    # -- delete -------------------------------------------------------------------------------
    async def delete(self, espo_id: str) -> SyncResult:
        from services.beteiligte_delete import apply_delete

        return await apply_delete(self, espo_id)

