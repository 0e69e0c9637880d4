"""Scheduled sync check: queues every record that needs a sync (Advoware has no webhooks)."""

from typing import Any

from entrypoints.bootstrap import get_services, sync_check_schedule
from sync.sync_check import enqueue_plan

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
    plan = await services.checker.plan()
    for item in plan.work:
        services.metrics.sync_check_found.labels(item.reason).inc()
    if plan.held:
        services.metrics.sync_check_found.labels("held_by_mass_change_guard").inc()
        context.logger.error("sync check held risky records by the mass-change guard", {"why": plan.held})
    queued = await enqueue_plan(plan, context.emit)
    context.logger.info("sync check queued records", {
        "scanned": plan.scanned, "queued": queued, "deletes": len(plan.deletes),
        "advoware_source": plan.advoware_source,
    })
