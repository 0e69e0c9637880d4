"""Scheduled sync check: queues every record that needs a sync (Advoware has no webhooks)."""

from typing import Any

from entrypoints.bootstrap import get_services, sync_check_schedule
from sync.sync_check import run_sync_check

config = {
    "type": "cron",
    "name": "beteiligte_sync_cron",
    "description": "Finds records that need a sync and queues them",
    "cron": sync_check_schedule(),
    "emits": ["vmh.beteiligte.sync_check", "vmh.beteiligte.delete"],
    "flows": ["beteiligte-sync"],
}


async def handler(context: Any) -> None:
    services = get_services()
    plan, queued = await run_sync_check(services.checker, services.metrics, context.emit)
    if plan.held:
        context.logger.error("sync check held risky records by the mass-change guard", {"why": plan.held})
    context.logger.info("sync check queued records",
                        {"scanned": plan.scanned, "queued": queued, "held": bool(plan.held)})
