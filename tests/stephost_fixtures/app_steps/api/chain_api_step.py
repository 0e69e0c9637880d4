"""Fixture: starts a chain api -> event -> event; also emits a topic it did not declare on demand."""

from typing import Any

config = {
    "type": "api",
    "name": "chain-start",
    "path": "/chain",
    "method": "POST",
    "emits": ["fx.chain.start", "fx.fanout", "fx.flaky", "fx.slow"],
    "flows": ["fixtures"],
}


async def handler(req: dict[str, Any], context: Any) -> dict[str, Any]:
    body = req["body"] or {}
    try:
        await context.emit({"topic": body.get("topic", "fx.chain.start"), "data": body.get("data", {})})
    except Exception as exc:  # steps import nothing from the host, so catch by name
        return {"status": 409, "body": {"error": type(exc).__name__, "message": str(exc)}}
    return {"status": 202, "body": {"traceId": context.trace_id}}
