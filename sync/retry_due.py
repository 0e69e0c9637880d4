"""Retries at the time the record's message states ("retry in 44 s", "waiting 60 s"), not at the next
scheduled sync check: a failure schedules its retry (``retry_due`` in Redis), and the retry step queues
every record whose retry is due (``steps/beteiligte_retry_cron_step.py``, every few seconds, one
process at a time like every cron step). The sync check stays the safety net for a retry lost between
taking and queueing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.sync_state_store import SyncStateStore

RETRY_TOPIC = "vmh.beteiligte.sync_check"
RETRY_TRIGGER = "retry_due"


async def queue_due_retries(store: SyncStateStore, emit: Callable[[dict[str, Any]], Awaitable[None]],
                            now: float) -> int:
    """Queue a sync of every record whose retry is due; how many were queued."""
    ids = await store.take_due_retries(now)
    for espo_id in ids:
        await emit({"topic": RETRY_TOPIC, "data": {"id": espo_id, "trigger": RETRY_TRIGGER}})
    return len(ids)
