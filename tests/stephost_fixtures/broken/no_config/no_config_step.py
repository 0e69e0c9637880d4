from typing import Any


async def handler(data: Any, context: Any) -> None:
    return None
