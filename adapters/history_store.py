"""What happened to a record: its last decisions, for ``beteiligte-sync history <espoId>``.

Per record a capped Redis list ``bsync:history:<espoId>``, newest first: at most
:data:`MAX_ENTRIES` entries, none older than :data:`MAX_AGE_DAYS` days (older ones are dropped on
read, and the key expires that long after its last write). An entry holds when, the trigger, the
action and resulting status, which fields went to which side, the conflicts (field, group, winner,
strategy; never the values: no client data is copied here) and the record's message.

:class:`sync.sync_journal.SyncJournal` is the one call the sync makes when a result is final: it
writes the entry and the shared day counters (:mod:`adapters.ops_counters`) in one pipeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from domain.sync_status import Action

MAX_ENTRIES = 50
MAX_AGE_DAYS = 30


@dataclass(frozen=True)
class HistoryEntry:
    at: str  # ISO UTC
    trigger: str
    action: str
    status: str
    betnr: int | None
    to_advoware: list[str] = field(default_factory=list)
    to_espocrm: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    reason: str = ""
    message: str = ""

    def sides(self) -> str:
        parts = []
        if self.action == Action.CREATE:
            parts.append(f"→ Advoware: created with {len(self.to_advoware)} fields")
        elif self.to_advoware:
            parts.append("→ Advoware: " + ", ".join(self.to_advoware))
        if self.to_espocrm:
            parts.append("→ EspoCRM: " + ", ".join(self.to_espocrm))
        return "; ".join(parts) or "–"


class HistoryStore:
    def __init__(self, redis: Redis, *, prefix: str = "bsync", clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock

    def key(self, espo_id: str) -> str:
        return f"{self.prefix}:history:{espo_id}"

    def add(self, pipe: Any, espo_id: str, entry: HistoryEntry) -> None:
        k = self.key(espo_id)
        pipe.lpush(k, json.dumps(asdict(entry), ensure_ascii=False))
        pipe.ltrim(k, 0, MAX_ENTRIES - 1)
        pipe.expire(k, MAX_AGE_DAYS * 86400)

    async def read(self, espo_id: str, limit: int = MAX_ENTRIES) -> list[HistoryEntry]:
        """Newest first, at most ``limit``, none older than :data:`MAX_AGE_DAYS`."""
        cutoff = datetime.fromtimestamp(self.clock() - MAX_AGE_DAYS * 86400, UTC).isoformat(timespec="seconds")
        out = []
        for raw in await self.redis.lrange(self.key(espo_id), 0, max(limit, 1) - 1):
            try:
                entry = HistoryEntry(**json.loads(raw))
            except (ValueError, TypeError):
                continue  # an entry of another version: skip, never fail the command
            if entry.at >= cutoff:
                out.append(entry)
        return out

