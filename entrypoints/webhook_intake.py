"""EspoCRM webhook intake: signature, body validation, de-duplication, emit, answer.

Answers per the service contract: 401 bad/missing signature, 400 malformed or too large, 503 when
the queue cannot take the events, 200 once every id is queued. Nothing is queued from a 4xx.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from domain.beteiligte_mapper import mapped_changes
from domain.decision import item_fingerprints

MAX_BODY_BYTES = 4 * 1024 * 1024
# EspoCRM sends at most 50 queued events per webhook POST (spec 1.2, its ``webhookBatchSize``); twice
# that leaves headroom for a raised setting. A larger batch is a 400 (EspoCRM drops it; the sync
# check finds its records), so one request never holds the edge for long.
MAX_ITEMS = 100
ESPO_ID = re.compile(r"[0-9a-f]{17}")


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UnknownWebhook(WebhookRejected):
    """The signature names a webhook id without a known secret (perhaps one registered just now, or its
    secret was lost with the store)."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(401, "signature names an unknown webhook")
        self.webhook_id = webhook_id


def raw_bytes(req: Mapping[str, Any]) -> bytes:
    raw = req.get("rawBytes")
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    text = req.get("rawBody")
    if isinstance(text, bytes | bytearray):
        return bytes(text)
    if isinstance(text, str):
        return text.encode("utf-8", errors="surrogateescape")
    return b""


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return str(v)
    return None


def verify_signature(raw: bytes, headers: Mapping[str, Any], secrets: Mapping[str, str]) -> str:
    """Returns the webhook id whose secret signed ``raw``; raises ``WebhookRejected(401)``.

    ``Signature: base64(webhookId + ":" + hex(HMAC_SHA256(secret, raw)))``, or the legacy
    ``X-Signature`` with the raw 32-byte digest instead of hex.
    """
    for name, as_hex in (("Signature", True), ("X-Signature", False)):
        value = _header(headers, name)
        if not value:
            continue
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected(401, "signature is not base64") from None
        hook_id, sep, digest = decoded.partition(b":")
        if not sep:
            raise WebhookRejected(401, "signature has no webhook id")
        secret = secrets.get(hook_id.decode("utf-8", errors="replace"))
        if secret is None:
            raise UnknownWebhook(hook_id.decode("utf-8", errors="replace"))
        mac = hmac.new(secret.encode(), raw, hashlib.sha256)
        expected = mac.hexdigest().encode() if as_hex else mac.digest()
        if not hmac.compare_digest(expected, digest):
            raise WebhookRejected(401, "signature does not match the body")
        return hook_id.decode()
    raise WebhookRejected(401, "missing Signature header")


async def verify_with_stored(raw: bytes, headers: Mapping[str, Any], services: Any) -> str:
    """:func:`verify_signature` against the secrets of the environment and of the store; the stored ones
    are re-read when due, and once more when the signature names an unknown webhook. Still unknown:
    EspoCRM's webhooks are read back (rate-limited, :mod:`installation.webhook_recovery`). While the secrets are
    lost and EspoCRM could not be asked yet, the answer is ``503``: the signature cannot be checked
    now, EspoCRM retries the batch; nothing is accepted unverified."""
    await services.refresh_webhook_secrets()
    try:
        return verify_signature(raw, headers, services.webhook_secrets())
    except UnknownWebhook as unknown:
        hook_id = unknown.webhook_id
    if await services.refresh_webhook_secrets(unknown_id=True) and hook_id in services.webhook_secrets():
        return verify_signature(raw, headers, services.webhook_secrets())
    if await services.recover_webhook_secret(hook_id):
        return verify_signature(raw, headers, services.webhook_secrets())
    if services.webhook_secrets_pending():
        raise WebhookRejected(503, "webhook secrets not recovered yet (the store was emptied): retry later")
    raise UnknownWebhook(hook_id)


