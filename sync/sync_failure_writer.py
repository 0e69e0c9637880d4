"""Puts a failure on the record: status, count, readable message, retry schedule, one Note at 5."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters.errors import ApiError, NotFoundError
from adapters.sync_state_store import RetryState, SyncStateStore
from domain.beteiligte_mapper import FIELDS, MappingError, espo_to_canonical
from domain.decision import Decision, fingerprint
from domain.sync_status import ENTITY, Action, SyncStatus
from sync.metrics import SyncMetrics
from sync.sync_failures import MAX_FAILURES, FailureKind, FailurePlan, plan_failure
from sync.sync_log import log_record
from sync.sync_result import SyncResult

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI


def espo_fingerprint(record: dict[str, Any]) -> str:
    """One hash over the mapped EspoCRM values and the link (``betnr``): tells whether a person
    changed the record since it failed (clearing ``betnr`` counts: it asks for a new Beteiligter)."""
    try:
        fp = fingerprint(espo_to_canonical(record))
    except MappingError:  # the raw mapped values: the same from a full read and a sync check's list
        fp = {"raw": json.dumps({f.espo: record.get(f.espo) for f in FIELDS}, sort_keys=True, default=str)}
    fp["betnr"] = str(record.get("betnr"))
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


class FailureWriter:
    def __init__(
        self,
        espo: EspoCRMAPI,
        store: SyncStateStore,
        metrics: SyncMetrics,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.espo = espo
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.rng = rng

    async def record(
        self,
        record: dict[str, Any],
        exc: BaseException,
        trigger: str,
        *,
        note: str | None = None,
        advo_row_id: str | None = None,
        betnr: int | None = None,
    ) -> SyncResult:
        """``betnr``: the pass's Beteiligter when the record does not carry it yet (a create linked to an
        existing one whose release failed), for the log line."""
        espo_id = str(record.get("id"))
        betnr = record.get("betnr") or betnr
        count_before = _retry_count(record)
        plan = plan_failure(exc, count_before, self.rng)
        count = count_before + 1 if plan.counts else count_before
        status = _status_after(plan, count)
        now = self.clock()
        await self.store.save_retry(espo_id, RetryState(
            count=count,
            next_at=now + plan.delay_s if plan.delay_s is not None else 0.0,
            fatal=plan.delay_s is None,
            espo_fp=espo_fingerprint(record),
            advo_row_id=advo_row_id,
            message=plan.message,
            held=bool(getattr(exc, "held", False)),
        ))
        self.metrics.failures.labels(plan.kind).inc()
        self.metrics.syncs.labels("failed", plan.kind).inc()
        log_record(logging.ERROR if plan.counts else logging.WARNING, plan.message, espo_id=espo_id,
                   betnr=betnr, decision=f"failed:{plan.kind}", status=status, count=count,
                   trigger=trigger)
        await self._write_status(record, status, count, plan.message)
        if plan.counts and count == MAX_FAILURES:
            note = (note + "\n\n" if note else "") + (
                f"Synchronisation mit Advoware nach {count} Versuchen aufgegeben: {plan.message}")
        if note:
            await self._post_note(espo_id, betnr, note)
        return SyncResult(espo_id, betnr, Action.FAILED, status, message=plan.message)

    async def _write_status(self, record: dict[str, Any], status: SyncStatus, count: int, message: str) -> None:
        espo_id, betnr = str(record.get("id")), record.get("betnr")
        try:
            answer = await self.espo.update(ENTITY, espo_id, {
                "syncStatus": status, "syncRetryCount": count, "syncErrorMessage": message,
            })
            if espo_fingerprint(answer) != espo_fingerprint(record) and answer.get("modifiedAt"):
                # A person saved the record while this attempt ran; our status write now hides their
                # edit time behind ours (modifiedById = us), so keep it for newest_wins.
                await self.store.save_espo_edited_at(espo_id, str(answer["modifiedAt"]))
        except ApiError as exc:
            # The record stays "syncing"; the sync check picks it up once the lock has expired.
            log_record(logging.ERROR, f"could not write failure status: {exc}", espo_id=espo_id,
                       betnr=betnr, decision="status_write_failed")

    async def advoware_missing(
        self, record: dict[str, Any], betnr: int, decision: Decision, trigger: str
    ) -> SyncResult:
        msg = (f"Advoware-Beteiligter {betnr} existiert nicht mehr. Der EspoCRM-Datensatz wurde nicht "
               "gelöscht; bitte prüfen (betnr leeren legt ihn in Advoware neu an)")
        espo_id = str(record.get("id"))
        previous = await self.store.get_retry(espo_id)
        first_time = previous is None or "existiert nicht mehr" not in previous.message
        # The twin is gone for good: forget the link, so that clearing betnr creates a new one.
        await self.store.drop_link(espo_id)
        exc = NotFoundError(msg, system="advoware", status=404)
        return await self.record(record, exc, trigger, note=msg if first_time else None)

    async def _post_note(self, espo_id: str, betnr: Any, text: str) -> None:
        try:
            await self.espo.post_note(ENTITY, espo_id, text)
        except ApiError as exc:
            log_record(logging.ERROR, f"could not post note: {exc}", espo_id=espo_id, betnr=betnr,
                       decision="note_failed")


def _retry_count(record: dict[str, Any]) -> int:
    """``syncRetryCount`` as EspoCRM holds it: empty on a new record; anything but a count is 0."""
    value = record.get("syncRetryCount")
    return value if isinstance(value, int) and value > 0 else 0


def _status_after(plan: FailurePlan, count: int) -> SyncStatus:
    if plan.kind == FailureKind.DEFERRED:
        return SyncStatus.PENDING
    return SyncStatus.PERMANENTLY_FAILED if count >= MAX_FAILURES else SyncStatus.FAILED
