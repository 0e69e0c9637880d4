"""Counters behind the status page and ``beteiligte-sync status``, shared by every process (Redis).

Keys (prefix ``bsync``), each day a UTC date ``YYYY-MM-DD`` and kept :data:`KEEP_DAYS` days:
- ``ops:syncs:<day>``      hash outcome -> count: every finished sync by the record's status after it
                           (``clean``, ``failed``, ``permanently_failed``, ``pending_sync``, ``deleted``...)
- ``ops:conflicts:<day>``  how many field conflicts the strategies settled that day
- ``ops:failures:<day>``   how many syncs ended ``failed`` or ``permanently_failed`` that day
- ``ops:last_check``       JSON: when the last sync check ran and what it found
Written in one pipeline per sync (:meth:`OpsCounters.add_sync`), never read on the sync's path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

KEEP_DAYS = 8  # the page shows 7; one more so "7 days ago" is whole all day
SHOWN_DAYS = 7
FAILED_OUTCOMES = ("failed", "permanently_failed")


@dataclass(frozen=True)
class DayCounts:
    day: str
    syncs: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    failures: int = 0

    @property
    def total(self) -> int:
        return sum(self.syncs.values())


@dataclass(frozen=True)
class CheckSummary:
    at: str  # ISO UTC
    scanned: int
    queued: int
    deletes: int
    held: str | None

    def describe(self) -> str:
        held = f"; HELD by the mass-change guard: {self.held}" if self.held else ""
        return f"{self.at}: scanned {self.scanned}, queued {self.queued} records and {self.deletes} deletes{held}"


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class OpsCounters:
    def __init__(self, redis: Redis, *, prefix: str = "bsync", clock: Callable[[], float]) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock

    def _k(self, kind: str, day: str) -> str:
        return f"{self.prefix}:ops:{kind}:{day}"

    def add_sync(self, pipe: Any, outcome: str, conflicts: int) -> None:
        """Queue the counter updates of one finished sync on ``pipe`` (a Redis pipeline)."""
        day = day_of(self.clock())
        ttl = KEEP_DAYS * 86400
        pipe.hincrby(self._k("syncs", day), outcome, 1)
        pipe.expire(self._k("syncs", day), ttl)
        if conflicts:
            pipe.incrby(self._k("conflicts", day), conflicts)
            pipe.expire(self._k("conflicts", day), ttl)
        if outcome in FAILED_OUTCOMES:
            pipe.incr(self._k("failures", day))
            pipe.expire(self._k("failures", day), ttl)

    async def days(self, n: int = SHOWN_DAYS) -> list[DayCounts]:
        """The last ``n`` days, oldest first, today last (days without syncs count zero)."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        days = [(today - timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for d in days:
            pipe.hgetall(self._k("syncs", d))
            pipe.get(self._k("conflicts", d))
            pipe.get(self._k("failures", d))
        raw = await pipe.execute()
        out = []
        for i, d in enumerate(days):
            syncs, conflicts, failures = raw[3 * i: 3 * i + 3]
            out.append(DayCounts(d, {_text(k): int(v) for k, v in (syncs or {}).items()},
                                 int(conflicts or 0), int(failures or 0)))
        return out

    async def save_check(self, *, scanned: int, queued: int, deletes: int, held: str | None) -> None:
        at = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds")
        summary = {"at": at, "scanned": scanned, "queued": queued, "deletes": deletes, "held": held}
        await self.redis.set(f"{self.prefix}:ops:last_check", json.dumps(summary))

    async def last_check(self) -> CheckSummary | None:
        raw = await self.redis.get(f"{self.prefix}:ops:last_check")
        if not raw:
            return None
        try:
            d = json.loads(_text(raw))
            return CheckSummary(str(d["at"]), int(d["scanned"]), int(d["queued"]), int(d["deletes"]), d.get("held"))
        except (ValueError, KeyError, TypeError):
            return None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
