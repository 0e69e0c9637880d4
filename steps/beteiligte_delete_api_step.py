"""EspoCRM `CBeteiligte.delete` webhook: verify, validate, de-duplicate, emit `vmh.beteiligte.delete`."""

from typing import Any

from entrypoints.bootstrap import get_services
from entrypoints.webhook_intake import intake

config = {
    "type": "api",
    "name": "beteiligte_delete_api",
    "description": "Receives EspoCRM CBeteiligte.delete webhooks",
    "path": "/vmh/webhook/beteiligte/delete",
    "method": "POST",
    "emits": ["vmh.beteiligte.delete"],
    "flows": ["beteiligte-sync"],
}


async def handler(req: Any, context: Any) -> dict[str, Any]:
    return await intake("delete", req, context, get_services())
