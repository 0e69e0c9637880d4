"""Reconciliation: find every record that needs a sync, with paged reads and without writing.

EspoCRM is read in pages of up to 200 (only the fields needed); Advoware through its list endpoint
when it has one (``rowId`` of every Beteiligter in pages of 200), otherwise one ``GET`` per linked
record. A record needs work when it was never synced, failed and is due, is stuck in ``syncing``
without a lock, or when either side's mapped values moved away from the base of the last sync
(lost webhooks, and every Advoware change: Advoware has no webhooks). Links whose EspoCRM record is
gone are lost deletes. The mass-change guard holds a check that would touch too many linked records
destructively (deletes, vanished Advoware twins, mapped fields emptied) until an operator confirms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.errors import NotFoundError
from adapters.ops_counters import OpsCounters
from adapters.sync_state_store import Link, RetryState, SyncStateStore
from domain.beteiligte_mapper import FIELDS, MappingError, advoware_to_canonical, espo_to_canonical
from domain.conflict_policy import ConflictPolicy
from domain.decision import Decision, decide_records, fingerprint
from sync.sync_failure_writer import espo_fingerprint

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

ENTITY = "CBeteiligte"
ADVO_NAME = {f.espo: f.advo for f in FIELDS}
SELECT = ["id", "modifiedAt", "betnr", "advowareRowId", "syncStatus", "syncRetryCount"] + [
    f.espo for f in FIELDS
]


@dataclass
class WorkItem:
    espo_id: str
    betnr: int | None
    reason: str
    decision: Decision | None = None  # what a sync would do, as far as the list data tells
    empties: bool = False  # it would empty a mapped field that holds a value on the other side


@dataclass
class CheckPlan:
    work: list[WorkItem] = field(default_factory=list)
    deletes: list[WorkItem] = field(default_factory=list)
    scanned: int = 0
    linked: int = 0
    advoware_source: str = "list"
    held: str | None = None  # mass-change guard: why the check stopped

    def risky(self) -> list[WorkItem]:
        out = list(self.deletes)
        out.extend(w for w in self.work if _is_risky(w))
        return out

    def safe_work(self) -> list[WorkItem]:
        """The work the mass-change guard never holds: ordinary edits, creates, retries."""
        return [w for w in self.work if not _is_risky(w)]


def _is_risky(w: WorkItem) -> bool:
    d = w.decision
    return d is not None and (d.action == "advoware_missing" or w.empties)


def _empties(d: Decision, espo: dict[str, Any], advo: dict[str, Any] | None) -> bool:
    if advo is None:
        return False
    return any(v is None and advo.get(f) is not None for f, v in d.to_advoware.items()) or any(
        v is None and espo.get(f) is not None for f, v in d.to_espo.items())


class SyncChecker:
    def __init__(
        self,
        espo: EspoCRMAPI,
        advo: AdvowareAPI,
        store: SyncStateStore,
        *,
        policy: ConflictPolicy,
        clock: Callable[[], float],
        timezone: str = "Europe/Berlin",
        guard_share: float = 0.2,
        guard_min: int = 3,
        get_concurrency: int = 8,
    ) -> None:
        self.espo = espo
        self.advo = advo
        self.store = store
        self.policy = policy
        self.clock = clock
        self.timezone = timezone
        self.guard_share = guard_share
        self.guard_min = guard_min
        self.get_concurrency = get_concurrency

    async def plan(self, *, confirm: bool = False, record: bool = True) -> CheckPlan:
        """What needs a sync now; ``record``: keep it as the last sync check (not for a dry run)."""
        records = [r async for r in self.espo.iter_list(ENTITY, select=SELECT, page_size=200)]
        ids = [r["id"] for r in records]
        links = await self.store.get_links(ids)
        retries = await self.store.get_retries(ids)
        locked = await self.store.locked_ids([r["id"] for r in records if r.get("syncStatus") == "syncing"])
        plan = CheckPlan(scanned=len(records))
        advo, plan.advoware_source = await self._advoware_twins(records, links)
        now = self.clock()
        for rec in records:
            item = self._needs(rec, links.get(rec["id"]), retries.get(rec["id"]), rec["id"] in locked,
                               advo, plan.advoware_source, now)
            if rec.get("betnr"):
                plan.linked += 1
            if item is not None:
                plan.work.append(item)
        gone = sorted(await self.store.linked_ids() - set(ids))
        for espo_id, gone_link in (await self.store.get_links(gone)).items():
            if gone_link is not None:
                plan.deletes.append(WorkItem(espo_id, gone_link.betnr, "deleted in EspoCRM, delete webhook lost"))
                plan.linked += 1
        risky = plan.risky()
        if not confirm and len(risky) >= self.guard_min and len(risky) > self.guard_share * max(plan.linked, 1):
            plan.held = (f"{len(risky)} of {plan.linked} linked records would be deleted, lose their "
                         f"Advoware twin or have mapped fields emptied (limit {self.guard_share:.0%}); "
                         "those were held, every other record is synced. Check both systems, then run "
                         "'beteiligte-sync sync-check --confirm-mass-change'.")
        if record:
            await OpsCounters(self.store.redis, prefix=self.store.prefix, clock=self.clock).save_check(
                scanned=plan.scanned, queued=len(plan.safe_work() if plan.held else plan.work),
                deletes=0 if plan.held else len(plan.deletes), held=plan.held)
        return plan

    async def _advoware_twins(
        self, records: list[dict[str, Any]], links: dict[str, Link | None]
    ) -> tuple[dict[int, dict[str, Any] | None], str]:
        if await self.advo.supports_list():
            twins: dict[int, dict[str, Any] | None] = {}
            async for obj in self.advo.iter_beteiligte(page_size=200):
                twins[int(obj["betNr"])] = obj
            return twins, "list"
        sem = asyncio.Semaphore(self.get_concurrency)
        betnrs = {int(r["betnr"]) for r in records if r.get("betnr")}

        async def one(b: int) -> tuple[int, dict[str, Any] | None]:
            async with sem:
                try:
                    return b, await self.advo.get_beteiligter(b)
                except NotFoundError:
                    return b, None

        return dict(await asyncio.gather(*(one(b) for b in betnrs))), "get"

    def _needs(
        self,
        rec: dict[str, Any],
        link: Link | None,
        retry: RetryState | None,
        locked: bool,
        twins: dict[int, dict[str, Any] | None],
        source: str,
        now: float,
    ) -> WorkItem | None:
        espo_id = rec["id"]
        betnr = int(rec["betnr"]) if rec.get("betnr") else None
        status = rec.get("syncStatus")
        twin = twins.get(betnr) if betnr else None

        def item(reason: str) -> WorkItem:
            return self._preview(WorkItem(espo_id, betnr, reason), rec, link, twin)

        if status == "syncing":
            return None if locked else item("stuck in syncing without a lock")
        if retry is not None:
            if retry.fatal or status == "permanently_failed":
                changed = espo_fingerprint(rec) != retry.espo_fp or (
                    twin is not None and twin.get("rowId") != retry.advo_row_id)
                if changed:
                    return item("changed since it failed")
                if retry.fatal or retry.next_at > now:
                    return None
                return item("slow retry after giving up")
            if retry.next_at > now:
                return None
            return item(f"retry due ({status})")
        if status in ("pending_sync", "failed", "permanently_failed"):
            return item(f"status {status}")
        if betnr is None:
            return item("never synced")
        if link is None:
            return item("no base of the last sync")
        if link.betnr != betnr:
            return item("relinked to another betnr")
        try:
            if fingerprint(espo_to_canonical(rec)) != link.espo:
                return item("changed in EspoCRM")
        except MappingError:
            return item("unreadable EspoCRM values")
        if twin is None:
            return item("missing in Advoware")
        if twin.get("rowId") != link.row_id and fingerprint(advoware_to_canonical(twin)) != link.advo:
            return item("changed in Advoware")
        return None

    def _preview(self, w: WorkItem, rec: dict[str, Any], link: Link | None, twin: dict[str, Any] | None) -> WorkItem:
        try:
            espo = espo_to_canonical(rec)
            advo = advoware_to_canonical(twin) if twin else None
            w.decision = decide_records(rec, twin, link.base() if link else None, policy=self.policy,
                                        linked=bool(rec.get("betnr")), timezone=self.timezone)
            w.empties = _empties(w.decision, espo, advo)
        except MappingError:
            pass  # the sync itself reports it on the record
        return w


async def enqueue_plan(plan: CheckPlan, emit: Callable[[dict[str, Any]], Any]) -> int:
    """Queues the plan's records for the central sync step. Returns how many were queued. When the
    mass-change guard holds, only the risky records (deletes, vanished twins, emptied fields) wait for
    an operator; every other record is queued as usual."""
    work = plan.safe_work() if plan.held else plan.work
    for w in work:
        await emit({"topic": "vmh.beteiligte.sync_check",
                    "data": {"id": w.espo_id, "reason": w.reason, "trigger": "sync_check"}})
    deletes = [] if plan.held else plan.deletes
    for w in deletes:
        await emit({"topic": "vmh.beteiligte.delete",
                    "data": {"id": w.espo_id, "deleted": True, "trigger": "sync_check"}})
    return len(work) + len(deletes)


def describe_plan(plan: CheckPlan) -> list[str]:
    """One line per record, with fields and sides: the ``--dry-run`` output."""
    lines = [f"scanned {plan.scanned} EspoCRM records, {plan.linked} linked, Advoware read via "
             f"{'list endpoint' if plan.advoware_source == 'list' else 'single GETs'}"]
    for w in plan.work:
        d = w.decision
        detail = d.summary() if d else "decided when synced"
        lines.append(f"  {w.espo_id} betnr={w.betnr}: {w.reason} -> {detail}")
        if d:
            for f, val in sorted(d.to_advoware.items()):
                if d.action != "create" or val is not None:
                    lines.append(f"      advoware.{ADVO_NAME[f]} := {val!r}")
            for f, val in sorted(d.to_espo.items()):
                lines.append(f"      espocrm.{f} := {val!r}")
    for w in plan.deletes:
        lines.append(f"  {w.espo_id} betnr={w.betnr}: {w.reason} -> delete policy")
    if plan.held:
        lines.append(f"HELD: {plan.held}")
    lines.append(f"{len(plan.work)} to sync, {len(plan.deletes)} deletes")
    return lines

