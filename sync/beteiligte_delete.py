"""EspoCRM delete -> policy. The link comes from our own store: EspoCRM answers 404 for the record.

``unlink`` (default): Advoware is left untouched, the link is forgotten, the decision logged.
``delete``: the Advoware Beteiligter is deleted; one still referenced by a matter (409) is kept, and
the failure is stored under ``bsync:failed_deletes`` (and logged, and counted) for operators.
A record deleted while a create of it had no answer yet (its ``POST`` may have landed): the Beteiligter
that create made is looked for as a retry would adopt it and, when found, treated as the linked one.
A delete event is acted on only when EspoCRM answers 404 for the record: the webhook secret names no
event, so a correctly signed batch replayed at the delete URL must not delete anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from adapters.errors import ApiError, DeferredError, NotFoundError, RetryableError
from adapters.sync_state_store import CreateAttempt, SyncStateStore
from domain.sync_status import ENTITY, Action, DeletePolicy, SyncStatus
from sync.metrics import SyncMetrics
from sync.sync_log import log_record
from sync.sync_result import SyncResult

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

LOCK_WAIT_S = 30.0
LostCreateFinder = Callable[[str, CreateAttempt], Awaitable[tuple[int, int] | None]]


class BeteiligteDeleter:
    def __init__(self, espo: EspoCRMAPI, advo: AdvowareAPI, store: SyncStateStore, metrics: SyncMetrics, *,
                 policy: DeletePolicy | str, clock: Callable[[], float],
                 lost_create: LostCreateFinder | None = None) -> None:
        self.espo = espo
        self.lost_create = lost_create
        self.advo = advo
        self.store = store
        self.metrics = metrics
        self.policy = DeletePolicy(policy)
        self.clock = clock

    async def delete(self, espo_id: str) -> SyncResult:
        token = await self._lock(espo_id)
        try:
            return await self.delete_locked(espo_id)
        finally:
            await self.store.release(espo_id, token)

    async def _lock(self, espo_id: str) -> str:
        waited = 0.0
        while (token := await self.store.acquire(espo_id)) is None:
            if waited >= LOCK_WAIT_S:
                raise TimeoutError(f"record {espo_id} stayed locked; delete will be retried")
            await asyncio.sleep(0.2)
            waited += 0.2
        return token

    async def delete_locked(self, espo_id: str) -> SyncResult:
        """:meth:`delete` for a caller that holds the record's lease."""
        link = await self.store.get_link(espo_id)
        betnr = link.betnr if link else None
        if await self._still_exists(espo_id):
            log_record(logging.WARNING, "delete event for a record that still exists in EspoCRM: ignored",
                       espo_id=espo_id, betnr=betnr, decision=Action.DELETE_IGNORED_RECORD_EXISTS)
            self.metrics.syncs.labels("delete_ignored", "record_exists").inc()
            return SyncResult(espo_id, betnr, Action.DELETE_IGNORED_RECORD_EXISTS, SyncStatus.CLEAN)
        if betnr is None:
            found = await self._lost_create_betnr(espo_id)
            if found is not None and found[1] and self.policy == DeletePolicy.DELETE:
                return await self._keep_unproven(espo_id, *found)
            betnr = None if found is None else found[0]
        if betnr is None:
            await self.store.forget(espo_id)
            log_record(logging.WARNING, "delete: no link known, nothing to do in Advoware",
                       espo_id=espo_id, betnr=None, decision=Action.DELETE_NO_LINK)
            self.metrics.syncs.labels("delete_unlinked", "no_link").inc()
            return SyncResult(espo_id, None, Action.DELETE_NO_LINK, SyncStatus.DELETED)
        if self.policy == DeletePolicy.DELETE:
            failed = await self._delete_in_advoware(espo_id, betnr)
            if failed is not None:
                return failed
        action = Action.DELETED_IN_ADVOWARE if self.policy == DeletePolicy.DELETE else Action.UNLINKED
        await self.store.forget(espo_id)
        self.metrics.syncs.labels(action, "ok").inc()
        log_record(logging.INFO, f"EspoCRM record deleted, policy {self.policy}", espo_id=espo_id,
                   betnr=betnr, decision=action)
        return SyncResult(espo_id, betnr, action, SyncStatus.DELETED)

    async def _keep_unproven(self, espo_id: str, betnr: int, edited: int) -> SyncResult:
        """A Beteiligter with the identity a lost create sent, but other values: that create's, edited
        since, or a namesake a person typed in by hand (the create never landed). Nothing proves it ours:
        kept, and named for operators under ``bsync:failed_deletes``."""
        await self.store.forget(espo_id)
        msg = (f"Advoware-Beteiligter {betnr} nicht gelöscht: angelegt, während die Anlage dieses Datensatzes "
               f"ohne Antwort blieb, aber mit {edited} anderen Feldwerten (seitdem geändert oder von Hand "
               "angelegt); bitte prüfen und gegebenenfalls in Advoware löschen")
        await self.store.record_failed_delete(espo_id, betnr, msg, self.clock())
        log_record(logging.WARNING, f"delete: Advoware {betnr} has the identity a lost create sent but "
                   f"{edited} other values (edited since, or typed in by hand): kept, check it (bsync:failed_deletes)",
                   espo_id=espo_id, betnr=betnr, decision=Action.DELETE_LOST_CREATE_KEPT)
        self.metrics.syncs.labels(Action.DELETE_LOST_CREATE_KEPT, "kept").inc()
        return SyncResult(espo_id, betnr, Action.DELETE_LOST_CREATE_KEPT, SyncStatus.DELETED, message=msg)

    async def _lost_create_betnr(self, espo_id: str) -> tuple[int, int] | None:
        """The Beteiligter a create of this record made although its answer was lost, if one did, and
        how many of its values differ from those the create sent."""
        if self.policy != DeletePolicy.DELETE or self.lost_create is None:
            return None  # unlink keeps a twin anyway: nothing to look for
        attempt = await self.store.create_attempt(espo_id)
        if attempt is None:
            return None
        found = await self.lost_create(espo_id, attempt)
        if found is not None and await self._named_elsewhere(espo_id, found[0]):
            return None
        if found is not None:
            if not found[1] or self.policy != DeletePolicy.DELETE:  # else kept: :meth:`_keep_unproven`
                log_record(logging.WARNING, "delete: a create whose answer was lost did reach Advoware; "
                           f"its Beteiligter follows DELETE_POLICY={self.policy}", espo_id=espo_id, betnr=found[0],
                           decision=Action.DELETE_FOUND_LOST_CREATE)
                self.metrics.syncs.labels(Action.DELETE_FOUND_LOST_CREATE, "found").inc()
        elif not await self.advo.supports_list():
            log_record(logging.WARNING, "delete: a create of this record may have reached Advoware (its answer was "
                       f"lost at {attempt.at:%Y-%m-%d %H:%M} UTC); without Advoware's list it cannot be found: "
                       "look for a Beteiligter created then", espo_id=espo_id, betnr=None,
                       decision=Action.DELETE_LOST_CREATE_UNKNOWN)
            self.metrics.syncs.labels(Action.DELETE_LOST_CREATE_UNKNOWN, "not_found").inc()
        return found

    async def _named_elsewhere(self, espo_id: str, betnr: int) -> bool:
        """Whether another EspoCRM record names ``betnr`` (typed in, its sync not run yet): that record's
        party, never this one's to delete or count as its twin."""
        where = [{"type": "equals", "attribute": "betnr", "value": betnr}]
        others = [str(r.get("id")) for r in (await self.espo.list(ENTITY, where=where, select=["id"]))["list"]
                  if r.get("id") != espo_id]
        if others:
            log_record(logging.WARNING, f"delete: the Beteiligter a lost create of this record made is named by "
                       f"EspoCRM record {others[0]}: left to that record", espo_id=espo_id, betnr=betnr,
                       decision=Action.DELETE_NO_LINK)
        return bool(others)

    async def _still_exists(self, espo_id: str) -> bool:
        try:
            await self.espo.get(ENTITY, espo_id)
        except NotFoundError:
            return False
        return True

    async def _delete_in_advoware(self, espo_id: str, betnr: int) -> SyncResult | None:
        """``None`` when the Beteiligter is gone; the failure's result when it was kept."""
        try:
            await self.advo.delete_beteiligter(betnr)
            self.metrics.writes.labels("advoware").inc()
        except NotFoundError:
            pass  # already gone: the goal is reached
        except ApiError as exc:
            msg = f"Advoware-Beteiligter {betnr} konnte nicht gelöscht werden: {exc}"
            await self.store.record_failed_delete(espo_id, betnr, msg, self.clock())
            self.metrics.failures.labels("delete").inc()
            log_record(logging.ERROR, msg, espo_id=espo_id, betnr=betnr, decision=Action.DELETE_FAILED)
            if isinstance(exc, RetryableError | DeferredError):
                raise  # transient: the host retries the event
            return SyncResult(espo_id, betnr, Action.DELETE_FAILED, SyncStatus.DELETED, message=msg)
        return None
