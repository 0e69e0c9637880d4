"""Client of the Advoware API: token handling and the Beteiligte resource (spec §2).

Raises only the errors of :mod:`adapters.errors`. It never retries on its own except once after a
``401`` (with a fresh token); what to do with a 5xx, a timeout or a 429 is the sync core's decision.
Secrets (API key, password, tokens) never appear in exception messages or logs.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from adapters.advoware_endpoints import ConnectFailed, DiscoveredEndpoints
from adapters.advoware_listing import MAX_TAKE, AdvowareListing
from adapters.advoware_profile_wire import ProfileWire
from adapters.advoware_token_cache import DEFAULT_KEY, AdvowareTokenCache, credentials_key
from adapters.advoware_wire import (
    PROBLEM_KEYS,
    Redactor,
    api_root,
    join_path,
    problem_text,
    token_from_answer,
    token_request_body,
)
from adapters.api_ids import beteiligter_path
from adapters.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    ForbiddenError,
    NotFoundError,
    RetryableError,
    ValidationError,
    error_for_status,
    without_personal_data,
)
from adapters.http_transport import transport as http_transport
from adapters.rate_limit import InflightLimit
from config.advoware_profile import AdvowareProfile, PostAnswer, PutAnswer, load_profile

log = logging.getLogger(__name__)

SYSTEM = "advoware"


__all__ = ["MAX_TAKE", "SYSTEM", "AdvowareAPI", "AdvowareListing"]


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
        profile: AdvowareProfile | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.profile = profile or load_profile()
        self._resource = self.profile.resource_path
        self._set_urls(base_url, token_url)
        self.inflight = InflightLimit(SYSTEM, max_inflight)  # halves on 429/503, grows back by itself
        self._app_id = app_id
        self._api_key = api_key
        self._kanzlei = kanzlei
        self._database = database
        self._user = user
        self._password = password
        self._zone = ZoneInfo(timezone)
        self._wire = ProfileWire(self.profile, self._zone)
        where = endpoints.identity if endpoints is not None else self._token_endpoint
        key = credentials_key(token_key, where, app_id, api_key, kanzlei, database, user, password)
        self._tokens = tokens or AdvowareTokenCache(redis, key=key, margin=token_margin)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport or http_transport())
        self._redactor = Redactor(api_key, password)  # and the tokens it is shown
        self._supports_list: bool | None = None

    def _set_urls(self, base_url: str, token_url: str) -> None:
        self._api = api_root(base_url, self.profile.resource_path) + "/"
        self._token_endpoint = join_path(token_url, "/api/v1/Token")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AdvowareAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- Beteiligte ---------------------------------------------------------------------------
    def _item(self, betnr: int) -> str:
        return self._resource + beteiligter_path(betnr).removeprefix("Beteiligte")

    async def get_beteiligter(self, betnr: int) -> dict[str, Any]:
        what = "GET Beteiligte/{betNr}"
        return self._object(self._wire.from_wire(await self._call("GET", self._item(betnr)), what), what)

    async def get_raw(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A GET of ``path`` (relative to ``ADVOWARE_URL``) as the wire answers it, untranslated (doctor)."""
        return await self._call("GET", path, params=params)

    async def create_beteiligter(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST; returns the created object with its ``rowId`` (one extra GET if the answer lacks it, or
        always with ``post_returns_row_id = false`` or ``post_answer = "location"``). That GET unanswered:
        the POST's answer (with a Location: the values sent) without rowId (the create is done; raising
        would repeat it), and the next sync reads the rowId."""
        if self.profile.post_answer == PostAnswer.LOCATION:  # the values sent, should the GET go unanswered
            resp = await self._call("POST", self._resource, json=self._wire.to_wire(body), raw=True)
            created = {**body, "betNr": self._wire.created_betnr(resp.headers.get("Location"), resp.status_code)}
            created.pop("rowId", None)
        else:
            answer = await self._call("POST", self._resource, json=self._wire.to_wire(body))
            created = self._object(self._wire.from_wire(answer, "POST Beteiligte"), "POST Beteiligte")
        if self.profile.post_returns_row_id and isinstance(created.get("rowId"), str) and created["rowId"]:
            return created
        try:
            fetched = await self.get_beteiligter(created["betNr"])
        except (RetryableError, ValidationError, ForbiddenError) as exc:  # the create is done: a 400/403 of
            # its GET must not read as the POST refused (the create path forgets a refused attempt)
            log.warning("advoware: created %s, its rowId unread (%s)", created["betNr"], exc)
            return {k: v for k, v in created.items() if k != "rowId"}
        if not (isinstance(fetched.get("rowId"), str) and fetched["rowId"]):
            raise BadResponseError("GET after create returned no rowId", system=SYSTEM)
        return fetched

    async def update_beteiligter(self, betnr: int, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the full body (must carry the current ``rowId``); returns the updated object."""
        what = "PUT Beteiligte/{betNr}"
        shape = self.profile.put_answer
        data = await self._call("PUT", self._item(betnr), json=self._wire.to_wire(body),
                                expect_json=shape != PutAnswer.NONE)
        if shape == PutAnswer.NONE:
            return await self.get_beteiligter(betnr)
        if shape == PutAnswer.ARRAY:
            if not (isinstance(data, list) and len(data) == 1):
                raise BadResponseError(f"{what}: expected an array with one object (put_answer of "
                                       "ADVOWARE_PROFILE)", system=SYSTEM)
            data = data[0]
        elif not isinstance(data, dict):
            raise BadResponseError(f"{what}: expected an object (put_answer of ADVOWARE_PROFILE)", system=SYSTEM)
        updated = self._object(self._wire.from_wire(data, what), what)
        if not (isinstance(updated.get("rowId"), str) and updated["rowId"]):
            raise BadResponseError(f"{what}: answer has no rowId", system=SYSTEM)
        return updated

    async def delete_beteiligter(self, betnr: int) -> None:
        await self._call("DELETE", self._item(betnr), expect_json=False)

    async def list_beteiligte(
        self, *, geaendert_seit: datetime | None = None, skip: int = 0, take: int = MAX_TAKE
    ) -> list[dict[str, Any]]:
        """One page ordered by ``geaendertAm``; ``NotFoundError`` when the endpoint does not exist.

        An aware ``geaendert_seit`` is converted to Advoware's zone; a naive one is taken as that
        zone's local time already.
        """
        p = self.profile
        if p.list_path is None:
            self._supports_list = False
            raise NotFoundError("GET Beteiligte: the profile has no list endpoint (list_endpoint = false)",
                                system=SYSTEM, status=404)
        page: list[dict[str, Any]] = []
        while True:  # a take above the profile's list_max_take: several wire pages, one answer
            want = min(take - len(page), p.list_max_take)
            part = await self._list_page(geaendert_seit, skip + len(page), want)
            page += part
            if len(part) < want or len(page) >= take:
                return page

    async def _list_page(self, since: datetime | None, skip: int, take: int) -> list[dict[str, Any]]:
        p = self.profile
        assert p.list_path is not None
        params: dict[str, Any] = {p.list_skip_param: skip, p.list_take_param: take}
        if since is not None:
            params[p.list_since_param] = self._wire.since(since)
        try:
            answer = await self._call("GET", p.list_path, params=params)
        except NotFoundError:
            self._supports_list, self._list_missing_at = False, time.monotonic()
            raise
        data = self._wire.from_wire(self._wire.rows(answer, "GET Beteiligte"), "GET Beteiligte")
        page = [self._object(item, "GET Beteiligte") for item in data]
        self._supports_list = True
        return page

    # -- plumbing -------------------------------------------------------------------------------
    @staticmethod
    def _object(data: Any, what: str) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("betNr"), int):
            raise BadResponseError(f"{what}: expected a Beteiligter object with an int betNr",
                                   system=SYSTEM)
        return data

    async def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None,
        json: Any = None, expect_json: bool = True, raw: bool = False,
    ) -> Any:
        if self.endpoints is not None:
            self._set_urls(*await self.endpoints.resolve(self._client))
        try:
            return await self._call_once(method, path, params=params, json=json, expect_json=expect_json, raw=raw)
        except ConnectFailed as exc:
            moved = await self.endpoints.connect_failed(self._client, exc.url, exc.reason) if self.endpoints else None
            if moved is None:
                raise
            self._set_urls(*moved)
            return await self._call_once(method, path, params=params, json=json, expect_json=expect_json, raw=raw)

    async def _call_once(
        self, method: str, path: str, *, params: dict[str, Any] | None = None,
        json: Any = None, expect_json: bool = True, raw: bool = False,
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
        if raw:
            return resp
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
            self._redactor.remember(token)
        what = f"{method} {self._template(url)}"
        try:
            async with self.inflight.slot() as slot:
                resp = await self._client.request(method, url, params=params, json=json, headers=headers)
                self.inflight.answered(slot, resp.status_code)
                return resp
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__  # a certificate, a refusal, a name
            raise ConnectFailed(f"{what}: connection failed ({type(exc).__name__}: {reason})", url, reason) from exc
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
        token, expires_in = token_from_answer(data, resp.status_code, SYSTEM)
        self._redactor.remember(token)
        log.debug("advoware token issued", extra={"expires_in": expires_in})
        return token, expires_in

    def _template(self, url_or_path: str) -> str:
        path = url_or_path.split("?", 1)[0]
        if path == self._token_endpoint:
            return "Token"
        if path.startswith(self._api):
            path = path[len(self._api):]
        for known in (self._resource, self.profile.list_path):  # the profile's paths read as "Beteiligte"
            if known and (path == known or path.startswith(known + "/")):
                path = "Beteiligte" + path[len(known):]
                break
        return "/".join("{betNr}" if part.isdigit() else part for part in path.split("/"))

    def _error(self, resp: httpx.Response, method: str) -> ApiError:
        """The error for a 4xx/5xx answer; its text keeps field names and drops the values it quotes."""
        reason, details = resp.reason_phrase, {}
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            reason = problem_text(data) or reason
            details = {k: without_personal_data(self._redactor.scrub(str(v)))
                       for k, v in data.items() if k in PROBLEM_KEYS}
        where = self._template(str(resp.request.url))
        text = f"{method} {where}: {without_personal_data(self._redactor.scrub(reason))}"
        log.info("advoware answered HTTP %d: %s", resp.status_code, text)
        return error_for_status(SYSTEM, resp.status_code, text, method=method, headers=resp.headers,
                                details=details)
