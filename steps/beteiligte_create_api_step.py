"""EspoCRM `CBeteiligte.create` webhook: verify, validate, de-duplicate, emit `vmh.beteiligte.create`."""

from typing import Any

from entrypoints.bootstrap import get_services
from entrypoints.webhook_intake import intake

config = {
    "type": "api",
    "name": "beteiligte_create_api",
    "description": "Receives EspoCRM CBeteiligte.create webhooks",
    "path": "/vmh/webhook/beteiligte/create",
    "method": "POST",
    "emits": ["vmh.beteiligte.create"],
    "flows": ["beteiligte-sync"],
}


async def handler(req: Any, context: Any) -> dict[str, Any]:
    return await intake("create", req, context, get_services())
