"""``FakeAdvoware``: the public methods of :class:`adapters.advoware_api.AdvowareAPI`, served in memory
from an :class:`~simulators.advoware.simulator.AdvowareSimulator`'s state.

The simulator's store keeps Advoware's rules (a new ``rowId`` on every write, ``PUT`` as full
replacement guarded by the ``rowId``, ``409`` on deleting a referenced Beteiligter, ``geaendertAm`` in
the firm's local time, the list ordered by it); this class replaces only HTTP and the token: each
refusal becomes the same :mod:`adapters.errors` error, with the same text, that the HTTP client
raises. There is no token: nothing is counted for ``POST /api/v1/Token`` (an injected ``401`` is still
answered by one repeat, as the client does after renewing its token).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

from adapters.advoware_api import MAX_TAKE, SYSTEM, AdvowareListing
from adapters.advoware_wire import PROBLEM_KEYS, problem_text
from adapters.api_ids import BETEILIGTE, beteiligter_path
from adapters.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    NotFoundError,
    RetryableError,
    error_for_status,
    without_personal_data,
)
from simulators.advoware.fields import FieldError
from simulators.advoware.simulator import AdvowareSimulator, problem_body
from simulators.advoware.store import StoreError, parse_since
from tests.fakes.wire import Boundary, CallTimedOut, FaultAnswer, fault_json, wire

API = "/api/v1/advonet/"
ITEM = BETEILIGTE + "/{betNr}"


class _Problem(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class FakeAdvoware(AdvowareListing):
    """``timezone``: the firm's zone as the client is configured with it (``ADVOWARE_TIMEZONE``)."""

    def __init__(self, sim: AdvowareSimulator, *, timeout: float = 10.0, timezone: str = "Europe/Berlin") -> None:
        self.sim = sim
        self.profile = sim.profile  # the wire the real client would speak: the simulator's
        self._zone = ZoneInfo(timezone)
        self._boundary = Boundary(sim.calls, sim.faults, timeout)
        self._supports_list: bool | None = None

    async def aclose(self) -> None:
        await self._boundary.aclose()

    async def __aenter__(self) -> FakeAdvoware:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- Beteiligte ---------------------------------------------------------------------------
    async def get_beteiligter(self, betnr: int) -> dict[str, Any]:
        path = beteiligter_path(betnr)
        return _object(await self._call("GET", path, ITEM, lambda: self._read(betnr)), "GET Beteiligte/{betNr}")

    async def create_beteiligter(self, body: dict[str, Any]) -> dict[str, Any]:
        sent = wire(body)
        created = _object(await self._call("POST", BETEILIGTE, BETEILIGTE, lambda: self._create(sent)),
                          "POST Beteiligte")
        if isinstance(created.get("rowId"), str) and created["rowId"]:
            return created
        try:  # as the client: an unanswered GET after the create leaves the rowId to the next sync
            fetched = await self.get_beteiligter(created["betNr"])
        except RetryableError:
            return {k: v for k, v in created.items() if k != "rowId"}
        if not (isinstance(fetched.get("rowId"), str) and fetched["rowId"]):
            raise BadResponseError("GET after create returned no rowId", system=SYSTEM)
        return fetched

    async def update_beteiligter(self, betnr: int, body: dict[str, Any]) -> dict[str, Any]:
        path, sent = beteiligter_path(betnr), wire(body)
        data = await self._call("PUT", path, ITEM, lambda: [self._store(lambda: self.sim.store.replace(betnr, sent))])
        what = "PUT Beteiligte/{betNr}"
        if not (isinstance(data, list) and len(data) == 1):
            raise BadResponseError(f"{what}: expected an array with one object", system=SYSTEM)
        updated = _object(data[0], what)
        if not (isinstance(updated.get("rowId"), str) and updated["rowId"]):
            raise BadResponseError(f"{what}: answer has no rowId", system=SYSTEM)
        return updated

    async def delete_beteiligter(self, betnr: int) -> None:
        path = beteiligter_path(betnr)
        await self._call("DELETE", path, ITEM, lambda: self._store(lambda: self.sim.store.delete(betnr)))

    async def list_beteiligte(
        self, *, geaendert_seit: datetime | None = None, skip: int = 0, take: int = MAX_TAKE
    ) -> list[dict[str, Any]]:
        since = self._local_stamp(geaendert_seit) if geaendert_seit is not None else None
        try:
            data = await self._call("GET", BETEILIGTE, BETEILIGTE, lambda: self._list(since, skip, take))
        except NotFoundError:
            self._supports_list = False
            raise
        if not isinstance(data, list):
            raise BadResponseError("GET Beteiligte: expected a JSON array", system=SYSTEM)
        page = [_object(item, "GET Beteiligte") for item in data]
        self._supports_list = True
        return page

    # -- what the simulator's routes do ---------------------------------------------------------
    def _read(self, betnr: int) -> dict[str, Any]:
        row = self.sim.store.get(betnr)
        if row is None:
            raise _Problem(404, problem_body(404, f"Beteiligter {betnr} does not exist."))
        return row

    def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _Problem(400, problem_body(400, "request body must be a JSON object", "Bad Request"))
        row: dict[str, Any] = self._store(lambda: self.sim.store.create(body))
        if not self.sim.post_returns_rowid:
            row.pop("rowId", None)
        return row

    def _list(self, since: str | None, skip: int, take: int) -> list[dict[str, Any]]:
        if not self.sim.list_endpoint:
            raise _Problem(404, problem_body(404, "no such endpoint"))
        if skip < 0 or take < 1 or take > MAX_TAKE:
            raise _Problem(400, problem_body(400, f"take must be between 1 and {MAX_TAKE}, skip >= 0",
                                             "Bad Request"))
        parsed = parse_since(since, self.sim.store.zone) if since else None
        return self.sim.store.query(since=parsed, skip=skip, take=take)

    @staticmethod
    def _store(operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except StoreError as exc:
            raise _Problem(exc.status, problem_body(exc.status, exc.detail, exc.title)) from None
        except FieldError as exc:
            raise _Problem(400, problem_body(400, str(exc))) from None

    def _local_stamp(self, when: datetime) -> str:
        if when.tzinfo is not None:
            when = when.astimezone(self._zone).replace(tzinfo=None)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}"

    # -- the boundary --------------------------------------------------------------------------
    async def _call(self, method: str, path: str, template: str, serve: Callable[[], Any]) -> Any:
        renewed = False
        while True:
            try:
                return await self._boundary.call(method, API + path, serve)
            except FaultAnswer as exc:
                if exc.status != HTTPStatus.UNAUTHORIZED:
                    return _fault(method, template, exc)
                if renewed:
                    raise AuthenticationError("API rejected a freshly issued token", system=SYSTEM,
                                              status=401) from None
                renewed = True  # the client renews its token and repeats the call once
            except _Problem as exc:
                raise _error(method, template, exc.status, exc.body, None) from None
            except CallTimedOut:
                raise RetryableError(f"{method} {template}: timed out", system=SYSTEM) from None


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("betNr"), int):
        raise BadResponseError(f"{what}: expected a Beteiligter object with an int betNr", system=SYSTEM)
    return data


def _error(method: str, template: str, status: int, body: Any, retry_after: int | None) -> ApiError:
    """The client's error for a ``status`` answer with the (parsed) ``body``."""
    reason: str = HTTPStatus(status).phrase
    details: dict[str, Any] = {}
    if isinstance(body, dict):
        reason = problem_text(body) or reason
        details = {k: without_personal_data(str(v)) for k, v in body.items() if k in PROBLEM_KEYS}
    text = f"{method} {template}: {without_personal_data(reason)}"
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return error_for_status(SYSTEM, status, text, method=method, headers=headers, details=details)


def _fault(method: str, template: str, fault: FaultAnswer) -> Any:
    if fault.status >= 400:
        body = fault_json(fault.body) if fault.body is not None else problem_body(
            fault.status, f"simulated fault (HTTP {fault.status})")
        raise _error(method, template, fault.status, body, fault.retry_after)
    parsed = fault_json(fault.body)
    if parsed is None and method != "DELETE":
        raise BadResponseError(f"{method} {template}: answer is not JSON", system=SYSTEM, status=fault.status)
    return parsed
