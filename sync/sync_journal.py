"""The one call the sync makes when a result is final: the record's history entry and the shared day
counters, in one Redis round trip (:mod:`adapters.history_store`, :mod:`adapters.ops_counters`).

Only decisions are kept: a webhook proved already synced, or a change handed to the lease holder's
next pass, is not one. A Redis error here is logged and never fails the sync: the sync is done and
written, only the operators' record of it is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.errors import without_personal_data
from adapters.history_store import HistoryEntry, HistoryStore
from adapters.ops_counters import OpsCounters
from domain.sync_status import Action, SyncStatus
from sync.sync_log import log_record
from sync.sync_result import SyncResult

NOT_RECORDED = (Action.SKIP_IN_SYNC, Action.COVERED_BY_HOLDER, Action.SKIP_FAILED_UNCHANGED,
                Action.SKIP_TEST_RECORD)


def about_a_record(result: SyncResult) -> bool:
    """A history is kept only for a record EspoCRM has: an id it does not know (a signed webhook for a
    record deleted since, a typo in ``sync <id>``) or could not read as an id makes no key in Redis."""
    return result.action is not Action.SKIP_DELETED and result.status is not SyncStatus.UNKNOWN


def entry_of(result: SyncResult, trigger: str, at: float) -> HistoryEntry:
    """What the history keeps of a result: field names and conflict sides, never values."""
    d = result.decision
    return HistoryEntry(
        at=datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds"),
        trigger=trigger,
        action=str(d.action if d else result.action),
        status=str(result.status),
        betnr=result.betnr,
        to_advoware=sorted(d.to_advoware) if d else [],
        to_espocrm=sorted(d.to_espo) if d else [],
        conflicts=[{"field": c.field, "group": c.group, "winner": c.winner, "strategy": c.strategy}
                   for c in (d.conflicts if d else ())],
        reason=d.reason if d else "",
        message=without_personal_data(result.message) if result.message else "",
    )


class SyncJournal:
    def __init__(self, redis: Redis, *, clock: Callable[[], float] = time.time, prefix: str = "bsync") -> None:
        self.redis = redis
        self.clock = clock
        self.history = HistoryStore(redis, prefix=prefix, clock=clock)
        self.counters = OpsCounters(redis, prefix=prefix, clock=clock)

    async def note(self, result: SyncResult, trigger: str) -> None:
        if result.action in NOT_RECORDED or not about_a_record(result):
            return
        entry = entry_of(result, trigger, self.clock())
        try:
            pipe = self.redis.pipeline(transaction=False)
            self.history.add(pipe, result.espo_id, entry)
            self.counters.add_sync(pipe, entry.status, len(entry.conflicts))
            await pipe.execute()
        except RedisError as exc:
            log_record(logging.WARNING, f"sync history not written: {exc}", espo_id=result.espo_id,
                       betnr=result.betnr, decision=entry.action)
