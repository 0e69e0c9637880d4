from typing import Any

config = {"type": "event", "name": "sync-handler", "subscribes": ["x"], "emits": []}


def handler(data: Any, context: Any) -> None:
    return None
