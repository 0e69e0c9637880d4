from typing import Any

config = {"type": "event", "name": "same-name", "subscribes": ["x"], "emits": []}


async def handler(data: Any, context: Any) -> None:
    return None
