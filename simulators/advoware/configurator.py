"""Advoware's URL configurator, simulated: ``GET /AdvonetConfigurator/api/Url?Kanzlei=<Kanzlei>``.

The real one (``https://www2.advo-net.net/AdvonetConfigurator/api/Url``, public client code) answers
``{"connectorUrl", "relayUrl", "securityGateway"}`` per Kanzlei. Here a table Kanzlei -> URLs says
what to answer; a Kanzlei without its own URLs gets the simulator's own addresses: the connector is
the simulator itself, the relay the same API under ``/relay`` and the security gateway under
``/gateway`` (:class:`PrefixRoutes` serves both), so the call counters tell which one was used.

Faults: ``connector_unreachable`` answers a ``connectorUrl`` whose port refuses connections (a
socket bound but not listening), so a client must fall back to the relay; ``down`` answers ``503``.
What the real configurator answers for an unknown Kanzlei is not known: ``unknown`` chooses ``404``
(the default) or ``200`` with empty fields.
"""

from __future__ import annotations

import socket
import threading

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/AdvonetConfigurator/api/Url"
RELAY_PREFIX = "/relay"
GATEWAY_PREFIX = "/gateway"
FIELDS = ("connectorUrl", "relayUrl", "securityGateway")
UNKNOWN_404 = "404"
UNKNOWN_EMPTY = "empty"


class Configurator:
    def __init__(self, kanzleien: tuple[str, ...] = ()) -> None:
        self.table: dict[str, dict[str, str]] = {k: {} for k in kanzleien}
        self.down = False
        self.connector_unreachable = False
        self.unknown = UNKNOWN_404
        self.asked = 0  # answers given (also 404 and 503)
        self._lock = threading.Lock()
        self._closed_port: socket.socket | None = None

    def set(self, kanzlei: str, **urls: str) -> None:
        """The answer for ``kanzlei``: any of ``connectorUrl``, ``relayUrl``, ``securityGateway``
        (a field not given: the simulator's own address for it; ``""``: an empty field)."""
        unknown = set(urls) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown configurator fields: {', '.join(sorted(unknown))}")
        with self._lock:
            self.table[kanzlei] = dict(urls)

    def unreachable_url(self) -> str:
        """An address that refuses connections while this simulator lives."""
        with self._lock:
            if self._closed_port is None:
                self._closed_port = socket.socket()
                self._closed_port.bind(("127.0.0.1", 0))  # bound, never listening: connect() is refused
            return f"http://127.0.0.1:{self._closed_port.getsockname()[1]}/"

    def answer(self, kanzlei: str, own: str) -> dict[str, str] | None:
        """The JSON answer for ``kanzlei`` by a simulator reached at ``own``; None: unknown Kanzlei."""
        with self._lock:
            entry = self.table.get(kanzlei)
        if entry is None:
            return None if self.unknown == UNKNOWN_404 else dict.fromkeys(FIELDS, "")
        own = own.rstrip("/")
        body = {"connectorUrl": own + "/", "relayUrl": own + RELAY_PREFIX + "/",
                "securityGateway": own + GATEWAY_PREFIX + "/", **entry}
        if self.connector_unreachable:
            body["connectorUrl"] = self.unreachable_url()
        return body

    async def endpoint(self, request: Request) -> Response:
        with self._lock:
            self.asked += 1
        if self.down:
            return JSONResponse({"message": "configurator down (simulated)"}, status_code=503)
        found = self.answer(request.query_params.get("Kanzlei", ""), str(request.base_url))
        if found is None:
            return JSONResponse({"message": "Kanzlei not found"}, status_code=404)
        return JSONResponse(found)


class PrefixRoutes:
    """Serves the API under ``/relay`` and ``/gateway`` too (the simulated relay and security gateway)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix in (RELAY_PREFIX, GATEWAY_PREFIX):
                if path.startswith(prefix + "/"):
                    scope = {**scope, "path": path[len(prefix):], "raw_path": path[len(prefix):].encode()}
                    break
        await self.app(scope, receive, send)

