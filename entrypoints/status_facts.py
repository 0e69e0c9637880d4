"""The facts behind the status page and ``beteiligte-sync status``, gathered in one place.

- counts by ``syncStatus`` and the failed / permanently failed records: ONE paged EspoCRM read of
  ``id``, ``name``, ``syncStatus``, ``syncErrorMessage`` (EspoCRM is the truth staff see; no counter
  of ours can drift from it);
- syncs, conflicts and failures per day (7 days) and the last sync check: the shared counters in
  Redis (:mod:`adapters.ops_counters`), written by every process;
- queue depth and dead letters: the step host's (shared, in Redis);
- each dependency's state: :func:`dependency_rows` (serve's checks, :mod:`installation.dependency_health`).
Every part fails on its own: an unreachable system is a line on the page, never a broken page.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from adapters.errors import without_personal_data
from adapters.ops_counters import CheckSummary, DayCounts, OpsCounters
from adapters.redis_ops import as_text
from domain.sync_status import ENTITY, SyncStatus
from entrypoints.bootstrap import Services
from installation.dependency_health import LABELS, Dependency, DependencyState, DependencyStatus, read_stored
from sync.advoware_feed import FeedState

FAILED = (SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED)
SELECT = ["id", "name", "firstName", "lastName", "syncStatus", "syncErrorMessage"]
OK, FAILING, UNKNOWN = "ok", "failing", "unknown"
DEGRADED = "degraded"
# A pending record whose retry was due this long ago and has not happened is overdue: its change is stuck.
OVERDUE_GRACE_S = 120.0
DEAD_LETTERS_SHOWN = 1000


class Attention(StrEnum):
    """Why a record's latest change has not reached the other system (the metric's ``reason``)."""

    FAILED = "failed"
    PERMANENTLY_FAILED = "permanently_failed"
    PENDING_OVERDUE = "pending_overdue"
    DEAD_LETTER = "dead_letter"
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
    # Pending records with a reason (deferred: a system asked us to wait) or past their retry time,
    # and records whose latest event ended as a dead letter; see :attr:`degraded`.
    pending: list[FailedRow] = field(default_factory=list)
    dead: list[FailedRow] = field(default_factory=list)
    overdue: set[str] = field(default_factory=set)
    stuck: list[str] = field(default_factory=list)  # what the watchdogs let go in this process
    feed: str = ""  # Advoware's change feed, one line (feed_line)
    advoware: str = ""  # where the Advoware calls go: discovered by Kanzlei (and how) or configured

    @property
    def healthy(self) -> bool:
        return all(d.state != FAILING for d in self.dependencies)

    @property
    def attention(self) -> dict[Attention, int]:
        """Records whose latest change did not reach the other system, by reason."""
        return {
            Attention.FAILED: sum(r.status == SyncStatus.FAILED for r in self.failed),
            Attention.PERMANENTLY_FAILED: sum(r.status == SyncStatus.PERMANENTLY_FAILED for r in self.failed),
            Attention.PENDING_OVERDUE: len(self.overdue),
            Attention.DEAD_LETTER: len(self.dead) or int(self.dead_letters or 0),
        }

    @property
    def degraded(self) -> bool:
        """Not ok: a dependency fails, EspoCRM or Redis could not be read, a record needs attention, or
        a watchdog let go of a handler or lease stuck past its bound."""
        return (not self.healthy or bool(self.espo_error) or bool(self.redis_error)
                or any(self.attention.values()) or bool(self.stuck))

    @property
    def verdict(self) -> str:
        return DEGRADED if self.degraded else OK


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
    letters = await _shared(services, host, facts)
    await _records(services, facts, letters)
    await _overdue(services, facts)
    facts.dependencies = await dependency_rows(services, facts, workers)
    for reason, n in facts.attention.items():
        services.metrics.attention.labels(str(reason)).set(n)
    facts.stuck = stuck_lines(services, host)
    facts.feed = await feed_line(services)
    facts.advoware = await advoware_line(services)
    return facts


async def advoware_line(services: Services) -> str:
    """The Advoware addresses in use: what discovery found (and whether fresh or cached), or the settings."""
    s, found = services.settings, services.advoware_endpoints
    if found is not None:
        try:
            await found.resolve()  # a process that has not called Advoware yet: the cached answer
        except Exception as exc:
            return f"not discovered: {_one_line(exc)}"
        return f"discovered: {found.describe()}"
    return f"configured: API {s.advoware_url} (ADVOWARE_URL), token gateway {s.advoware_token_url} (ADVOWARE_TOKEN_URL)"


async def feed_line(services: Services) -> str:
    """The change feed's state: off, without list endpoint, or its watermark, lag and changes this hour."""
    feed = services.feed
    if feed is None or feed.status.state == FeedState.OFF:
        return "off (ADVOWARE_POLL_SECONDS=0): Advoware's changes arrive at the sync check"
    if feed.status.state == FeedState.NO_LIST:
        return "off: this Advoware has no list endpoint; its changes arrive at the sync check only"
    try:
        if ignored := await feed.since_ignored():  # found by this process or another one
            return f"off: {ignored}"
        water = as_text(await services.redis.hget(f"{services.store.prefix}:feed", "water"))
        changes = await feed.changes_last_hour()
    except Exception as exc:  # Redis away: its own row says so
        return f"unknown (Redis: {_one_line(exc)})"
    feed.status.watermark = water or feed.status.watermark
    lag = feed.lag_seconds()
    polled = (f"last poll {feed.status.last_poll.isoformat(timespec='seconds')}" if feed.status.last_poll
              else "polled by another process")
    state = f"failing ({feed.status.error})" if feed.status.state == FeedState.FAILING else "running"
    return (f"{state}, every {feed.poll_seconds} s; {polled}; watermark {water or 'none yet'} (Advoware's time)"
            f"{f', lag {lag:.0f} s' if lag is not None else ''}; {changes} changes queued this hour")


