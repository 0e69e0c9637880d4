"""EspoCRM simulator: the ASGI app — auth and the REST routes of spec §1.1, plus ``GET /App/user`` and
``GET /Metadata`` (what a client reads to check its setup)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.espocrm.fields import ENTITY, EspoValidationError
from simulators.espocrm.list_query import BadListRequest, MaxSizeExceeded, parse_list_request, run_list_query
from simulators.espocrm.profiles import Behaviour
from simulators.espocrm.records import (
    NOTE_ATTRIBUTES,
    BeteiligteStore,
    Change,
    NoteStore,
    RecordNotFound,
    VersionConflict,
)
from simulators.espocrm.users import Authenticator, User, UserType
from simulators.espocrm.webhooks import SKIP_OWN, WEBHOOK_EVENTS


class EspoBackend(Protocol):
    """What the HTTP API needs of the simulator (:class:`simulators.espocrm.simulator.EspoCRMSimulator`)."""

    auth: Authenticator
    store: BeteiligteStore
    note_store: NoteStore

    @property
    def lock(self) -> AbstractContextManager[Any]: ...

    @property
    def behaviour(self) -> Behaviour: ...

    @property
    def webhooks(self) -> list[dict[str, Any]]: ...

    def apply(self, change: Change | None) -> None: ...

    def get(self, record_id: str) -> dict[str, Any] | None: ...

    def get_deleted(self, record_id: str) -> dict[str, Any] | None: ...

    def metadata(self) -> dict[str, Any]: ...

    def settings(self) -> dict[str, Any]: ...

    def list_attributes(self) -> dict[str, str]: ...

    def register_webhook(self, event: str, url: str, skip_own: bool, owner_id: str) -> dict[str, Any]: ...

    def remove_webhook(self, webhook_id: str) -> bool: ...

API_PREFIX = "/api/v1"
VERSION_HEADER = "x-version-number"
# the gap between a non-atomic version check and its save: PHP runs the record's hooks in between
# (a real 8.1.5 let both of two concurrent saves through in 11 of 40 pairs)
SAVE_GAP_SECONDS = 0.002
Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    pass


def _reason(status: int, reason: str, body: Any = None) -> Response:
    content = json.dumps(body).encode() if body is not None else b""
    headers = {"X-Status-Reason": reason}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return Response(content, status_code=status, headers=headers)


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise _BadRequest("Bad request body.") from None
    if not isinstance(data, dict):
        raise _BadRequest("Bad request body.")
    return data


def _user(request: Request) -> User:
    user: User = request.state.user
    return user


def _may_use_webhooks(user: User) -> bool:
    """EspoCRM's ``Webhook`` scope: admins, and API users (with the scope in their role); never a person."""
    return user.is_admin or user.type == UserType.API


def _sees(user: User, hook: dict[str, Any]) -> bool:
    """An API user reads, edits and deletes only the webhooks it owns (``userId``); an admin all."""
    return user.is_admin or hook.get("userId") == user.id


def _version_header(request: Request) -> int | None:
    raw = request.headers.get(VERSION_HEADER)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest("Bad X-Version-Number.") from None


