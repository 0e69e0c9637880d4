"""What goes over Advoware's wire besides the records: the signed token request (spec §2) and the
text of a problem+json error answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from adapters.errors import BadResponseError

ROLE = 2
PRODUCT = 64
PROBLEM_KEYS = ("type", "title", "detail")
MAX_FIELD_ERRORS = 5


def sign_token_request(app_id: str, api_key_b64: str, nonce: str, timestamp: str) -> str:
    """``base64(HMAC_SHA512(key=b64decode(API_KEY), msg="64:" + AppID + ":" + Nonce + ":" + TS))``."""
    key = base64.b64decode(api_key_b64)
    msg = f"{PRODUCT}:{app_id}:{nonce}:{timestamp}".encode()
    return base64.b64encode(hmac.new(key, msg, hashlib.sha512).digest()).decode()


def request_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with 7 fractional digits, e.g. ``2026-11-29T10:04:26.7955547Z``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def token_request_body(*, app_id: str, api_key: str, kanzlei: str, database: str, user: str,
                       password: str) -> dict[str, Any]:
    """The body of ``POST`` to the token endpoint, signed with a fresh nonce and timestamp."""
    nonce = str(uuid.uuid4())
    stamp = request_timestamp()
    return {
        "AppID": app_id, "Kanzlei": kanzlei, "Database": database, "User": user, "Role": ROLE,
        "Product": PRODUCT, "Password": password, "Nonce": nonce,
        "HMAC512Signature": sign_token_request(app_id, api_key, nonce, stamp), "RequestTimeStamp": stamp,
    }


def problem_text(problem: dict[str, Any]) -> str:
    """problem+json ``detail`` (or ``title``), plus the first message per field of an ``errors`` map."""
    text = problem.get("detail") or problem.get("title")
    parts = [text] if isinstance(text, str) and text else []
    errors = problem.get("errors")
    if isinstance(errors, dict):
        for field, messages in list(errors.items())[:MAX_FIELD_ERRORS]:
            first = messages[0] if isinstance(messages, list) and messages else messages
            parts.append(f"{field}: {first}")
    return "; ".join(str(p) for p in parts)


class Redactor:
    """The API key, the password and the last tokens issued: scrubbed from every error text."""

    def __init__(self, *secrets: str) -> None:
        self._secrets = tuple(s for s in secrets if s)
        self._recent: deque[str] = deque(maxlen=4)

    def remember(self, token: str) -> None:
        if token not in self._recent:
            self._recent.append(token)

    def scrub(self, text: str) -> str:
        for secret in (*self._secrets, *self._recent):
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text


def token_from_answer(data: Any, status: int, system: str) -> tuple[str, float]:
    """``access_token`` and ``expires_in`` (default 3600 s) of the gateway's JSON answer."""
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise BadResponseError("token answer has no access_token", system=system, status=status)
    expires_in = data.get("expires_in", 3600) if isinstance(data, dict) else 3600
    return token, float(expires_in) if isinstance(expires_in, int | float) else 3600.0


def join_path(base: str, suffix: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(suffix) else base + suffix


def api_root(base: str, resource: str) -> str:
    """``ADVOWARE_URL`` without an API tail (``…/api/v1`` or ``…/api/v1/advonet``) when the resource path
    starts with ``api/v1/`` itself: the URL may be given with or without it, whatever the profile's path."""
    base = base.rstrip("/")
    for tail in ("/api/v1/advonet", "/api/v1"):
        if base.endswith(tail) and resource.startswith("api/v1/"):
            return base[: -len(tail)]
    return base
