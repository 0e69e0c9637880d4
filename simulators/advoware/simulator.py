"""In-process simulator of Advoware: the token gateway and the Beteiligte resource (spec §2).

``AdvowareSimulator().app`` is an ASGI app serving ``/api/v1/Token``, ``/api/v1/advonet/Beteiligte``
and Advoware's URL configurator (:mod:`simulators.advoware.configurator`); wrap it with
``serve_in_thread`` or an ``httpx.ASGITransport``. The direct methods (``seed``, ``edit``, ...) act
like a person working in Advoware: they are not counted in ``calls`` and need no token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.advoware_profile import AdvowareProfile, PutAnswer, load_profile
from simulators.advoware.auth import Credentials, TokenRegistry
from simulators.advoware.configurator import PATH as CONFIGURATOR_PATH
from simulators.advoware.configurator import Configurator, PrefixRoutes
from simulators.advoware.control import control_actions
from simulators.advoware.fields import WRITABLE_FIELDS, FieldError
from simulators.advoware.store import BeteiligteStore, StoreError
from simulators.advoware.wire import SimWire
from simulators.common import CallCounter, SimulatorMiddleware
from simulators.faults import FaultInjector

DEFAULT_API_KEY_B64 = base64.b64encode(b"advoware-sandbox-secret-key").decode()
MAX_TAKE = 200
PROBLEM_JSON = "application/problem+json"

_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def problem_body(status: int, detail: str, title: str | None = None) -> dict[str, Any]:
    return {"type": "about:blank", "title": title or _TITLES.get(status, "Error"), "status": status,
            "detail": detail}


def problem(status: int, detail: str, title: str | None = None) -> JSONResponse:
    return JSONResponse(problem_body(status, detail, title), status_code=status, media_type=PROBLEM_JSON)


def _fault_problem(status: int) -> dict[str, Any]:
    return problem_body(status, f"simulated fault (HTTP {status})")


class _ProblemJsonContentType:
    """Marks error answers of the API (also injected faults) as ``application/problem+json``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__sim/"):
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                message["headers"] = [
                    (k, PROBLEM_JSON.encode() if k.lower() == b"content-type" and v == b"application/json"
                     else v)
                    for k, v in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AdvowareSimulator:
    def __init__(
        self,
        *,
        app_id: str = "sandbox-app",
        api_key_b64: str = DEFAULT_API_KEY_B64,
        kanzlei: str = "sandbox",
        database: str = "sandbox",
        user: str = "sync",
        password: str = "sync",
        token_lifetime: int = 3600,
        post_returns_rowid: bool | None = None,
        list_endpoint: bool | None = None,
        timezone: str | None = None,
        clock: Callable[[], datetime] | None = None,
        seed: int | None = None,
        profile: AdvowareProfile | None = None,
    ) -> None:
        """``profile`` (default: today's contract) decides the wire; ``post_returns_rowid``,
        ``list_endpoint`` and ``timezone`` override what it says."""
        self.profile = profile or load_profile()
        timezone = timezone or self.profile.timezone or "Europe/Berlin"
        self.credentials = Credentials(app_id=app_id, api_key_b64=api_key_b64, kanzlei=kanzlei,
                                       database=database, user=user, password=password)
        self.clock = clock or _utc_now
        self.tokens = TokenRegistry(token_lifetime, seed)
        self.store = BeteiligteStore(timezone=timezone, clock=self.clock)
        self.post_returns_rowid = self.profile.post_returns_row_id if post_returns_rowid is None else post_returns_rowid
        self.list_endpoint = self.profile.has_list if list_endpoint is None else list_endpoint
        self.ignore_since = False  # a fault: the list answers every row whatever its since parameter says
        self.timezone = timezone
        self.wire = SimWire(self.profile, self.store.zone)
        self.faults = FaultInjector(seed)
        self.calls = CallCounter()
        self.configurator = Configurator((kanzlei,))  # Kanzlei -> URLs (configurator.py)
        inner = SimulatorMiddleware(PrefixRoutes(self._starlette()), self.faults, self.calls, fault_body=_fault_problem,
                                    records=self._records_view, edit_record=self._edit_view,
                                    actions=control_actions(self.store))
        self.app: ASGIApp = _ProblemJsonContentType(inner)

    def _records_view(self, rid: str | None) -> Any:
        if rid is None:
            return self.all()
        return self.get(int(rid)) if rid.isdigit() else None

    def _edit_view(self, rid: str, body: bytes) -> tuple[int, Any]:
        """``PUT /__sim/records/<betNr>``: an Advoware user's edit of the given fields (new ``rowId``
        and ``geaendertAm``). Unknown or read-only fields and invalid values are refused, nothing changes."""
        try:
            changes = json.loads(body or b"null")
        except ValueError:
            changes = None
        if not isinstance(changes, dict) or not changes:
            return 400, {"error": "the body must be a JSON object of the fields to change"}
        unknown = sorted(set(changes) - set(WRITABLE_FIELDS))
        if unknown:
            return 400, {"error": f"not writable fields: {', '.join(unknown)}; writable: {', '.join(WRITABLE_FIELDS)}"}
        if not rid.isdigit() or self.get(int(rid)) is None:
            return 404, {"error": f"no Beteiligter with betNr {rid}"}
        try:
            return 200, self.edit(int(rid), **changes)
        except FieldError as exc:
            return 400, {"error": str(exc)}

    # -- direct methods: an Advoware user / the test ------------------------------------------
    def seed(self, **fields: Any) -> dict[str, Any]:
        return self.store.create(fields)

    def get(self, betnr: int) -> dict[str, Any] | None:
        return self.store.get(betnr)

    def edit(self, betnr: int, **changes: Any) -> dict[str, Any]:
        return self.store.edit(betnr, changes)

    def remove(self, betnr: int) -> None:
        try:
            self.store.delete(betnr, force=True)
        except StoreError as exc:
            raise KeyError(betnr) from exc

    def set_referenced(self, betnr: int, referenced: bool = True) -> None:
        self.store.set_referenced(betnr, referenced)

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    def issue_token(self) -> str:
        """A valid bearer token without going through the gateway (uncounted)."""
        return str(self.tokens.issue(self.clock())["access_token"])

    def set_post_returns_rowid(self, value: bool) -> None:
        self.post_returns_rowid = value

    def set_answers(self, profile: AdvowareProfile) -> None:
        """Answer in another profile's names, formats and shapes from now on (its paths stay)."""
        self.profile, self.wire = profile, SimWire(profile, self.store.zone)

    def set_list_endpoint(self, value: bool) -> None:
        self.list_endpoint = value

    def all(self) -> list[dict[str, Any]]:
        return self.store.all()

    def client_settings(self) -> dict[str, str]:
        """Keyword arguments for ``AdvowareAPI`` matching this simulator's credentials."""
        c = self.credentials
        return {"app_id": c.app_id, "api_key": c.api_key_b64, "kanzlei": c.kanzlei,
                "database": c.database, "user": c.user, "password": c.password}

    def seed_demo(self) -> list[dict[str, Any]]:
        samples: list[dict[str, Any]] = [
            {"name": "Mustermann", "vorname": "Max", "anrede": "Herr", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": "max@example.org", "strasse": "Hauptstr. 1",
             "plz": "10115", "ort": "Berlin", "land": "DE", "kurzname": "MUSTERMANN"},
            {"name": "Schmidt", "vorname": "Erika", "anrede": "Frau", "titel": "Dr.",
             "rechtsform": "natürliche Person", "telefon": "+49 30 1234567", "ort": "Hamburg"},
            {"name": "Beispiel GmbH", "anrede": "Firma", "rechtsform": "GmbH",
             "handelsRegisterNummer": "HRB 12345", "registergericht": "Amtsgericht München",
             "ort": "München", "land": "DE", "briefAnrede": "Sehr geehrte Damen und Herren"},
        ]
        return [self.seed(**s) for s in samples]

    # -- HTTP ---------------------------------------------------------------------------------
    def _starlette(self) -> Starlette:
        base = "/" + self.profile.resource_path
        listing = "/" + (self.profile.list_path or self.profile.resource_path)
        routes = [
            Route("/api/v1/Token", self._token, methods=["POST"]),
            Route(CONFIGURATOR_PATH, self.configurator.endpoint, methods=["GET"]),
            Route(base, self._collection, methods=["GET", "POST"] if listing == base else ["POST"]),
            Route(base + "/{betnr:int}", self._item, methods=["GET", "PUT", "DELETE"]),
        ]
        if listing != base:
            routes.insert(1, Route(listing, self._collection, methods=["GET"]))

        async def http_error(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            return problem(status, str(getattr(exc, "detail", "")) or _TITLES.get(status, "Error"))

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error})

    async def _token(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return problem(400, "request body is not JSON")
        if not self.credentials.check(body):
            return problem(401, "invalid credentials or signature")
        return JSONResponse(self.tokens.issue(self.clock()))

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return scheme.lower() == "bearer" and bool(token) and self.tokens.is_valid(token, self.clock())

    @staticmethod
    async def _json_object(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise StoreError(400, "Bad Request", "request body is not JSON") from exc
        if not isinstance(body, dict):
            raise StoreError(400, "Bad Request", "request body must be a JSON object")
        return body

    async def _collection(self, request: Request) -> Response:
        if not self._authorized(request):
            return problem(401, "bearer token missing, unknown or expired")
        try:
            if request.method == "POST":
                row = self.store.create(self.wire.body_in(await self._json_object(request)))
                if not self.post_returns_rowid:
                    row.pop("rowId", None)
                return self.wire.created(row, str(request.url))
            if not self.list_endpoint:
                return problem(404, "no such endpoint")
            return JSONResponse(self.wire.list_answer(self._list(request), lambda: len(self.store.all())))
        except StoreError as exc:
            return problem(exc.status, exc.detail, exc.title)
        except FieldError as exc:
            return problem(400, self.wire.detail(str(exc)))

    def _list(self, request: Request) -> list[dict[str, Any]]:
        q, p = request.query_params, self.profile
        top = p.list_max_take
        try:
            skip = int(q.get(p.list_skip_param, "0"))
            take = int(q.get(p.list_take_param, str(top)))
        except ValueError as exc:
            raise StoreError(400, "Bad Request", f"{p.list_skip_param} and {p.list_take_param} must be "
                                                 "integers") from exc
        if skip < 0 or take < 1 or take > top:
            raise StoreError(400, "Bad Request", f"{p.list_take_param} must be between 1 and {top}, "
                                                 f"{p.list_skip_param} >= 0")
        since = None
        if q.get(p.list_since_param) and not self.ignore_since:
            try:
                since = self.wire.since_in(q[p.list_since_param])
            except ValueError as exc:
                raise StoreError(400, "Bad Request", f"{p.list_since_param} is not a timestamp") from exc
        return self.store.query(since=since, skip=skip, take=take)

    async def _item(self, request: Request) -> Response:
        if not self._authorized(request):
            return problem(401, "bearer token missing, unknown or expired")
        betnr: int = request.path_params["betnr"]
        try:
            if request.method == "GET":
                row = self.store.get(betnr)
                if row is None:
                    return problem(404, f"Beteiligter {betnr} does not exist.")
                return JSONResponse(self.wire.row_out(row))
            if request.method == "PUT":
                return self._put_answer(self.store.replace(betnr, self.wire.body_in(await self._json_object(request))))
            self.store.delete(betnr)
            return Response(status_code=204)
        except StoreError as exc:
            return problem(exc.status, exc.detail, exc.title)
        except FieldError as exc:
            return problem(400, self.wire.detail(str(exc)))

    def _put_answer(self, row: dict[str, Any]) -> Response:
        shape = self.profile.put_answer
        if shape == PutAnswer.NONE:
            return Response(status_code=204)
        out = self.wire.row_out(row)
        return JSONResponse([out] if shape == PutAnswer.ARRAY else out)
