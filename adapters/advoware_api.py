"""Client of the Advoware API: token handling and the Beteiligte resource (spec §2).

Raises only the errors of :mod:`adapters.errors`. It never retries on its own except once after a
``401`` (with a fresh token); what to do with a 5xx, a timeout or a 429 is the sync core's decision.
Secrets (API key, password, tokens) never appear in exception messages or logs.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from adapters.advoware_endpoints import ConnectFailed, DiscoveredEndpoints
from adapters.advoware_token_cache import DEFAULT_KEY, AdvowareTokenCache, credentials_key
from adapters.advoware_wire import PROBLEM_KEYS, problem_text, token_request_body
from adapters.api_ids import beteiligter_path
from adapters.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    NotFoundError,
    RetryableError,
    error_for_status,
    without_personal_data,
)
from adapters.http_transport import transport as http_transport
from adapters.rate_limit import InflightLimit

log = logging.getLogger(__name__)

SYSTEM = "advoware"
MAX_TAKE = 200


def _join(base: str, suffix: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(suffix) else base + suffix


class AdvowareListing:
    """Paging over ``list_beteiligte``, shared by the client and its in-memory fake (``tests/fakes``)."""

    _supports_list: bool | None

    async def list_beteiligte(
        self, *, geaendert_seit: datetime | None = None, skip: int = 0, take: int = MAX_TAKE
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def iter_beteiligte(
        self, page_size: int = MAX_TAKE, *, geaendert_seit: datetime | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every Beteiligter, page by page."""
        skip = 0
        while True:
            page = await self.list_beteiligte(geaendert_seit=geaendert_seit, skip=skip, take=page_size)
            for item in page:
                yield item
            if len(page) < page_size:
                return
            skip += len(page)

    async def supports_list(self) -> bool:
        """Whether the list endpoint exists (probed once, then cached)."""
        if self._supports_list is None:
            try:
                await self.list_beteiligte(take=1)
            except NotFoundError:
                pass
        return bool(self._supports_list)


