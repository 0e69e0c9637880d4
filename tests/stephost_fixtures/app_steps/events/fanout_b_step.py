"""Fixture: fan-out subscriber B."""

from typing import Any

config = {"type": "event", "name": "fanout-b", "subscribes": ["fx.fanout"], "emits": []}


async def handler(data: dict[str, Any], context: Any) -> None:
    await context.state.set("fanout", "b", {"data": data, "traceId": context.trace_id})
