"""Fixture: echoes what the host passed in as ``req``."""

from typing import Any

config = {
    "type": "api",
    "name": "echo",
    "path": "/echo/:kind/:id",
    "method": "POST",
    "emits": [],
    "flows": ["fixtures"],
}


async def handler(req: dict[str, Any], context: Any) -> dict[str, Any]:
    await context.state.set("echo", "calls", (await context.state.get("echo", "calls") or 0) + 1)
    context.logger.info("echo called", {"kind": req["pathParams"].get("kind")})
    return {
        "status": 201,
        "body": {
            "body": req["body"],
            "rawBody": req["rawBody"],
            "rawBytesLen": len(req["rawBytes"]),
            "headers": req["headers"],
            "pathParams": req["pathParams"],
            "queryParams": req["queryParams"],
            "traceId": context.trace_id,
        },
        "headers": {"X-Echo": "yes"},
    }
