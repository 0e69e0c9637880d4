"""EspoCRM delete -> policy. The link comes from our own store: EspoCRM answers 404 for the record.

``unlink`` (default): Advoware is left untouched, the link is forgotten, the decision logged.
``delete``: the Advoware Beteiligter is deleted; one still referenced by a matter (409) is kept, and
the failure is stored under ``bsync:failed_deletes`` (and logged, and counted) for operators.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from services.errors import ApiError, DeferredError, NotFoundError, RetryableError
from services.sync_log import log_record
from services.sync_status import SyncResult

if TYPE_CHECKING:
    from services.beteiligte_sync import BeteiligteSync

LOCK_WAIT_S = 30.0


async def apply_delete(sync: BeteiligteSync, espo_id: str) -> SyncResult:
    store = sync.store
    token = await store.acquire(espo_id)
    waited = 0.0
    while token is None and waited < LOCK_WAIT_S:
        await asyncio.sleep(0.2)
        waited += 0.2
        token = await store.acquire(espo_id)
    if token is None:
        raise TimeoutError(f"record {espo_id} stayed locked; delete will be retried")
    try:
        link = await store.get_link(espo_id)
        # A delete URL accepts any correctly signed batch (the secret names no event): act only on a
        # record that is really gone, never on one a misrouted or replayed batch names.
        try:
            await sync.espo.get("CBeteiligte", espo_id)
        except NotFoundError:
            pass
        else:
            betnr_known = link.betnr if link else None
            log_record(logging.WARNING, "delete event for a record that still exists in EspoCRM: ignored",
                       espo_id=espo_id, betnr=betnr_known, decision="delete_ignored_record_exists")
            sync.metrics.syncs.labels("delete_ignored", "record_exists").inc()
            return SyncResult(espo_id, betnr_known, "delete_ignored_record_exists", "clean")
        if link is None:
            log_record(logging.WARNING, "delete: no link known, nothing to do in Advoware",
                       espo_id=espo_id, betnr=None, decision="delete_unknown_link")
            sync.metrics.syncs.labels("delete_unlinked", "no_link").inc()
            return SyncResult(espo_id, None, "delete_no_link", "deleted")
        betnr = link.betnr
        if sync.delete_policy == "delete":
            try:
                await sync.advo.delete_beteiligter(betnr)
                sync.metrics.writes.labels("advoware").inc()
            except NotFoundError:
                pass  # already gone: the goal is reached
            except ApiError as exc:
                msg = f"Advoware-Beteiligter {betnr} konnte nicht gelöscht werden: {exc}"
                await store.redis.hset(f"{store.prefix}:failed_deletes", espo_id,
                                       json.dumps({"betnr": betnr, "message": msg, "at": sync.clock()}))
                sync.metrics.failures.labels("delete").inc()
                log_record(logging.ERROR, msg, espo_id=espo_id, betnr=betnr, decision="delete_failed")
                if isinstance(exc, RetryableError | DeferredError):
                    raise  # transient: the host retries the event
                return SyncResult(espo_id, betnr, "delete_failed", "deleted", message=msg)
            action = "deleted_in_advoware"
        else:
            action = "unlinked"
        await store.drop_link(espo_id)
        await store.clear_retry(espo_id)
        await store.redis.hdel(f"{store.prefix}:failed_deletes", espo_id)
        sync.metrics.syncs.labels(action, "ok").inc()
        log_record(logging.INFO, f"EspoCRM record deleted, policy {sync.delete_policy}", espo_id=espo_id,
                   betnr=betnr, decision=action)
        return SyncResult(espo_id, betnr, action, "deleted")
    finally:
        await store.release(espo_id, token)
