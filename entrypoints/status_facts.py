"""The facts behind the status page and ``beteiligte-sync status``, gathered in one place.

- counts by ``syncStatus`` and the failed / permanently failed records: ONE paged EspoCRM read of
  ``id``, ``name``, ``syncStatus``, ``syncErrorMessage`` (EspoCRM is the truth staff see; no counter
  of ours can drift from it);
- syncs, conflicts and failures per day (7 days) and the last sync check: the shared counters in
  Redis (:mod:`adapters.ops_counters`), written by every process;
- queue depth and dead letters: the step host's (shared, in Redis);
- each dependency's state: :func:`dependency_rows` (serve's checks, :mod:`sync.dependency_health`).
Every part fails on its own: an unreachable system is a line on the page, never a broken page.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from adapters.errors import without_personal_data
from adapters.ops_counters import CheckSummary, DayCounts, OpsCounters
from domain.sync_status import ENTITY, SyncStatus
from entrypoints.bootstrap import Services
from sync.dependency_health import LABELS, DependencyState, DependencyStatus, read_stored

FAILED = (SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED)
SELECT = ["id", "name", "firstName", "lastName", "syncStatus", "syncErrorMessage"]
OK, FAILING, UNKNOWN = "ok", "failing", "unknown"
SERVE_GONE = "serve not reachable"  # how the CLI's ``workers`` begins when no serve answered /health
STALE_FIX = "no serve is checking it now: start serve, or run beteiligte-sync doctor"


@dataclass(frozen=True)
class FailedRow:
    espo_id: str
    name: str
    status: str
    message: str
    link: str


@dataclass(frozen=True)
class DependencyRow:
    name: str
    state: str  # ok | failing | unknown
    detail: str = ""
    since: str = ""


@dataclass
class StatusFacts:
    generated_at: str
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[FailedRow] = field(default_factory=list)
    espo_error: str | None = None
    days: list[DayCounts] = field(default_factory=list)
    last_check: CheckSummary | None = None
    queue_depth: int | None = None
    dead_letters: int | None = None
    redis_error: str | None = None
    dependencies: list[DependencyRow] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)  # what the watchdogs let go in this process

    @property
    def healthy(self) -> bool:
        return all(d.state != FAILING for d in self.dependencies)


def espo_record_link(espocrm_url: str, espo_id: str) -> str:
    """The record in EspoCRM's web UI: the API address without ``/api/v1``."""
    base = re.sub(r"/api/v1/?$", "", str(espocrm_url).rstrip("/"))
    return f"{base}/#{ENTITY}/view/{espo_id}"


def _one_line(exc: BaseException) -> str:
    return without_personal_data(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


async def gather(services: Services, host: Any, *, workers: str | None = None) -> StatusFacts:
    """Everything the page shows. ``workers``: the event workers' state when the caller knows it."""
    s = services.settings
    facts = StatusFacts(datetime.now(UTC).isoformat(timespec="seconds"), "sandbox" if s.sandbox else "configured")
    await _records(services, facts)
    await _shared(services, host, facts)
    facts.dependencies = await dependency_rows(services, facts, workers)
    facts.overdue = overdue_lines(services, host)
    return facts


def overdue_lines(services: Services, host: Any) -> list[str]:
    """One line per event handler and per record lease in flight past its bound in this process (the
    watchdogs reported it and let it go: another worker takes it over). ``serve``'s page shows serve's."""
    now = time.time()
    lines = [f"event {e['entry']} ({e['step']}, trace {e['trace_id']}): handler running for "
             f"{now - e['since']:.0f} s, taken over by another worker" for e in host.overdue_events()]
    lines += [f"record {espo_id}: sync pass running for over {services.sync.max_lease_hold_s:.0f} s, its lease "
              f"let go {now - at:.0f} s ago" for espo_id, at in services.sync.overdue_leases.items()]
    return lines


async def _records(services: Services, facts: StatusFacts) -> None:
    counts: Counter[str] = Counter()
    try:
        async for rec in services.espo.iter_list(ENTITY, select=SELECT, page_size=200):
            status = str(rec.get("syncStatus") or "")
            counts[status] += 1
            if status in FAILED:
                name = rec.get("name") or " ".join(str(rec.get(k) or "") for k in ("firstName", "lastName")).strip()
                facts.failed.append(FailedRow(
                    str(rec["id"]), str(name), status, str(rec.get("syncErrorMessage") or ""),
                    espo_record_link(str(services.settings.espocrm_url), str(rec["id"]))))
    except Exception as exc:  # EspoCRM away: say so, show the rest
        facts.espo_error = _one_line(exc)
        return
    facts.counts = dict(sorted(counts.items()))


async def _shared(services: Services, host: Any, facts: StatusFacts) -> None:
    counters = OpsCounters(services.redis, prefix=services.store.prefix, clock=services.sync.clock)
    try:
        facts.days = await counters.days()
        facts.last_check = await counters.last_check()
        facts.dead_letters = await host.dead_letter_count()
        await host.drain(timeout=0)  # refreshes the shared queue depth from Redis, waits for nothing
        facts.queue_depth = host.queue_depth()
    except Exception as exc:  # Redis away
        facts.redis_error = _one_line(exc)


async def dependency_rows(services: Services, facts: StatusFacts, workers: str | None) -> list[DependencyRow]:
    """Each dependency's state as serve's checks (:mod:`sync.dependency_health`) last found it: this
    process's own checks when it runs them (``serve``), else what serve stored in Redis (the CLI)."""
    states = services.dependencies.snapshot()
    if all(s.status == DependencyStatus.UNKNOWN for s in states):
        try:
            stored = await read_stored(services.redis)
        except Exception as exc:  # Redis away: the page says so in its Redis row
            facts.redis_error = facts.redis_error or _one_line(exc)
            stored = []
        states = [_unless_stale(s, services, workers) for s in stored] or states
    rows = [DependencyRow(LABELS.get(s.name, str(s.name)), str(s.status), s.last_error or "", _since(s.since))
            for s in states]
    if facts.espo_error:
        rows.append(DependencyRow("EspoCRM (this page's read)", FAILING, facts.espo_error))
    if facts.redis_error:
        rows.append(DependencyRow("Redis (this page's read)", FAILING, facts.redis_error))
    if workers is not None:
        rows.append(DependencyRow("event workers", OK if workers == "reading" else FAILING, workers))
    return rows


def _unless_stale(state: DependencyState, services: Services, workers: str | None) -> DependencyState:
    """A stored state is what a serve found: ``unknown`` once no serve answers, or its last check is
    older than three check intervals (that serve stopped checking), whatever it said then."""
    settings = services.settings
    limit = 3 * settings.health_check_interval_seconds + settings.http_timeout_seconds
    gone = workers is not None and workers.startswith(SERVE_GONE)
    old = state.checked_at is None or services.sync.clock() - state.checked_at > limit
    if not (gone or old) or state.status == DependencyStatus.UNKNOWN:
        return state
    when = _since(state.checked_at) or "never"
    return replace(state, status=DependencyStatus.UNKNOWN,
                   last_error=f"last found {state.status} at {when} by a serve: {STALE_FIX}")


def _since(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch is not None else ""
