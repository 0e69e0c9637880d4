"""Advoware's changes within seconds: reads the changes since the feed's watermark and queues a sync of
every linked Beteiligter that changed (Advoware has no webhooks; the sync check stays the safety net)."""

from typing import Any

from entrypoints.bootstrap import advoware_feed_schedule, get_services
from sync.advoware_feed import FEED_TOPIC, FeedState, run_poll

config = {
    "type": "cron",
    "name": "beteiligte_advoware_feed",
    "description": "Queues a sync of the linked Beteiligte Advoware changed since the last poll",
    "cron": advoware_feed_schedule(),
    "emits": [FEED_TOPIC],
    "flows": ["beteiligte-sync"],
}


async def handler(context: Any) -> None:
    services = get_services()
    if services.feed is None:
        return
    result = await run_poll(services.feed, context.emit, services.metrics)
    if result.queued:
        context.logger.info("advoware changes queued", {"queued": result.queued, "rows": result.rows,
                                                        "more": result.more})
    elif result.state == FeedState.FAILING:
        context.logger.debug("advoware feed poll failed", {"error": result.error})
