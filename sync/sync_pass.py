"""One sync pass of one record, under its lease: read, decide, and write only what the decision needs.

1. ``GET`` the EspoCRM record and the Advoware twin, decide. A record already in sync costs no write.
2. Only when something is to be written: mark ``syncStatus=syncing`` (its answer is a fresh read: a
   person's edit since the ``GET`` means deciding again).
3. Write Advoware; account for our write at once in the link.
4. Without optimistic concurrency (EspoCRM's default: ``X-Version-Number`` is ignored), values going
   to EspoCRM are written only after one more ``GET`` shows the record unmoved; with it, the version
   header makes EspoCRM refuse a stale release (``409``) and we decide again.
5. Release with ONE ``PUT`` carrying the status fields and only the fields the decision changes. The
   base of the next compare holds the values we decided on, so a person's edit that slipped in
   anywhere is seen as a change by the next pass (which the hand-off runs at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from adapters.advoware_api import AdvowareAPI
from adapters.errors import FatalError, NotFoundError, ValidationError
from adapters.espocrm_api import EspoCRMAPI
from adapters.sync_state_store import Link, SyncStateStore
from domain.beteiligte_mapper import (
    advoware_to_canonical,
    canonical_to_advoware,
    canonical_to_espo,
    espo_to_canonical,
)
from domain.conflict_policy import ConflictPolicy
from domain.decision import Decision, fingerprint, owed
from domain.sync_status import ENTITY, Action, SyncStatus
from domain.timestamps import format_espo, parse_advoware
from sync.advoware_create import AdvowareCreator
from sync.espocrm_facts import EspoFacts
from sync.metrics import SyncMetrics
from sync.pass_decision import decide_pass
from sync.release_check import after_release
from sync.sync_failure_writer import FailureWriter
from sync.sync_log import log_record
from sync.sync_result import SyncResult


class PassOwner(Protocol):
    """What a pass needs from the record's sync (:class:`sync.beteiligte_sync.BeteiligteSync`)."""

    espo: EspoCRMAPI
    advo: AdvowareAPI
    store: SyncStateStore
    policy: ConflictPolicy
    metrics: SyncMetrics
    timezone: str
    clock: Callable[[], float]
    failures: FailureWriter
    creates: AdvowareCreator
    espo_facts: EspoFacts

    def now(self) -> datetime: ...

    async def edit_time(self, record: dict[str, Any], *, fallback: bool = False) -> datetime | None: ...

    async def report_conflicts(self, espo_id: str, betnr: int, decision: Decision,
                               record: dict[str, Any] | None = None,
                               advo_obj: dict[str, Any] | None = None) -> None: ...


class BetnrTaken(FatalError):
    """The ``betnr`` entered in the record is linked to another EspoCRM record: never two links."""


class RecordMoved(Exception):  # noqa: N818 - a signal, not a failure
    """A person changed the record while we were deciding: decide again on ``PassState.record``."""


@dataclass
class PassState:
    """What one pass knows, carried across re-decisions."""

    record: dict[str, Any]  # the EspoCRM record the decision is based on
    espo_edited_at: datetime | None  # a person's last EspoCRM edit
    advo_row_id: str | None = None  # the Advoware rowId last read or written (a failure keeps it)
    betnr: int | None = None  # the pass's Beteiligter: the record's betnr, or its link's (a failure logs it)
    marked: bool = False  # syncStatus=syncing written in this pass
    # The link as read with the lease (one round trip less): good for the first decision only, since
    # a pass that is decided again may have saved a link meanwhile.
    prefetched: tuple[Link | None] | None = None
    # The lease's token when this pass may end it: its last base and the release are then one round
    # trip, and ``released`` says how that went (False: a change is waiting, run once more).
    lease_token: str | None = None
    released: bool | None = None

    def take_prefetched(self) -> tuple[Link | None] | None:
        taken, self.prefetched = self.prefetched, None
        return taken

    @property
    def espo_id(self) -> str:
        return str(self.record["id"])

    @property
    def occ(self) -> bool:
        """EspoCRM enforces ``X-Version-Number`` only with optimistic concurrency on."""
        return self.record.get("versionNumber") is not None


