from typing import Any

import stephost_no_such_module  # noqa: F401

config = {"type": "event", "name": "import-error", "subscribes": ["x"], "emits": []}


async def handler(data: Any, context: Any) -> None:
    return None