def parse_batch(raw: bytes) -> list[dict[str, Any]]:
    """A JSON array of objects with a non-empty string ``id``; anything else is a 400."""
    if len(raw) > MAX_BODY_BYTES:
        raise WebhookRejected(400, "body too large")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise WebhookRejected(400, "body is not JSON") from None
    if not isinstance(body, list):
        raise WebhookRejected(400, "body must be a JSON array")
    if len(body) > MAX_ITEMS:
        raise WebhookRejected(400, f"more than {MAX_ITEMS} items")
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise WebhookRejected(400, f"item {i} is not an object")
        rid = item.get("id")
        if not isinstance(rid, str) or not ESPO_ID.fullmatch(rid):
            raise WebhookRejected(400, f"item {i} has no valid id (17 lowercase hex characters)")
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def collapse(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Unique ids in first-seen order, each with the latest value of every attribute its items named
    (several updates of one record can share a batch; later items hold later values)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        out.setdefault(item["id"], {}).update(item)
    return out


def events_for(event: str, ids: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The events to queue for a verified batch, and the ids skipped (only unmapped attributes changed).

    Create and update events carry ``seen``: fingerprints (never values) of the mapped attributes and
    the ``betnr`` the items carried. The sync skips an event whose values the last sync already
    stored: a late or duplicated delivery, or on EspoCRM 8.x the echo of our own write."""
    events: list[dict[str, Any]] = []
    skipped: list[str] = []
    for espo_id, item in ids.items():
        attrs = set(item) - {"id"}
        if event == "update" and not (mapped_changes(item) or "betnr" in attrs):
            skipped.append(espo_id)  # nothing to sync
            continue
        data: dict[str, Any] = {"id": espo_id, "trigger": f"webhook_{event}"}
        if event == "update":
            data["changed"] = sorted(attrs)
        if event in ("create", "update"):
            data["seen"] = item_fingerprints(item)
        if event == "delete":
            data["deleted"] = True
        events.append(data)
    return events, skipped


async def _emit_all(context: Any, topic: str, events: list[dict[str, Any]]) -> None:
    """All events in one bus call where the host offers it (all or nothing, one Redis round trip for
    the lot); under plain Motia one ``emit`` each."""
    emit_many = getattr(context, "emit_many", None)
    if emit_many is not None:
        await emit_many(topic, events)
        return
    for data in events:
        await context.emit({"topic": topic, "data": data})


async def intake(event: str, req: Mapping[str, Any], context: Any, services: Any) -> dict[str, Any]:
    """The whole webhook API step: ``event`` is create, update or delete."""
    metrics = services.metrics
    raw = raw_bytes(req)
    try:
        if len(raw) > MAX_BODY_BYTES:
            raise WebhookRejected(400, "body too large")
        hook_id = await verify_with_stored(raw, req.get("headers") or {}, services)
        ids = collapse(parse_batch(raw))
    except WebhookRejected as rej:
        metrics.webhooks.labels(event, str(rej.status)).inc()
        context.logger.warn("webhook rejected", {"event": event, "status": rej.status, "why": rej.message})
        return {"status": rej.status, "body": {"error": rej.message}}
    events, skipped = events_for(event, ids)
    try:
        await _emit_all(context, f"vmh.beteiligte.{event}", events)
    except Exception as exc:  # the queue could not take them: EspoCRM retries the whole batch
        metrics.webhooks.labels(event, "503").inc()
        context.logger.error("webhook events could not be queued",
                             {"event": event, "error": str(exc), "items": len(events)})
        return {"status": 503, "body": {"error": "queue unavailable, retry later"}}
    queued = [e["id"] for e in events]
    metrics.webhooks.labels(event, "200").inc()
    context.logger.info("webhook accepted", {"event": event, "webhook": hook_id, "queued": len(queued),
                                             "skipped_unmapped": len(skipped)})
    return {"status": 200, "body": {"queued": queued, "skipped": skipped}}
