"""Fixture: fails ``failTimes`` times per id, then succeeds; counts calls and successes in state."""

from typing import Any

config = {"type": "event", "name": "flaky", "subscribes": ["fx.flaky"], "emits": []}


async def handler(data: dict[str, Any], context: Any) -> None:
    calls = (await context.state.get("flaky-calls", data["id"]) or 0) + 1
    await context.state.set("flaky-calls", data["id"], calls)
    if calls <= data["failTimes"]:
        raise ValueError(f"flaky failure {calls}")
    done = (await context.state.get("flaky-done", data["id"]) or 0) + 1
    await context.state.set("flaky-done", data["id"], done)
