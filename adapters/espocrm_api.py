"""Async client of EspoCRM's REST API (spec §1.1).

Auth by ``X-Api-Key``, or by ``X-Hmac-Authorization`` when ``hmac_secret`` is set. Every failure is
one of :mod:`adapters.errors` (mapped by :func:`error_for_status`); keys never appear in messages.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from adapters.api_ids import check_entity, check_id, record_path
from adapters.errors import BadResponseError, RetryableError, error_for_status, without_personal_data
from adapters.http_transport import transport as http_transport
from adapters.rate_limit import InflightLimit

log = logging.getLogger(__name__)
SYSTEM = "espocrm"
VALIDATION_REASON = re.compile(r"Field validation failure; entityType: (\w+), field: (\w+), type: (\w+)")
def status_reason(header: str) -> str:
    """``X-Status-Reason`` for messages and logs: a validation failure is rebuilt from its entity,
    field and type; any other reason loses the values it quotes (:func:`without_personal_data`)."""
    found = VALIDATION_REASON.search(header)
    if found:
        return "Field validation failure; entityType: {}, field: {}, type: {}.".format(*found.groups())
    return without_personal_data(header)


def encode_bracket_params(prefix: str, value: Any) -> list[tuple[str, str]]:
    """``("where", [{"type": "isNull", "attribute": "betnr"}])`` -> PHP bracket query params."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in encode_bracket_params(f"{prefix}[{k}]", v)]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in encode_bracket_params(f"{prefix}[{i}]", v)]
    if isinstance(value, bool):
        return [(prefix, "true" if value else "false")]
    return [(prefix, str(value))]


def hmac_authorization(api_key: str, secret: str, method: str, path: str) -> str:
    """``base64(apiKey + ":" + HMAC-SHA256(secret, METHOD + " /" + path))``, path after /api/v1, with
    the raw 32-byte digest: EspoCRM 8.1.5 accepts only that form, 8.4.1 and later both it and hex."""
    message = f"{method.upper()} /{path.lstrip('/')}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(api_key.encode() + b":" + digest).decode()