def stuck_lines(services: Services, host: Any) -> list[str]:
    """One line per event handler and per record lease in flight past its bound in this process (the
    watchdogs reported it and let it go: another worker takes it over). ``serve``'s page shows serve's."""
    now = time.time()
    lines = [f"event {e['entry']} ({e['step']}, trace {e['trace_id']}): handler running for "
             f"{now - e['since']:.0f} s, taken over by another worker" for e in host.overdue_events()]
    lines += [f"record {espo_id}: sync pass running for over {services.sync.max_lease_hold_s:.0f} s, its lease "
              f"let go {now - at:.0f} s ago" for espo_id, at in services.sync.overdue_leases.items()]
    return lines


def _name(rec: dict[str, Any]) -> str:
    return str(rec.get("name") or " ".join(str(rec.get(k) or "") for k in ("firstName", "lastName")).strip())


async def _records(services: Services, facts: StatusFacts, letters: dict[str, str]) -> None:
    counts: Counter[str] = Counter()
    url = str(services.settings.espocrm_url)
    try:
        async for rec in services.espo.iter_list(ENTITY, select=SELECT, page_size=200):
            espo_id, status = str(rec["id"]), str(rec.get("syncStatus") or "")
            message = str(rec.get("syncErrorMessage") or "")
            counts[status] += 1
            row = FailedRow(espo_id, _name(rec), status, message, espo_record_link(url, espo_id))
            if status in FAILED:
                facts.failed.append(row)
            elif status == SyncStatus.PENDING:
                facts.pending.append(row)
            if espo_id in letters:
                facts.dead.append(replace(row, status=Attention.DEAD_LETTER, message=letters[espo_id]))
    except Exception as exc:  # EspoCRM away: say so, show the rest
        facts.espo_error = _one_line(exc)
        return
    facts.counts = dict(sorted(counts.items()))


async def _overdue(services: Services, facts: StatusFacts) -> None:
    """Pending records whose retry was due more than OVERDUE_GRACE_S ago; the rest of the pending rows
    stay on the page only when they carry a reason (a system asked us to wait)."""
    if not facts.pending:
        return
    try:
        retries = await services.store.get_retries([r.espo_id for r in facts.pending])
    except Exception as exc:  # Redis away: its row says so
        facts.redis_error = facts.redis_error or _one_line(exc)
        return
    now = services.sync.clock()
    facts.overdue = {i for i, r in retries.items() if r is not None and r.next_at + OVERDUE_GRACE_S < now}
    facts.pending = [r for r in facts.pending if r.message or r.espo_id in facts.overdue]


async def _shared(services: Services, host: Any, facts: StatusFacts) -> dict[str, str]:
    """Counters, queue and dead letters from Redis; returns the dead letters' record ids and errors."""
    counters = OpsCounters(services.redis, prefix=services.store.prefix, clock=services.sync.clock)
    letters: dict[str, str] = {}
    try:
        facts.days = await counters.days()
        facts.last_check = await counters.last_check()
        facts.dead_letters = await host.dead_letter_count()
        for letter in (await host.dead_letters())[-DEAD_LETTERS_SHOWN:]:
            data = letter.get("data") if isinstance(letter, dict) else None
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                letters[data["id"]] = (f"its latest change failed {letter.get('attempts', '?')} attempts: "
                                       f"{without_personal_data(str(letter.get('error') or ''))[:200]}")
        await host.drain(timeout=0)  # refreshes the shared queue depth from Redis, waits for nothing
        facts.queue_depth = host.queue_depth()
    except Exception as exc:  # Redis away
        facts.redis_error = _one_line(exc)
    return letters


async def dependency_rows(services: Services, facts: StatusFacts, workers: str | None) -> list[DependencyRow]:
    """Each dependency's state as serve's checks (:mod:`installation.dependency_health`) last found it: this
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
    if facts.espo_error and not any(r.name == LABELS[Dependency.ESPOCRM] and r.state == FAILING for r in rows):
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
