"""Fixture: an API handler that raises."""

from typing import Any

config = {"type": "api", "name": "boom", "path": "/boom", "method": "GET", "emits": []}


async def handler(req: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("kaputt")
