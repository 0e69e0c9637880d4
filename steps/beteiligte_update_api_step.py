"""EspoCRM `CBeteiligte.update` webhook: verify, validate, de-duplicate, emit `vmh.beteiligte.update`."""

from typing import Any

from entrypoints.bootstrap import get_services
from entrypoints.webhook_intake import intake

config = {
    "type": "api",
    "name": "beteiligte_update_api",
    "description": "Receives EspoCRM CBeteiligte.update webhooks",
    "path": "/vmh/webhook/beteiligte/update",
    "method": "POST",
    "emits": ["vmh.beteiligte.update"],
    "flows": ["beteiligte-sync"],
}


async def handler(req: Any, context: Any) -> dict[str, Any]:
    return await intake("update", req, context, get_services())
