"""Fixture: an idempotent handler that needs Redis (writes step state), then records the run.
``seconds`` makes it take time; ``failTimes`` makes its first runs fail."""

import asyncio
from typing import Any

from tests.stephost_fixtures.outage import STATE_GROUP, TOPIC, fail_if_planned, record

config = {"type": "event", "name": "record", "subscribes": [TOPIC], "emits": []}


async def handler(data: dict[str, Any], context: Any) -> None:
    fail_if_planned(data["id"], data.get("failTimes", 0))
    await asyncio.sleep(data.get("seconds", 0))
    await context.state.set(STATE_GROUP, data["id"], True)
    record(data["id"])
