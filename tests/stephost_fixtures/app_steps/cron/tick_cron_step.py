"""Fixture: a cron step that counts its runs and emits a fan-out event."""

from typing import Any

config = {
    "type": "cron",
    "name": "tick",
    "cron": "0 3 1 1 *",
    "emits": ["fx.fanout"],
    "flows": ["fixtures"],
}


async def handler(context: Any) -> None:
    runs = await context.state.get("tick", "runs") or []
    await context.state.set("tick", "runs", [*runs, context.trace_id])
    await context.emit({"topic": "fx.fanout", "data": {"from": "tick"}})
