"""Fixture: fan-out subscriber A; mutates its copy of the data."""

from typing import Any

config = {"type": "event", "name": "fanout-a", "subscribes": ["fx.fanout"], "emits": []}


async def handler(data: dict[str, Any], context: Any) -> None:
    data["touchedBy"] = "a"
    await context.state.set("fanout", "a", {"data": data, "traceId": context.trace_id})
