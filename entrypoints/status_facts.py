"""The facts behind the status page and ``beteiligte-sync status``, gathered in one place.

- counts by ``syncStatus`` and the failed / permanently failed records: ONE paged EspoCRM read of
  ``id``, ``name``, ``syncStatus``, ``syncErrorMessage`` (EspoCRM is the truth staff see; no counter
  of ours can drift from it);
- syncs, conflicts and failures per day (7 days) and the last sync check: the shared counters in
  Redis (:mod:`adapters.ops_counters`), written by every process;
- queue depth and dead letters: the step host's (shared, in Redis);
- each dependency's state: :func:`dependency_rows` (the seam for ``DependencyHealth.snapshot()``).
Every part fails on its own: an unreachable system is a line on the page, never a broken page.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.errors import without_personal_data
from adapters.ops_counters import CheckSummary, DayCounts, OpsCounters
from domain.sync_status import ENTITY, SyncStatus
from entrypoints.bootstrap import Services

FAILED = (SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED)
SELECT = ["id", "name", "firstName", "lastName", "syncStatus", "syncErrorMessage"]
OK, FAILING, UNKNOWN = "ok", "failing", "unknown"


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
    facts.dependencies = dependency_rows(services, facts, workers)
    return facts


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


def dependency_rows(services: Services, facts: StatusFacts, workers: str | None) -> list[DependencyRow]:
    """Each dependency's state. SEAM: once ``sync/dependency_health.py`` lands, ``services`` carries a
    ``DependencyHealth`` whose ``snapshot()`` (per dependency: state, last error, since) is shown as is;
    until then, what this page itself learnt (its EspoCRM read, Redis) and what ``/health`` knows."""
    health = getattr(services, "dependency_health", None) or getattr(services, "health", None)
    snapshot = getattr(health, "snapshot", None)
    if callable(snapshot):
        return [_row(name, dep) for name, dep in dict(snapshot()).items()]
    rows = [
        DependencyRow("EspoCRM", FAILING if facts.espo_error else OK, facts.espo_error or "records read for this page"),
        DependencyRow("Redis", FAILING if facts.redis_error else OK, facts.redis_error or "counters read"),
        DependencyRow("Advoware", UNKNOWN, "not checked by this view: beteiligte-sync doctor checks it"),
    ]
    if workers is not None:
        rows.append(DependencyRow("event workers", OK if workers == "reading" else FAILING, workers))
    return rows


def _row(name: str, dep: Any) -> DependencyRow:
    def get(key: str) -> Any:
        return dep.get(key) if isinstance(dep, dict) else getattr(dep, key, None)

    state = str(get("state") or get("status") or UNKNOWN)
    return DependencyRow(str(name), state, str(get("last_error") or ""), str(get("since") or ""))
