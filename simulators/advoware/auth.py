"""Advoware security gateway, simulated: the token request signature and the bearer tokens issued.

The signature is implemented here independently of the client (``adapters.advoware_api``), so the
simulator is an oracle for the client rather than a copy of it; both are checked against the spec's
test vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

ROLE = 2
PRODUCT = 64


def expected_signature(app_id: str, api_key_b64: str, nonce: str, timestamp: str) -> str:
    """``base64(HMAC_SHA512(key=b64decode(api_key), msg="64:" + AppID + ":" + Nonce + ":" + TS))``."""
    key = base64.b64decode(api_key_b64)
    msg = f"{PRODUCT}:{app_id}:{nonce}:{timestamp}".encode()
    return base64.b64encode(hmac.new(key, msg, hashlib.sha512).digest()).decode()


class TokenRegistry:
    """Issues bearer tokens and tells whether one is valid at a given instant. Thread-safe."""

    def __init__(self, lifetime: int, seed: int | None = None) -> None:
        self.lifetime = lifetime
        self._tokens: dict[str, datetime] = {}
        self._rng = random.Random(seed) if seed is not None else None
        self._lock = threading.Lock()

    def _new_secret(self) -> str:
        if self._rng is None:
            return secrets.token_urlsafe(32)
        return base64.urlsafe_b64encode(self._rng.randbytes(24)).decode().rstrip("=")

    def issue(self, now: datetime) -> dict[str, Any]:
        expires = now + timedelta(seconds=self.lifetime)
        with self._lock:
            token = self._new_secret()
            refresh = self._new_secret()
            self._tokens[token] = expires
        return {
            "token_type": "bearer",
            "expires_in": self.lifetime,
            "expiration_utc": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "access_token": token,
            "refresh_token": refresh,
        }

    def is_valid(self, token: str, now: datetime) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and now < expires

    def expire_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    def count(self) -> int:
        with self._lock:
            return len(self._tokens)


class Credentials:
    """The one API user the simulated gateway accepts."""

    def __init__(
        self, *, app_id: str, api_key_b64: str, kanzlei: str, database: str, user: str, password: str
    ) -> None:
        self.app_id = app_id
        self.api_key_b64 = api_key_b64
        self.kanzlei = kanzlei
        self.database = database
        self.user = user
        self.password = password

    def check(self, body: Any) -> bool:
        """True when the token request body carries the right credentials and a valid signature."""
        if not isinstance(body, dict):
            return False
        expected = {
            "AppID": self.app_id,
            "Kanzlei": self.kanzlei,
            "Database": self.database,
            "User": self.user,
            "Password": self.password,
        }
        for name, value in expected.items():
            got = body.get(name)
            if not isinstance(got, str) or not hmac.compare_digest(got, value):
                return False
        if body.get("Role") != ROLE or body.get("Product") != PRODUCT:
            return False
        nonce, stamp, sig = (body.get(k) for k in ("Nonce", "RequestTimeStamp", "HMAC512Signature"))
        if not (isinstance(nonce, str) and isinstance(stamp, str) and isinstance(sig, str)):
            return False
        if not (nonce and stamp):
            return False
        try:
            want = expected_signature(self.app_id, self.api_key_b64, nonce, stamp)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(sig, want)