class AdvowareAPI(AdvowareListing):
    """``redis`` holds the token cache shared by every process (a ``redis.asyncio`` client; there is
    no built-in fallback: an in-process store would hide that the processes do not share it).
    ``tokens`` replaces that cache (``beteiligte-sync doctor`` asks for a token of its own).
    ``endpoints`` (discovery by Kanzlei) gives the addresses instead of ``base_url`` and ``token_url``,
    on the first call, and others when a call cannot connect (the call is then repeated once)."""

    def __init__(
        self,
        base_url: str,
        token_url: str,
        *,
        app_id: str,
        api_key: str,
        kanzlei: str,
        database: str,
        user: str,
        password: str,
        redis: Any,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        token_margin: float = 60,
        timezone: str = "Europe/Berlin",
        token_key: str = DEFAULT_KEY,
        tokens: AdvowareTokenCache | None = None,
        max_inflight: int = 10,
        endpoints: DiscoveredEndpoints | None = None,
    ) -> None:
        self.endpoints = endpoints
        self._set_urls(base_url, token_url)
        self.inflight = InflightLimit(SYSTEM, max_inflight)  # halves on 429/503, grows back by itself
        self._app_id = app_id
        self._api_key = api_key
        self._kanzlei = kanzlei
        self._database = database
        self._user = user
        self._password = password
        self._zone = ZoneInfo(timezone)
        where = endpoints.identity if endpoints is not None else self._token_endpoint
        key = credentials_key(token_key, where, app_id, api_key, kanzlei, database, user, password)
        self._tokens = tokens or AdvowareTokenCache(redis, key=key, margin=token_margin)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport or http_transport())
        self._secrets: tuple[str, ...] = tuple(s for s in (api_key, password) if s)
        self._recent_tokens: deque[str] = deque(maxlen=4)  # scrubbed from error texts too
        self._supports_list: bool | None = None

    def _set_urls(self, base_url: str, token_url: str) -> None:
        self._api = _join(base_url, "/api/v1/advonet") + "/"
        self._token_endpoint = _join(token_url, "/api/v1/Token")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AdvowareAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- Beteiligte ---------------------------------------------------------------------------
    async def get_beteiligter(self, betnr: int) -> dict[str, Any]:
        return self._object(await self._call("GET", beteiligter_path(betnr)), "GET Beteiligte/{betNr}")

    async def create_beteiligter(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST; returns the created object with its ``rowId`` (one extra GET if the answer lacks it)."""
        created = self._object(await self._call("POST", "Beteiligte", json=body), "POST Beteiligte")
        if isinstance(created.get("rowId"), str) and created["rowId"]:
            return created
        fetched = await self.get_beteiligter(created["betNr"])
        if not (isinstance(fetched.get("rowId"), str) and fetched["rowId"]):
            raise BadResponseError("GET after create returned no rowId", system=SYSTEM)
        return fetched

    async def update_beteiligter(self, betnr: int, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the full body (must carry the current ``rowId``); returns the updated object."""
        data = await self._call("PUT", beteiligter_path(betnr), json=body)
        what = "PUT Beteiligte/{betNr}"
        if not (isinstance(data, list) and len(data) == 1):
            raise BadResponseError(f"{what}: expected an array with one object", system=SYSTEM)
        updated = self._object(data[0], what)
        if not (isinstance(updated.get("rowId"), str) and updated["rowId"]):
            raise BadResponseError(f"{what}: answer has no rowId", system=SYSTEM)
        return updated

    async def delete_beteiligter(self, betnr: int) -> None:
        await self._call("DELETE", beteiligter_path(betnr), expect_json=False)

    async def list_beteiligte(
        self, *, geaendert_seit: datetime | None = None, skip: int = 0, take: int = MAX_TAKE
    ) -> list[dict[str, Any]]:
        """One page ordered by ``geaendertAm``; ``NotFoundError`` when the endpoint does not exist.

        An aware ``geaendert_seit`` is converted to Advoware's zone; a naive one is taken as that
        zone's local time already.
        """
        params: dict[str, Any] = {"skip": skip, "take": take}
        if geaendert_seit is not None:
            params["geaendertSeit"] = self._local_stamp(geaendert_seit)
        try:
            data = await self._call("GET", "Beteiligte", params=params)
        except NotFoundError:
            self._supports_list = False
            raise
        if not isinstance(data, list):
            raise BadResponseError("GET Beteiligte: expected a JSON array", system=SYSTEM)
        page = [self._object(item, "GET Beteiligte") for item in data]
        self._supports_list = True
        return page

    # -- plumbing -------------------------------------------------------------------------------
    def _local_stamp(self, when: datetime) -> str:
        if when.tzinfo is not None:
            when = when.astimezone(self._zone).replace(tzinfo=None)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}"

    @staticmethod
    def _object(data: Any, what: str) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("betNr"), int):
            raise BadResponseError(f"{what}: expected a Beteiligter object with an int betNr",
                                   system=SYSTEM)
        return data

    async def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None,
        json: Any = None, expect_json: bool = True,
    ) -> Any:
        if self.endpoints is not None:
            self._set_urls(*await self.endpoints.resolve(self._client))
        try:
            return await self._call_once(method, path, params=params, json=json, expect_json=expect_json)
        except ConnectFailed as exc:
            moved = await self.endpoints.connect_failed(self._client, exc.url) if self.endpoints else None
            if moved is None:
                raise
            self._set_urls(*moved)
            return await self._call_once(method, path, params=params, json=json, expect_json=expect_json)

    async def _call_once(
        self, method: str, path: str, *, params: dict[str, Any] | None = None,
        json: Any = None, expect_json: bool = True,
    ) -> Any:
        url = self._api + path
        token = await self._tokens.get_or_fetch(self._fetch_token)
        resp = await self._send(method, url, token, params=params, json=json)
        if resp.status_code == 401:
            log.info("advoware answered 401; renewing the token once", extra={"method": method})
            await self._tokens.invalidate(token)
            token = await self._tokens.get_or_fetch(self._fetch_token)
            resp = await self._send(method, url, token, params=params, json=json)
            if resp.status_code == 401:
                raise AuthenticationError("API rejected a freshly issued token", system=SYSTEM, status=401)
        if resp.status_code >= 400:
            raise self._error(resp, method)
        if not expect_json or resp.status_code == 204:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise BadResponseError(f"{method} {self._template(path)}: answer is not JSON",
                                   system=SYSTEM, status=resp.status_code) from exc

    async def _send(
        self, method: str, url: str, token: str | None, *, params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
            self._remember(token)
        what = f"{method} {self._template(url)}"
        try:
            async with self.inflight.slot() as slot:
                resp = await self._client.request(method, url, params=params, json=json, headers=headers)
                self.inflight.answered(slot, resp.status_code)
                return resp
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectFailed(f"{what}: connection failed ({type(exc).__name__})", url) from exc
        except httpx.TimeoutException as exc:
            raise RetryableError(f"{what}: timed out", system=SYSTEM) from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"{what}: connection failed ({type(exc).__name__})", system=SYSTEM) from exc

    async def _fetch_token(self) -> tuple[str, float]:
        body = token_request_body(app_id=self._app_id, api_key=self._api_key, kanzlei=self._kanzlei,
                                  database=self._database, user=self._user, password=self._password)
        resp = await self._send("POST", self._token_endpoint, None, json=body)
        if resp.status_code == 401:
            raise AuthenticationError("token request rejected: check the ADVOWARE_* credentials",
                                      system=SYSTEM, status=401)
        if resp.status_code >= 400:
            raise self._error(resp, "POST")
        try:
            data = resp.json()
        except ValueError:
            data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponseError("token answer has no access_token", system=SYSTEM, status=resp.status_code)
        self._remember(token)
        expires_in = data.get("expires_in", 3600) if isinstance(data, dict) else 3600
        log.debug("advoware token issued", extra={"expires_in": expires_in})
        return token, float(expires_in) if isinstance(expires_in, int | float) else 3600.0

    def _template(self, url_or_path: str) -> str:
        path = url_or_path.split("?", 1)[0]
        if path.startswith(self._api):
            path = path[len(self._api):]
        elif path == self._token_endpoint:
            return "Token"
        return "/".join("{betNr}" if part.isdigit() else part for part in path.split("/"))

    def _remember(self, token: str) -> None:
        if token not in self._recent_tokens:
            self._recent_tokens.append(token)

    def _scrub(self, text: str) -> str:
        for secret in (*self._secrets, *self._recent_tokens):
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text

    def _error(self, resp: httpx.Response, method: str) -> ApiError:
        """The error for a 4xx/5xx answer; its text keeps field names and drops the values it quotes."""
        reason, details = resp.reason_phrase, {}
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            reason = problem_text(data) or reason
            details = {k: without_personal_data(self._scrub(str(v)))
                       for k, v in data.items() if k in PROBLEM_KEYS}
        where = self._template(str(resp.request.url))
        text = f"{method} {where}: {without_personal_data(self._scrub(reason))}"
        log.info("advoware answered HTTP %d: %s", resp.status_code, text)
        return error_for_status(SYSTEM, resp.status_code, text, method=method, headers=resp.headers,
                                details=details)
