"""Due retries: queues the records whose retry time has come (what their syncErrorMessage promised)."""

from typing import Any

from entrypoints.bootstrap import get_services
from sync.retry_due import RETRY_TOPIC, queue_due_retries

config = {
    "type": "cron",
    "name": "beteiligte_retry_cron",
    "description": "Queues the records whose retry is due",
    "cron": "* * * * * */5",  # every 5 s (the sixth field is seconds, as croniter reads it)
    "emits": [RETRY_TOPIC],
    "flows": ["beteiligte-sync"],
}


async def handler(context: Any) -> None:
    services = get_services()
    queued = await queue_due_retries(services.store, context.emit, services.sync.clock())
    if queued:
        context.logger.info("due retries queued", {"queued": queued})
