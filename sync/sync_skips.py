"""Records a sync reads but runs nothing for (issue 17 items 7 and 10).

- A webhook delivery of a record whose failure waits for a change (fatal, or given up after
  :data:`~sync.sync_failures.MAX_FAILURES`) that carries no change of its mapped values or ``betnr``:
  EspoCRM resending a batch, an 8.x echo of our own status write. Running it again would write the
  same failure, count it again and, at the limit, post a Note.
- ``doctor``'s throwaway record: it lives for seconds, and a copy in Advoware would stay there as an
  orphan (``DELETE_POLICY=unlink``), so it is never created there.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.sync_state_store import SyncStateStore
from domain.sync_status import TEST_RECORD_LAST_NAME, Action, SyncStatus
from sync.metrics import SyncMetrics
from sync.sync_failure_writer import espo_fingerprint
from sync.sync_log import log_record
from sync.sync_result import SyncResult

WEBHOOK_TRIGGER = "webhook_"  # the intake's triggers: webhook_create, webhook_update


async def runs_nothing(store: SyncStateStore, metrics: SyncMetrics, record: dict[str, Any],
                       trigger: str) -> SyncResult | None:
    """The result when this record, just read, is to be left alone; ``None``: sync it."""
    if record.get("lastName") == TEST_RECORD_LAST_NAME and not record.get("betnr"):
        return _skipped(metrics, record, trigger, Action.SKIP_TEST_RECORD, SyncStatus.PENDING,
                        "doctor's test record: not synced")
    if trigger.startswith(WEBHOOK_TRIGGER):
        return await _failure_waits(store, metrics, record, trigger)
    return None


async def _failure_waits(store: SyncStateStore, metrics: SyncMetrics, record: dict[str, Any],
                         trigger: str) -> SyncResult | None:
    """A failed record's delivery without a change: nothing runs (``sync <id>``, ``retry-failed`` and
    the sync check, which also looks at Advoware's side, still run it)."""
    status = record.get("syncStatus")
    if status not in (SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED):
        return None
    retry = await store.get_retry(str(record["id"]))
    if retry is None or not (retry.fatal or status == SyncStatus.PERMANENTLY_FAILED):
        return None
    if espo_fingerprint(record) != retry.espo_fp:
        return None
    return _skipped(metrics, record, trigger, Action.SKIP_FAILED_UNCHANGED, SyncStatus(status),
                    "failed before with these values; waits for a change", message=retry.message)


def _skipped(metrics: SyncMetrics, record: dict[str, Any], trigger: str, action: Action, status: SyncStatus,
             why: str, *, message: str = "") -> SyncResult:
    espo_id = str(record["id"])
    metrics.syncs.labels(action, "ok").inc()
    log_record(logging.INFO, why, espo_id=espo_id, betnr=record.get("betnr"), decision=action, trigger=trigger)
    return SyncResult(espo_id, record.get("betnr"), action, status, message=message)