class EspoPaging:
    """Paging over ``list``, shared by the client and its in-memory fake (``tests/fakes``)."""

    async def list(
        self, entity: str, *, where: builtins.list[dict[str, Any]] | None = None,
        select: builtins.list[str] | None = None, order_by: str | None = None, order: str = "asc",
        max_size: int = 200, offset: int = 0,
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def iter_list(
        self,
        entity: str,
        *,
        where: builtins.list[dict[str, Any]] | None = None,
        select: builtins.list[str] | None = None,
        order_by: str = "createdAt",
        page_size: int = 200,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching record, page by page (ascending ``order_by``)."""
        offset = 0
        while True:
            page = await self.list(entity, where=where, select=select, order_by=order_by,
                                   order="asc", max_size=page_size, offset=offset)
            items: builtins.list[dict[str, Any]] = page["list"]
            for item in items:
                yield item
            offset += len(items)
            if not items or len(items) < page_size or offset >= page["total"]:
                return


class EspoCRMAPI(EspoPaging):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        hmac_secret: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_inflight: int = 10,
    ) -> None:
        self._api_key = api_key
        self.inflight = InflightLimit(SYSTEM, max_inflight)  # halves on 429/503, grows back by itself
        self._hmac_secret = hmac_secret
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1/", timeout=timeout, transport=transport or http_transport()
        )

    @property
    def base_url(self) -> str:
        """The API's address (``…/api/v1/``)."""
        return str(self._client.base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> EspoCRMAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:  # never show the key
        return f"EspoCRMAPI({str(self._client.base_url)!r})"

    # -- transport -----------------------------------------------------------------------------
    def _auth_headers(self, method: str, path: str) -> dict[str, str]:
        if self._hmac_secret is not None:
            signed = hmac_authorization(self._api_key, self._hmac_secret, method, path)
            return {"X-Hmac-Authorization": signed}
        return {"X-Api-Key": self._api_key}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: httpx.QueryParams | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = {"Accept": "application/json", **self._auth_headers(method, path), **(headers or {})}
        try:
            async with self.inflight.slot() as slot:
                resp = await self._client.request(
                    method, path, json=json_body, params=params, headers=all_headers
                )
                self.inflight.answered(slot, resp.status_code)
        except httpx.TimeoutException:
            raise RetryableError(f"{method} {path}: timeout", system=SYSTEM) from None
        except httpx.TransportError as exc:
            raise RetryableError(
                f"{method} {path}: connection error ({type(exc).__name__})", system=SYSTEM
            ) from None
        if resp.status_code >= 400:
            raise self._error(method, resp)
        if resp.status_code >= 300:
            raise BadResponseError(f"{method} {path}: unexpected HTTP {resp.status_code}",
                                   system=SYSTEM, status=resp.status_code)
        try:
            return resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponseError(f"{method} {path}: response is not JSON", system=SYSTEM,
                                   status=resp.status_code) from None

    @staticmethod
    def _error(method: str, resp: httpx.Response) -> Exception:
        details: dict[str, Any] = {}
        try:
            parsed = resp.json() if resp.content else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, dict):
            details = parsed
        reason = status_reason(resp.headers.get("X-Status-Reason", ""))
        log.info("espocrm answered HTTP %d to %s: %s", resp.status_code, method, reason or "(no reason)")
        return error_for_status(
            SYSTEM, resp.status_code, reason, method=method, headers=resp.headers, details=details
        )

    @staticmethod
    def _expect_dict(value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BadResponseError(f"{what}: expected a JSON object", system=SYSTEM)
        return value

    # -- records -------------------------------------------------------------------------------
    async def get_raw(self, path: str) -> Any:
        """``GET`` of a fixed API path without ids in it (``App/user``, ``Metadata``)."""
        return await self._request("GET", path)

    async def get(self, entity: str, id: str) -> dict[str, Any]:
        return self._expect_dict(await self._request("GET", record_path(entity, id)), f"GET {entity}")

    async def create(self, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        path = check_entity(entity)
        return self._expect_dict(await self._request("POST", path, json_body=data), f"POST {entity}")

    async def update(
        self, entity: str, id: str, data: dict[str, Any], *, version_number: int | None = None
    ) -> dict[str, Any]:
        headers = {"X-Version-Number": str(version_number)} if version_number is not None else None
        result = await self._request("PUT", record_path(entity, id), json_body=data, headers=headers)
        return self._expect_dict(result, f"PUT {entity}")

    async def delete(self, entity: str, id: str) -> None:
        await self._request("DELETE", record_path(entity, id))

    async def list(
        self,
        entity: str,
        *,
        where: list[dict[str, Any]] | None = None,
        select: list[str] | None = None,
        order_by: str | None = None,
        order: str = "asc",
        max_size: int = 200,
        offset: int = 0,
    ) -> dict[str, Any]:
        params: list[tuple[str, str]] = [("maxSize", str(max_size)), ("offset", str(offset))]
        if order_by is not None:
            params += [("orderBy", order_by), ("order", order)]
        if select:
            params.append(("select", ",".join(select)))
        params += encode_bracket_params("where", where)
        query = httpx.QueryParams(tuple(params))
        result = self._expect_dict(await self._request("GET", check_entity(entity), params=query),
                                   f"GET {entity} list")
        if not isinstance(result.get("list"), list) or not isinstance(result.get("total"), int):
            raise BadResponseError(f"GET {entity} list: missing total/list", system=SYSTEM)
        return result

    # -- stream and webhooks -------------------------------------------------------------------
    async def post_note(self, parent_type: str, parent_id: str, text: str) -> dict[str, Any]:
        body = {"type": "Post", "parentType": check_entity(parent_type), "parentId": check_id(parent_id),
                "post": text}
        return self._expect_dict(await self._request("POST", "Note", json_body=body), "POST Note")

    async def register_webhook(self, event: str, url: str, skip_own: bool = True) -> dict[str, Any]:
        body = {"event": event, "url": url, "skipOwn": skip_own}
        return self._expect_dict(await self._request("POST", "Webhook", json_body=body), "POST Webhook")

    async def stream(self, entity: str, id: str, *, max_size: int = 20) -> builtins.list[dict[str, Any]]:
        """The newest notes of a record's stream (``GET <Entity>/<id>/stream``), newest first."""
        query = httpx.QueryParams((("maxSize", str(max_size)), ("offset", "0")))
        result = self._expect_dict(await self._request("GET", f"{record_path(entity, id)}/stream", params=query),
                                   f"GET {entity} stream")
        notes = result.get("list")
        if not isinstance(notes, list):
            raise BadResponseError(f"GET {entity} stream: missing list", system=SYSTEM)
        return [n for n in notes if isinstance(n, dict)]
