"""Fixture: takes ``seconds`` to finish, then records completion."""

import asyncio
from typing import Any

config = {"type": "event", "name": "slow", "subscribes": ["fx.slow"], "emits": []}


async def handler(data: dict[str, Any], context: Any) -> None:
    await context.state.set("slow", f"started-{data['id']}", True)
    await asyncio.sleep(data["seconds"])
    await context.state.set("slow", f"done-{data['id']}", True)