class EspoHTTP:
    def __init__(self, sim: EspoBackend) -> None:
        self.sim = sim

    def guard(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            path = request.url.path.removeprefix(API_PREFIX)
            user = self.sim.auth.user_for(request.headers, request.method, path)
            if user is None:
                return Response(b"", status_code=401)
            request.state.user = user
            try:
                return await handler(request)
            except EspoValidationError as exc:
                return _reason(400, exc.reason, exc.body())
            except RecordNotFound as exc:
                return _reason(404, str(exc))
            except VersionConflict as exc:
                return _reason(409, "modified", {"values": exc.values, "versionNumber": exc.version_number})
            except (BadListRequest, _BadRequest) as exc:
                return _reason(400, str(exc))
            except MaxSizeExceeded as exc:
                return _reason(403, str(exc))

        return endpoint

    def routes(self) -> list[Route]:
        base = f"{API_PREFIX}/{ENTITY}"
        table: list[tuple[str, Handler, list[str]]] = [
            (base, self.list_records, ["GET"]),
            (base, self.create, ["POST"]),
            (base + "/{id}", self.read, ["GET"]),
            (base + "/{id}", self.update, ["PUT", "PATCH"]),
            (base + "/{id}", self.delete, ["DELETE"]),
            (base + "/{id}/stream", self.stream, ["GET"]),
            (f"{API_PREFIX}/Note", self.list_notes, ["GET"]),
            (f"{API_PREFIX}/Note", self.create_note, ["POST"]),
            (f"{API_PREFIX}/Notification", self.forbidden, ["GET", "POST", "PUT", "PATCH", "DELETE"]),
            (f"{API_PREFIX}/Webhook", self.list_webhooks, ["GET"]),
            (f"{API_PREFIX}/Webhook", self.create_webhook, ["POST"]),
            (f"{API_PREFIX}/Webhook/{{id}}", self.read_webhook, ["GET"]),
            (f"{API_PREFIX}/Webhook/{{id}}", self.delete_webhook, ["DELETE"]),
            (f"{API_PREFIX}/App/user", self.app_user, ["GET"]),
            (f"{API_PREFIX}/Metadata", self.metadata, ["GET"]),
            (f"{API_PREFIX}/Settings", self.settings, ["GET"]),
        ]
        return [Route(path, self.guard(handler), methods=methods) for path, handler, methods in table]

    # -- CBeteiligte ---------------------------------------------------------------------------
    async def list_records(self, request: Request) -> Response:
        """A page in ``createdAt`` order without ``where`` comes from the store's index (as a database
        answers it); any other list sorts every record, with the same result the index would give."""
        with self.sim.lock:
            kinds = self.sim.list_attributes()
            query = parse_list_request(request.query_params.multi_items(), kinds)
            found = None if query.predicates else self.sim.store.page(query.order_by, query.descending,
                                                                      query.offset, query.max_size)
            records = self.sim.store.all() if found is None else []
        total, page = query.sort_page(records, kinds) if found is None else found
        return JSONResponse({"total": total, "list": query.project(page)})

    async def create(self, request: Request) -> Response:
        data = await _json_object(request)
        with self.sim.lock:
            record, change = self.sim.store.create(data, _user(request).id)
            self.sim.apply(change)
        return JSONResponse(record)

    async def read(self, request: Request) -> Response:
        """A deleted record: ``404`` for everyone but an admin, who sees it with ``"deleted": true``."""
        record_id = request.path_params["id"]
        record = self.sim.get(record_id)
        if record is None and _user(request).is_admin:
            record = self.sim.get_deleted(record_id)
        if record is None:
            raise RecordNotFound(record_id)
        return JSONResponse(record)

    async def update(self, request: Request) -> Response:
        """With a version header and a check that is not atomic (:attr:`Behaviour.occ_check_atomic`),
        the check and the write are two steps with a short gap between (:data:`SAVE_GAP_SECONDS`), as
        PHP checks the fetched record, runs its hooks and then saves: another request can check and
        save in between."""
        data = await _json_object(request)
        version = _version_header(request)
        record_id = request.path_params["id"]
        if version is not None and not self.sim.behaviour.occ_check_atomic:
            with self.sim.lock:
                self.sim.store.check_update(record_id, data, version)
            await asyncio.sleep(SAVE_GAP_SECONDS)
            version = None  # checked: the save itself is unconditional
        with self.sim.lock:
            record, change = self.sim.store.update(record_id, data, _user(request).id, version_number=version)
            self.sim.apply(change)
        return JSONResponse(record)

    async def delete(self, request: Request) -> Response:
        with self.sim.lock:
            self.sim.apply(self.sim.store.delete(request.path_params["id"], _user(request).id))
        return JSONResponse(True)

    async def stream(self, request: Request) -> Response:
        """``GET <Entity>/<id>/stream``: the record's notes, newest first (``maxSize``, ``offset``)."""
        record_id = request.path_params["id"]
        if self.sim.get(record_id) is None:
            raise RecordNotFound(record_id)
        try:
            size = int(request.query_params.get("maxSize") or 20)
            offset = int(request.query_params.get("offset") or 0)
        except ValueError:
            raise _BadRequest("Bad maxSize or offset.") from None
        with self.sim.lock:
            notes = self.sim.note_store.stream(record_id)
        return JSONResponse({"total": len(notes), "list": notes[offset:offset + size]})

    # -- Note, Notification --------------------------------------------------------------------
    async def list_notes(self, request: Request) -> Response:
        with self.sim.lock:
            notes = self.sim.note_store.all()
        return JSONResponse(run_list_query(notes, request.query_params.multi_items(), NOTE_ATTRIBUTES))

    async def create_note(self, request: Request) -> Response:
        data = await _json_object(request)
        if data.get("type", "Post") != "Post":
            return _reason(403, "Only notes of type Post can be created.")
        with self.sim.lock:
            if data.get("parentType") == ENTITY and self.sim.store.get(str(data.get("parentId"))) is None:
                raise RecordNotFound(str(data.get("parentId")))
            note = self.sim.note_store.create(data, _user(request).id)
        return JSONResponse(note)

    async def forbidden(self, request: Request) -> Response:
        return _reason(403, "Forbidden.")

    # -- Webhook -------------------------------------------------------------------------------
    async def list_webhooks(self, request: Request) -> Response:
        """Like EspoCRM's Webhook access: an admin sees every webhook, an API user only its own
        (``userId``), any other user none (the scope is for API users and admins only: ``403``)."""
        user = _user(request)
        if not _may_use_webhooks(user):
            return _reason(403, "Forbidden.")
        subs = [s for s in self.sim.webhooks if _sees(user, s)]
        return JSONResponse({"total": len(subs), "list": subs})

    async def read_webhook(self, request: Request) -> Response:
        user = _user(request)
        if not _may_use_webhooks(user):
            return _reason(403, "Forbidden.")
        hook = next((s for s in self.sim.webhooks if s["id"] == request.path_params["id"]), None)
        if hook is None:
            raise RecordNotFound(request.path_params["id"])
        if not _sees(user, hook):
            return _reason(403, "Forbidden.")
        return JSONResponse(hook)

    async def create_webhook(self, request: Request) -> Response:
        if not _may_use_webhooks(_user(request)):
            return _reason(403, "Forbidden.")
        data = await _json_object(request)
        if data.get("event") not in WEBHOOK_EVENTS:
            raise EspoValidationError("Webhook", "event", "valid")
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise EspoValidationError("Webhook", "url", "valid")
        behaviour = self.sim.behaviour
        skip_own = data.get(SKIP_OWN, False)
        if behaviour.supports_skip_own and not isinstance(skip_own, bool):
            raise EspoValidationError("Webhook", SKIP_OWN, "valid")
        hook = self.sim.register_webhook(data["event"], url, skip_own is True, _user(request).id)
        return JSONResponse(hook, status_code=behaviour.webhook_created_status)

    async def delete_webhook(self, request: Request) -> Response:
        webhook_id = request.path_params["id"]
        user = _user(request)
        if not _may_use_webhooks(user):
            return _reason(403, "Forbidden.")
        hook = next((s for s in self.sim.webhooks if s["id"] == webhook_id), None)
        if hook is not None and not _sees(user, hook):
            return _reason(403, "Forbidden.")  # another API user's webhook
        if not self.sim.remove_webhook(webhook_id):
            raise RecordNotFound(webhook_id)
        return JSONResponse(True)

    # -- setup checks --------------------------------------------------------------------------
    async def app_user(self, request: Request) -> Response:
        return JSONResponse(_user(request).app_user())

    async def metadata(self, request: Request) -> Response:
        """All of it, like EspoCRM; ``?key=entityDefs.CBeteiligte`` narrows it to one part."""
        data: Any = self.sim.metadata()
        key = request.query_params.get("key")
        for part in key.split(".") if key else []:
            data = data.get(part) if isinstance(data, dict) else None
        return JSONResponse(data)

    async def settings(self, request: Request) -> Response:
        """``GET /Settings``: the configuration any user may read (here only the phone number settings)."""
        return JSONResponse(self.sim.settings())


def build_app(sim: EspoBackend) -> Starlette:
    return Starlette(routes=EspoHTTP(sim).routes())
