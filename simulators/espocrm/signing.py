"""EspoCRM simulator: the bytes and signatures of an outgoing webhook POST, and what an answer means."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from enum import StrEnum
from typing import Any

RETRY_STATUSES = frozenset({401, 403, 404, 405, 408, 500, 503})
GONE = 410


class Verdict(StrEnum):
    DONE = "done"
    RETRY = "retry"
    DROP = "drop"
    DELETE = "delete"


def php_json_encode(payload: Any) -> bytes:
    """Serialize like PHP ``json_encode``: compact, non-ASCII as ``\\u00fc``, ``/`` as ``\\/``."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")


def signature_header(webhook_id: str, secret_key: str, raw_body: bytes) -> str:
    """``Signature``: base64(webhookId + ":" + hex HMAC-SHA256(secretKey, raw body))."""
    digest = hmac.new(secret_key.encode(), raw_body, hashlib.sha256).hexdigest()
    return base64.b64encode(f"{webhook_id}:{digest}".encode()).decode()


def legacy_signature_header(webhook_id: str, secret_key: str, raw_body: bytes) -> str:
    """``X-Signature``: base64(webhookId + ":" + raw 32-byte HMAC-SHA256 digest)."""
    digest = hmac.new(secret_key.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(webhook_id.encode() + b":" + digest).decode()


def delivery_headers(webhook_id: str, secret_key: str, raw_body: bytes, *, with_signature: bool) -> dict[str, str]:
    """Headers of one POST: ``X-Signature`` always, ``Signature`` only when the version sends it."""
    headers = {"Content-Type": "application/json"}
    if with_signature:
        headers["Signature"] = signature_header(webhook_id, secret_key, raw_body)
    headers["X-Signature"] = legacy_signature_header(webhook_id, secret_key, raw_body)
    return headers


def classify_answer(status: int | None) -> Verdict:
    """Receiver answer -> what EspoCRM does (``None`` = timeout/no answer)."""
    if status is None or status in RETRY_STATUSES:
        return Verdict.RETRY
    if status == GONE:
        return Verdict.DELETE
    if 200 <= status < 400:
        return Verdict.DONE
    return Verdict.DROP
