"""A person working in Advoware, through the standalone simulator's API (it has no other door): reads
a Beteiligter and writes it back changed, as Advoware's own client would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from simulators.advoware.auth import PRODUCT, ROLE, expected_signature
from simulators.advoware.simulator import AdvowareSimulator

ADVO_ENTITY_PATH = "/api/v1/advonet/Beteiligte"
HTTP_TIMEOUT_S = 10.0
HTTP_CONFLICT = 409
HTTP_UNAUTHORIZED = 401
STAFF_EDIT_TRIES = 20


class AdvowareStaff:
    """A person working in Advoware: reads a Beteiligter and writes it back changed (full PUT with its
    ``rowId``; a 409 means someone wrote in between: read again)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._token: str | None = None
        self._creds = AdvowareSimulator().client_settings()

    def set_email(self, betnr: int, email: str | None) -> None:
        for _ in range(STAFF_EDIT_TRIES):
            row = self._call("GET", betnr).json()
            answer = self._call("PUT", betnr, json={**row, "email": email})
            if answer.status_code != HTTP_CONFLICT:
                answer.raise_for_status()
                return
        raise AssertionError(f"Beteiligter {betnr} kept changing under the staff edit")

    def _call(self, method: str, betnr: int, **kw: Any) -> httpx.Response:
        for _ in range(2):
            headers = {"Authorization": f"Bearer {self._token or self._new_token()}"}
            answer = httpx.request(method, f"{self.url}{ADVO_ENTITY_PATH}/{betnr}", headers=headers,
                                   timeout=HTTP_TIMEOUT_S * 3, **kw)
            if answer.status_code != HTTP_UNAUTHORIZED:
                return answer
            self._token = None
        answer.raise_for_status()
        return answer

    def _new_token(self) -> str:
        c = self._creds
        nonce, stamp = uuid.uuid4().hex, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"AppID": c["app_id"], "Kanzlei": c["kanzlei"], "Database": c["database"], "User": c["user"],
                "Password": c["password"], "Role": ROLE, "Product": PRODUCT, "Nonce": nonce,
                "RequestTimeStamp": stamp,
                "HMAC512Signature": expected_signature(c["app_id"], c["api_key"], nonce, stamp)}
        answer = httpx.post(f"{self.url}/api/v1/Token", json=body, timeout=HTTP_TIMEOUT_S)
        answer.raise_for_status()
        self._token = str(answer.json()["access_token"])
        return self._token
