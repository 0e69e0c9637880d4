"""Fixture: last hop of the chain (nested folder); records the result under its trace id."""

import asyncio
from typing import Any

config = {
    "type": "event",
    "name": "chain-last",
    "subscribes": ["fx.chain.next"],
    "emits": [],
    "flows": ["fixtures"],
}


async def handler(data: dict[str, Any], context: Any) -> None:
    await asyncio.sleep(0.05)
    await context.state.set("chain", context.trace_id, {**data, "hops": data.get("hops", 0) + 1})
