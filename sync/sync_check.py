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
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from adapters.ops_counters import OpsCounters
from adapters.sync_state_store import Link, SyncStateStore
from domain.beteiligte_mapper import FIELDS, MappingError, advoware_to_canonical, espo_to_canonical, spelled
from domain.conflict_policy import ConflictPolicy
from domain.decision import Decision
from sync.check_plan import CheckPlan, WorkItem
from sync.check_scan import Scan, id_int
from sync.metrics import SyncMetrics
from sync.pass_decision import NotTheSameParty, decide_pass

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

__all__ = ["CheckPlan", "SyncChecker", "WorkItem", "describe_plan", "enqueue_plan"]
log = logging.getLogger(__name__)
ENTITY = "CBeteiligte"
ADVO_NAME = {f.espo: f.advo for f in FIELDS}
SELECT = ["id", "modifiedAt", "betnr", "advowareRowId", "advowareLastSync", "syncStatus", "syncRetryCount"] + [
    f.espo for f in FIELDS
]


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
        recheck: Callable[[dict[str, Any]], Awaitable[bool]] | None = None,
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
        self.recheck = recheck  # held records: does anything still hold them? (onboarding.hold_recheck)

    async def plan(self, *, confirm: bool = False, record: bool = True) -> CheckPlan:
        """Both systems read page by page at the same time (see :mod:`sync.check_scan`); ``record``: keep
        it as the last sync check (not for a dry run)."""
        plan = CheckPlan()
        scan = Scan(self.espo, self.advo, self.store, self.preview, self.get_concurrency, plan, self.clock(), SELECT,
                    recheck=self.recheck)
        if await self.advo.supports_list():
            await asyncio.gather(scan.read_espocrm(), scan.read_advoware())
            await scan.resolve()
        else:
            plan.advoware_source = "get"
            await scan.read_espocrm(twins_now=True)
        log.info("sync check read %d EspoCRM records (%d pages) and %d Advoware Beteiligte: %d to sync",
                 plan.scanned, scan.espo_pages, len(scan.rows), len(plan.work))
        gone = [i async for i in self.store.iter_linked_ids() if id_int(i) not in scan.seen]
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

    def preview(self, w: WorkItem, rec: dict[str, Any], link: Link | None, twin: dict[str, Any] | None) -> WorkItem:
        """What a sync would do, as far as the read data tells (dry run, mass-change guard)."""
        try:
            espo = espo_to_canonical(rec)
            advo = advoware_to_canonical(twin) if twin else None
            betnr = int(rec["betnr"]) if rec.get("betnr") else (link.betnr if link else None)
            relinked = link is not None and link.betnr != betnr
            # the API user is not known here: a lost base whose rowId moved is previewed as a first link
            decision = decide_pass(rec, betnr, twin, None if relinked else link, relinked=relinked,
                                   policy=self.policy, timezone=self.timezone, espo_edited_at=None,
                                   advo_edited_at=None, api_user_id=None)
            # as the values would be sent: a phone number as its source holds it
            w.decision = replace(decision, to_advoware=spelled(decision.to_advoware, rec, "espo"),
                                 to_espo=spelled(decision.to_espo, twin, "advo"))
            w.empties = _empties(w.decision, espo, advo)
        except (MappingError, NotTheSameParty):
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


async def run_sync_check(checker: SyncChecker, metrics: SyncMetrics, emit: Callable[[dict[str, Any]], Any],
                         *, confirm: bool = False) -> tuple[CheckPlan, int]:
    """One sync check, as the schedule and ``beteiligte-sync sync-check`` both run it: plan, count what
    it found (``/metrics``), queue. Returns the plan and how many were queued; the caller reports a
    held mass change where its operator looks (the step's log, the command's output)."""
    plan = await checker.plan(confirm=confirm)
    for item in plan.work:
        metrics.sync_check_found.labels(item.reason).inc()
    if plan.held:
        metrics.sync_check_found.labels("held_by_mass_change_guard").inc()
    queued = await enqueue_plan(plan, emit)
    log.info("sync check queued records: scanned %d, queued %d, deletes %d, Advoware read via %s",
             plan.scanned, queued, len(plan.deletes), plan.advoware_source)
    return plan, queued


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

