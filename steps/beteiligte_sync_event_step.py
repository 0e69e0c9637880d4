"""The central sync step: every Beteiligte event ends here, one record per event."""

from typing import Any

from entrypoints.bootstrap import get_services

config = {
    "type": "event",
    "name": "beteiligte_sync_event",
    "description": "Syncs one CBeteiligte record with its Advoware Beteiligter",
    "subscribes": [
        "vmh.beteiligte.create",
        "vmh.beteiligte.update",
        "vmh.beteiligte.delete",
        "vmh.beteiligte.sync_check",
    ],
    "emits": [],
    "flows": ["beteiligte-sync"],
}


async def handler(data: Any, context: Any) -> None:
    services = get_services()
    espo_id = str(data.get("id") or "")
    if not espo_id:
        context.logger.error("event without id ignored", {"data": data})
        return
    if data.get("deleted"):
        result = await services.sync.delete(espo_id)
    else:
        seen = data.get("seen")
        result = await services.sync.sync(espo_id, trigger=str(data.get("trigger") or "event"),
                                          seen=seen if isinstance(seen, dict) else None)
    context.logger.info("sync finished", {
        "espo_id": result.espo_id, "betnr": result.betnr, "decision": result.describe(),
        "status": result.status,
    })
