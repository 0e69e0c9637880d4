"""Fixture: first hop of the chain; re-emits after a short pause."""

import asyncio
from typing import Any

config = {
    "type": "event",
    "name": "chain-first",
    "subscribes": ["fx.chain.start"],
    "emits": ["fx.chain.next"],
    "flows": ["fixtures"],
}


async def handler(data: dict[str, Any], context: Any) -> None:
    await asyncio.sleep(0.05)
    await context.emit({"topic": "fx.chain.next", "data": {**data, "hops": data.get("hops", 0) + 1}})
