"""``FakeEspoCRM``: the public methods of :class:`adapters.espocrm_api.EspoCRMAPI`, served in memory
from an :class:`~simulators.espocrm.simulator.EspoCRMSimulator`'s state.

The simulator keeps EspoCRM's save rules (OCC off by default and the 409 with it on, phone numbers
normalised, the ``salutationName`` enum, validation, soft deletes, webhook events queued for every
write); this class replaces only HTTP: routing, auth by API key, and turning each refusal into the
same :mod:`adapters.errors` error, with the same text and details, that the HTTP client raises.
``tests/test_client_contract.py`` runs one suite against both to keep it so.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from adapters.api_ids import check_entity, check_id, record_path
from adapters.errors import ApiError, BadResponseError, RetryableError, error_for_status
from adapters.espocrm_api import SYSTEM, EspoPaging, encode_bracket_params, status_reason
from simulators.espocrm.fields import ENTITY, EspoValidationError
from simulators.espocrm.list_query import BadListRequest, MaxSizeExceeded, run_list_query
from simulators.espocrm.records import NOTE_ATTRIBUTES, RecordNotFound, VersionConflict
from simulators.espocrm.simulator import EspoCRMSimulator
from simulators.espocrm.users import API_KEY_HEADER, User
from simulators.espocrm.webhooks import SKIP_OWN, WEBHOOK_EVENTS
from tests.fakes.wire import Boundary, CallTimedOut, FaultAnswer, fault_json, wire

API = "/api/v1/"
NOTE, WEBHOOK = "Note", "Webhook"


class _Answer(Exception):
    """A refusal the HTTP app answers with ``status`` and ``X-Status-Reason``."""

    def __init__(self, status: int, reason: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.details = status, reason, details or {}


class FakeEspoCRM(EspoPaging):
    """Acts as the user whose API key it holds (default: the simulator's API user)."""

    def __init__(self, sim: EspoCRMSimulator, api_key: str | None = None, *, timeout: float = 10.0) -> None:
        self.sim = sim
        self._api_key = api_key if api_key is not None else sim.api_key
        self._boundary = Boundary(sim.calls, sim.faults, timeout)

    async def aclose(self) -> None:
        await self._boundary.aclose()

    async def __aenter__(self) -> FakeEspoCRM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return "FakeEspoCRM()"

    # -- records -------------------------------------------------------------------------------
    async def get_raw(self, path: str) -> Any:
        if path == "App/user":
            return await self._call("GET", path, lambda user: user.app_user())
        if path == "Metadata":
            return await self._call("GET", path, lambda user: self.sim.metadata())
        if path == "Settings":
            return await self._call("GET", path, lambda user: self.sim.settings())
        return await self._call("GET", path, None)

    async def get(self, entity: str, id: str) -> dict[str, Any]:
        path = record_path(entity, id)
        return self._dict(await self._call("GET", path, self._on_entity(entity, lambda u: self._read(u, id))),
                          f"GET {entity}")

    async def create(self, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        path = check_entity(entity)
        body = wire(data)
        serve: Callable[[User], Any] | None = {
            ENTITY: lambda u: self._create(u, body), NOTE: lambda u: self._create_note(u, body),
            WEBHOOK: lambda u: self._create_webhook(u, body)}.get(entity)
        return self._dict(await self._call("POST", path, serve), f"POST {entity}")

    async def update(
        self, entity: str, id: str, data: dict[str, Any], *, version_number: int | None = None
    ) -> dict[str, Any]:
        path, body = record_path(entity, id), wire(data)
        serve = self._on_entity(entity, lambda u: self._update(u, id, body, version_number))
        return self._dict(await self._call("PUT", path, serve), f"PUT {entity}")

    async def delete(self, entity: str, id: str) -> None:
        path = record_path(entity, id)
        serve: Callable[[User], Any] | None = {
            ENTITY: lambda u: self._delete(u, id), WEBHOOK: lambda u: self._delete_webhook(id)}.get(entity)
        await self._call("DELETE", path, serve)

    async def list(
        self,
        entity: str,
        *,
        where: builtins.list[dict[str, Any]] | None = None,
        select: builtins.list[str] | None = None,
        order_by: str | None = None,
        order: str = "asc",
        max_size: int = 200,
        offset: int = 0,
    ) -> dict[str, Any]:
        params: builtins.list[tuple[str, str]] = [("maxSize", str(max_size)), ("offset", str(offset))]
        if order_by is not None:
            params += [("orderBy", order_by), ("order", order)]
        if select:
            params.append(("select", ",".join(select)))
        params += encode_bracket_params("where", where)
        serve: Callable[[User], Any] | None = {
            ENTITY: lambda u: self._list_records(params), NOTE: lambda u: self._list_notes(params),
            WEBHOOK: lambda u: self._list_webhooks()}.get(entity)
        result = self._dict(await self._call("GET", check_entity(entity), serve), f"GET {entity} list")
        if not isinstance(result.get("list"), builtins.list) or not isinstance(result.get("total"), int):
            raise BadResponseError(f"GET {entity} list: missing total/list", system=SYSTEM)
        return result

    # -- stream and webhooks -------------------------------------------------------------------
    async def post_note(self, parent_type: str, parent_id: str, text: str) -> dict[str, Any]:
        body = {"type": "Post", "parentType": check_entity(parent_type), "parentId": check_id(parent_id),
                "post": text}
        return self._dict(await self._call("POST", NOTE, lambda u: self._create_note(u, body)), "POST Note")

    async def stream(self, entity: str, id: str, *, max_size: int = 20) -> builtins.list[dict[str, Any]]:
        path = f"{record_path(entity, id)}/stream"

        def serve(user: User) -> Any:
            self._read(user, id)  # 404 for a record the user cannot see
            with self.sim.lock:
                notes = self.sim.note_store.stream(id)
            return {"total": len(notes), "list": notes[:max_size]}

        result = self._dict(await self._call("GET", path, self._on_entity(entity, serve)), f"GET {entity} stream")
        return [n for n in result["list"] if isinstance(n, dict)]

    async def register_webhook(self, event: str, url: str, skip_own: bool = True) -> dict[str, Any]:
        body = {"event": event, "url": url, SKIP_OWN: skip_own}
        return self._dict(await self._call("POST", WEBHOOK, lambda u: self._create_webhook(u, body)),
                          "POST Webhook")

    # -- the boundary --------------------------------------------------------------------------
    @staticmethod
    def _on_entity(entity: str, serve: Callable[[User], Any]) -> Callable[[User], Any] | None:
        return serve if entity == ENTITY else None

    async def _call(self, method: str, path: str, serve: Callable[[User], Any] | None) -> Any:
        """``serve(user)`` through the boundary; ``serve=None`` is a route EspoCRM does not have."""

        def answer() -> Any:
            known = serve is not None or path == "Notification"
            if not known:
                raise _Answer(404)
            user = self.sim.auth.user_for({API_KEY_HEADER: self._api_key}, method, "/" + path)
            if user is None:
                raise _Answer(401)
            if serve is None:
                raise _Answer(403, "Forbidden.")
            return _refusals(lambda: serve(user))

        try:
            return await self._boundary.call(method, API + path, answer)
        except _Answer as exc:
            raise error_for_status(SYSTEM, exc.status, status_reason(exc.reason), method=method,
                                   details=exc.details) from None
        except FaultAnswer as exc:
            return _fault(method, path, exc)
        except CallTimedOut:
            raise RetryableError(f"{method} {path}: timeout", system=SYSTEM) from None

    @staticmethod
    def _dict(value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BadResponseError(f"{what}: expected a JSON object", system=SYSTEM)
        return value

    # -- what the HTTP app does per route ------------------------------------------------------
    def _read(self, user: User, record_id: str) -> dict[str, Any]:
        record = self.sim.get(record_id)
        if record is None and user.is_admin:
            record = self.sim.get_deleted(record_id)
        if record is None:
            raise RecordNotFound(record_id)
        return record

    def _create(self, user: User, body: Any) -> dict[str, Any]:
        with self.sim.lock:
            record, change = self.sim.store.create(_object(body), user.id)
            self.sim.apply(change)
        return record

    def _update(self, user: User, record_id: str, body: Any, version: int | None) -> dict[str, Any]:
        with self.sim.lock:
            record, change = self.sim.store.update(record_id, _object(body), user.id, version_number=version)
            self.sim.apply(change)
        return record

    def _delete(self, user: User, record_id: str) -> bool:
        with self.sim.lock:
            self.sim.apply(self.sim.store.delete(record_id, user.id))
        return True

    def _list_records(self, params: builtins.list[tuple[str, str]]) -> dict[str, Any]:
        with self.sim.lock:
            records, kinds = self.sim.store.all(), self.sim.list_attributes()
        return run_list_query(records, params, kinds)

    def _list_notes(self, params: builtins.list[tuple[str, str]]) -> dict[str, Any]:
        with self.sim.lock:
            notes = self.sim.note_store.all()
        return run_list_query(notes, params, NOTE_ATTRIBUTES)

    def _create_note(self, user: User, body: Any) -> dict[str, Any]:
        data = _object(body)
        if data.get("type", "Post") != "Post":
            raise _Answer(403, "Only notes of type Post can be created.")
        with self.sim.lock:
            if data.get("parentType") == ENTITY and self.sim.store.get(str(data.get("parentId"))) is None:
                raise RecordNotFound(str(data.get("parentId")))
            return self.sim.note_store.create(data, user.id)

    def _create_webhook(self, user: User, body: Any) -> dict[str, Any]:
        data = _object(body)
        if data.get("event") not in WEBHOOK_EVENTS:
            raise EspoValidationError(WEBHOOK, "event", "valid")
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise EspoValidationError(WEBHOOK, "url", "valid")
        skip_own = data.get(SKIP_OWN, False)
        if self.sim.behaviour.supports_skip_own and not isinstance(skip_own, bool):
            raise EspoValidationError(WEBHOOK, SKIP_OWN, "valid")
        return self.sim.register_webhook(data["event"], url, skip_own is True, user.id)

    def _delete_webhook(self, webhook_id: str) -> bool:
        if not self.sim.remove_webhook(webhook_id):
            raise RecordNotFound(webhook_id)
        return True

    def _list_webhooks(self) -> dict[str, Any]:
        subs = self.sim.webhooks
        return {"total": len(subs), "list": subs}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Answer(400, "Bad request body.")
    return body


def _refusals(serve: Callable[[], Any]) -> Any:
    """The simulator's refusals as the HTTP app answers them."""
    try:
        return serve()
    except EspoValidationError as exc:
        raise _Answer(400, exc.reason, wire(exc.body())) from None
    except RecordNotFound as exc:
        raise _Answer(404, str(exc)) from None
    except VersionConflict as exc:
        raise _Answer(409, "modified", wire({"values": exc.values, "versionNumber": exc.version_number})) from None
    except BadListRequest as exc:
        raise _Answer(400, str(exc)) from None
    except MaxSizeExceeded as exc:
        raise _Answer(403, str(exc)) from None


def _fault(method: str, path: str, fault: FaultAnswer) -> Any:
    """An injected answer as the HTTP client takes it (an error, or a body to check the shape of)."""
    parsed = fault_json(fault.body)
    if fault.status >= 400:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        error: ApiError = error_for_status(SYSTEM, fault.status, "", method=method, headers=headers,
                                          details=parsed if isinstance(parsed, dict) else {})
        raise error
    if fault.status >= 300:
        raise BadResponseError(f"{method} {path}: unexpected HTTP {fault.status}", system=SYSTEM,
                               status=fault.status)
    if parsed is None:
        raise BadResponseError(f"{method} {path}: response is not JSON", system=SYSTEM, status=fault.status)
    return parsed