def mapped_state(record: dict[str, Any]) -> tuple[dict[str, str | None], Any]:
    return espo_to_canonical(record), record.get("betnr")


def _needs_status_write(record: dict[str, Any], betnr: int) -> bool:
    return (record.get("syncStatus") != SyncStatus.CLEAN or bool(record.get("syncRetryCount"))
            or bool(record.get("syncErrorMessage")) or record.get("betnr") != betnr)


class SyncPass:
    def __init__(self, sync: PassOwner) -> None:
        self.s = sync

    async def run(self, st: PassState, trigger: str) -> SyncResult:
        s = self.s
        await s.espo_facts.load()
        link, betnr, relinked = await self._link_and_betnr(st)
        st.betnr = betnr
        advo_obj = await self._read_advoware(betnr, st)
        decision = decide_pass(
            st.record, betnr, advo_obj, link, relinked=relinked, policy=s.policy, timezone=s.timezone,
            espo_edited_at=st.espo_edited_at, advo_edited_at=self._advo_edited_at(link, advo_obj),
            api_user_id=s.espo_facts.user_id)
        if decision.action == Action.ADVOWARE_MISSING:
            if betnr is None:
                raise RuntimeError("decide() reported a missing twin for a record that has no betnr")
            return await s.failures.advoware_missing(st.record, betnr, decision, trigger)
        if not decision.writes_advoware and not decision.to_espo:
            if betnr is None or advo_obj is None:
                raise RuntimeError("decide() found nothing to do for a record without its twin")
            return await self._settle(st, decision, betnr, advo_obj, link, trigger)
        if not st.marked:
            await self._mark(st)
        betnr, final_advo = await self._write_advoware(st, decision, betnr, advo_obj, link)
        if decision.to_espo and not st.occ:
            await self._ensure_unmoved(st)
        return await self._release(st, decision, betnr, final_advo, trigger, decided_advo=advo_obj)

    # -- reading ------------------------------------------------------------------------------
    async def _link_and_betnr(self, st: PassState) -> tuple[Link | None, int | None, bool]:
        """The stored link of the record's pair, its ``betnr``, and whether a link was stored for
        another ``betnr`` (relinked by a person: the new pair is checked like a typed ``betnr``)."""
        record = st.record
        prefetched = st.take_prefetched()
        link = prefetched[0] if prefetched is not None else await self.s.store.get_link(st.espo_id)
        betnr = record.get("betnr")
        relinked = bool(link and betnr and link.betnr != betnr)
        if relinked:
            link = None  # the old base says nothing about the new pair
        if not betnr and link:
            betnr = link.betnr  # a create whose release write never landed: do not create twice
        if betnr and link is None:
            await self._check_owner(str(record["id"]), int(betnr))
        return link, int(betnr) if betnr else None, relinked

    async def _check_owner(self, espo_id: str, betnr: int) -> None:
        """A ``betnr`` entered by hand (or an operator's relink) must not be another record's twin."""
        owner = await self.s.store.betnr_owner(betnr)
        if owner is None or owner == espo_id:
            return
        owner_link = await self.s.store.get_link(owner)
        if owner_link is not None and owner_link.betnr == betnr:
            raise BetnrTaken(f"betnr {betnr} is already linked to EspoCRM record {owner}: one Beteiligter is "
                             f"never linked to two records; if this record is a duplicate, merge it into {owner}, "
                             "otherwise clear betnr here (the next sync creates it anew in Advoware)",
                             system="advoware")

    async def _read_advoware(self, betnr: int | None, st: PassState) -> dict[str, Any] | None:
        if betnr is None:
            return None
        try:
            obj = await self.s.advo.get_beteiligter(betnr)
        except NotFoundError:
            return None
        st.advo_row_id = obj.get("rowId")
        return obj

    def _advo_edited_at(self, link: Link | None, advo_obj: dict[str, Any] | None) -> datetime | None:
        """Advoware's last edit by a person: ``geaendertAm``, unless it is our own write's."""
        if advo_obj is None:
            return None
        if link and link.advo_edited_at and advo_obj.get("rowId") == link.row_id:
            return datetime.fromisoformat(link.advo_edited_at)
        return parse_advoware(advo_obj.get("geaendertAm"), self.s.timezone)

    # -- writing ------------------------------------------------------------------------------
    async def _mark(self, st: PassState) -> None:
        before = mapped_state(st.record)
        marked = await self.s.espo.update(ENTITY, st.espo_id, {"syncStatus": SyncStatus.SYNCING},
                                          version_number=st.record.get("versionNumber"))
        st.marked = True
        st.record = marked
        if mapped_state(marked) != before:
            st.espo_edited_at = await self.s.edit_time(marked, fallback=True)
            raise RecordMoved

    async def _ensure_unmoved(self, st: PassState) -> None:
        """Without optimistic concurrency: one more read right before values go to EspoCRM."""
        fresh = await self.s.espo.get(ENTITY, st.espo_id)
        if mapped_state(fresh) != mapped_state(st.record):
            st.record = fresh
            st.espo_edited_at = await self.s.edit_time(fresh, fallback=True)
            raise RecordMoved
        st.record = fresh

    async def _write_advoware(self, st: PassState, decision: Decision, betnr: int | None,
                              advo_obj: dict[str, Any] | None, link: Link | None) -> tuple[int, dict[str, Any]]:
        s = self.s
        espo_vals = espo_to_canonical(st.record)
        if decision.action == Action.CREATE:
            created = await s.creates.create(st.espo_id, espo_vals, source=st.record)
            st.advo_row_id = created.get("rowId")
            return int(created["betNr"]), created
        if betnr is None or advo_obj is None:
            raise RuntimeError("an update needs the linked Advoware Beteiligter")
        if not decision.to_advoware:
            return betnr, advo_obj
        final = await s.advo.update_beteiligter(betnr, canonical_to_advoware(decision.to_advoware, advo_obj, st.record))
        st.advo_row_id = final.get("rowId")
        s.metrics.writes.labels("advoware").inc()
        # Account for our Advoware write at once: if the release below fails or meets a newer
        # EspoCRM edit, the next decision must not take our own write for a person's change.
        # Values still owed to EspoCRM stay marked as Advoware changes, so they are not lost.
        advo_fp = fingerprint(advoware_to_canonical(final))
        advo_fp.update(owed(decision.to_espo))
        # EspoCRM's side of the base: the values we decided on, which Advoware now holds; a person
        # undoing the change before the release lands is then a change again, not "nothing moved".
        owed_since = self._advo_edited_at(link, advo_obj) if decision.to_espo else None
        await s.store.save_link(st.espo_id, Link(
            betnr=betnr, row_id=final.get("rowId"), espo=fingerprint(espo_vals),
            advo=advo_fp, synced_at=s.clock(), advo_edited_at=owed_since.isoformat() if owed_since else None,
        ))
        return betnr, final

    async def _release(self, st: PassState, decision: Decision, betnr: int, final_advo: dict[str, Any],
                       trigger: str, *, decided_advo: dict[str, Any] | None) -> SyncResult:
        """``decided_advo``: the Beteiligter as the decision read it (before our write), whose values the
        conflict Note shows as Advoware held them."""
        s = self.s
        decided = espo_to_canonical(st.record)
        sent = canonical_to_espo(decision.to_espo, final_advo, s.espo_facts.phone_international)
        updated = await self._write_release(st, betnr, final_advo, sent)
        updated, lost = await self._recover_overwritten(st, decided, sent, updated)
        written = espo_to_canonical(updated)
        # The base: the values we decided on, plus what EspoCRM made of the values we wrote (it
        # normalises some). A person's edit that slipped in after our last read stays a change.
        base_espo = {**decided, **{f: written[f] for f in decision.to_espo if f not in lost}}
        if any(written[f] != base_espo[f] for f in base_espo) or updated.get("betnr") != betnr:
            await s.store.mark_dirty(st.espo_id)  # a person's edit landed meanwhile: one more pass
        await self._finish(st, Link(
            betnr=betnr, row_id=final_advo.get("rowId"), espo=fingerprint(base_espo),
            advo=fingerprint(advoware_to_canonical(final_advo)) | owed(lost), synced_at=s.clock()))
        await s.report_conflicts(st.espo_id, betnr, decision, st.record, decided_advo)
        s.metrics.syncs.labels(decision.action, "ok").inc()
        log_record(logging.INFO, "synced", espo_id=st.espo_id, betnr=betnr, decision=decision.summary(),
                   trigger=trigger)
        return SyncResult(st.espo_id, betnr, decision.action, SyncStatus.CLEAN, decision)

    async def _recover_overwritten(self, st: PassState, decided: dict[str, Any], sent: dict[str, Any],
                                   updated: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """A person's save our release overwrote (issue 17 item 6): put back, and its fields left as a
        change on both sides for the next pass (:func:`sync.release_check.after_release`)."""
        if not sent:
            return updated, set()
        return await after_release(self.s, st.espo_id, st.record.get("versionNumber"), decided, sent, updated)

    async def _finish(self, st: PassState, link: Link | None) -> None:
        """The pass's last base (``None``: the stored one stands) and the end of any retry schedule;
        with the lease's release when this pass may end it, in one round trip."""
        store = self.s.store
        if st.lease_token is not None:
            st.released = await store.release_unless_dirty(st.espo_id, st.lease_token, link=link, clear_retry=True)
        elif link is not None:
            await store.save_link(st.espo_id, link, clear_retry=True)
        else:
            await store.clear_retry(st.espo_id)

    async def _write_release(self, st: PassState, betnr: int, final_advo: dict[str, Any],
                             values: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            **values,
            "syncStatus": SyncStatus.CLEAN,
            "advowareLastSync": format_espo(self.s.now()),
            "advowareRowId": final_advo.get("rowId"),
            "betnr": betnr,
            "syncRetryCount": 0,
            "syncErrorMessage": None,
        }
        try:
            updated = await self.s.espo.update(ENTITY, st.espo_id, body,
                                               version_number=st.record.get("versionNumber"))
        except ValidationError as exc:  # an option or the phone setting changed, or a number refused for good
            refusal = await self.s.espo_facts.refusal(exc)
            if refusal is exc:
                raise
            raise refusal from exc
        self.s.metrics.writes.labels("espocrm").inc()
        return updated

    async def _settle(self, st: PassState, decision: Decision, betnr: int, advo_obj: dict[str, Any],
                      link: Link | None, trigger: str) -> SyncResult:
        """Nothing to sync: write the status only when the record shows something else."""
        s = self.s
        if _needs_status_write(st.record, betnr):
            return await self._release(st, decision, betnr, advo_obj, trigger, decided_advo=advo_obj)
        fresh = Link(betnr=betnr, row_id=advo_obj.get("rowId"), espo=fingerprint(espo_to_canonical(st.record)),
                     advo=fingerprint(advoware_to_canonical(advo_obj)), synced_at=s.clock())
        moved = link is None or (link.espo, link.advo, link.row_id) != (fresh.espo, fresh.advo, fresh.row_id)
        await self._finish(st, fresh if moved else None)
        s.metrics.syncs.labels(Action.NOOP, "ok").inc()
        log_record(logging.INFO, "in sync, nothing written", espo_id=st.espo_id, betnr=betnr,
                   decision=decision.summary(), trigger=trigger)
        return SyncResult(st.espo_id, betnr, Action.NOOP, SyncStatus.CLEAN, decision)
