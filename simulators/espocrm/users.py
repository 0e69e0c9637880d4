"""EspoCRM simulator: its users, how a request authenticates as one, and ``GET /App/user``.

Users: the sync's API user (``X-Api-Key`` or ``X-Hmac-Authorization``), a person at the firm (the
"staff" key; its changes fire webhooks even with ``skipOwn``) and, when configured, an admin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from simulators.espocrm.fields import ENTITY

API_KEY_HEADER = "x-api-key"
HMAC_HEADER = "x-hmac-authorization"
ALL = "all"
YES = "yes"
NO = "no"


class UserType(StrEnum):
    API = "api"
    REGULAR = "regular"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    id: str
    user_name: str
    name: str
    type: UserType
    api_key: str | None

    @property
    def is_admin(self) -> bool:
        return self.type == UserType.ADMIN

    def app_user(self) -> dict[str, Any]:
        """``GET /App/user`` for this user: the user and a minimal ``acl`` (scope -> action -> level)."""
        full = {"create": YES, "read": ALL, "edit": ALL, "delete": ALL, "stream": ALL}
        table: dict[str, Any] = {
            ENTITY: full,
            "Note": {"create": YES, "read": ALL, "edit": "own", "delete": "own"},
            "Notification": {"create": NO, "read": "own", "edit": NO, "delete": "own"},
            "Webhook": self.type == UserType.API or self.is_admin,
        }
        return {
            "user": {"id": self.id, "userName": self.user_name, "name": self.name, "type": str(self.type),
                     "isAdmin": self.is_admin},
            "acl": {"table": table},
        }


def hmac_digests(secret: str, message: str) -> tuple[bytes, bytes]:
    """(raw binary digest, hex digest as bytes) of HMAC-SHA256(secret, message)."""
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256)
    return mac.digest(), mac.hexdigest().encode()


class Authenticator:
    """``X-Hmac-Authorization: base64(apiKey + ":" + digest of "METHOD /path")``: the raw binary digest
    always; the hex digest only when ``accepts_hex()`` (9.x; 8.1.5 compares the binary one only)."""

    def __init__(self, users: list[User], api_user: User, hmac_secret: str | None,
                 accepts_hex: Callable[[], bool]) -> None:
        self._users = users
        self._api_user = api_user
        self.hmac_secret = hmac_secret
        self._accepts_hex = accepts_hex

    def user(self, user_id: str) -> User | None:
        return next((u for u in self._users if u.id == user_id), None)

    def user_for(self, headers: Mapping[str, str], method: str, path: str) -> User | None:
        """The acting user, or ``None`` when the request does not authenticate. ``path`` is the URI
        path after ``/api/v1``."""
        signed = headers.get(HMAC_HEADER)
        if signed is not None:
            return self._api_user if self._hmac_ok(signed, method, path) else None
        key = headers.get(API_KEY_HEADER)
        if key is None:
            return None
        for user in self._users:
            if user.api_key and hmac.compare_digest(key.encode(), user.api_key.encode()):
                return user
        return None

    def _hmac_ok(self, signed: str, method: str, path: str) -> bool:
        api_key = self._api_user.api_key
        if self.hmac_secret is None or api_key is None:
            return False
        try:
            decoded = base64.b64decode(signed, validate=True)
        except (binascii.Error, ValueError):
            return False
        key, sep, signature = decoded.partition(b":")
        if not sep or not hmac.compare_digest(key, api_key.encode()):
            return False
        raw, hexed = hmac_digests(self.hmac_secret, f"{method} /{path.lstrip('/')}")
        if hmac.compare_digest(signature, raw):
            return True
        return self._accepts_hex() and hmac.compare_digest(signature, hexed)
