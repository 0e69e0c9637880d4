"""HTTP side of the host: one Starlette route per API step, Motia-shaped ``req`` and responses.

Each API request first passes the edge's budgets (:mod:`stephost.http_limits`): body size, body
deadline, bytes in memory, handler slots. Refusals are fast JSON answers: ``400`` too large, ``408``
too slow, ``503`` busy (with ``Retry-After``). The server's own limits live in :mod:`stephost.http_server`.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Protocol

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stephost.config import HostConfig, HttpConfig
from stephost.context import StepContext
from stephost.discovery import Step
from stephost.http_limits import BodyBudget, EdgeRefusal, HandlerSlots, read_body


class StepHost(Protocol):
    """What the HTTP app needs of the host (:class:`stephost.host.StepHost`)."""

    config: HostConfig
    steps: list[Step]
    extra_routes: list[BaseRoute]

    async def start(self) -> None: ...

    async def stop(self, grace: float = 10.0) -> None: ...

    def make_context(self, step: Step, trace_id: str | None = None) -> StepContext: ...

log = logging.getLogger("stephost.http")

_MOTIA_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
RETRY_AFTER_SECONDS = "5"


def starlette_path(motia_path: str) -> str:
    """``/x/:id/y`` -> ``/x/{id}/y``."""
    return _MOTIA_PARAM.sub(r"{\1}", motia_path)


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _headers(request: Request) -> dict[str, str]:
    merged: dict[str, str] = {}
    for key, value in request.headers.items():  # keys arrive lower-cased
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _query(request: Request) -> dict[str, str | list[str]]:
    result: dict[str, str | list[str]] = {}
    for key in request.query_params.keys():
        values = request.query_params.getlist(key)
        result[key] = values[0] if len(values) == 1 else values
    return result


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


class MotiaRequest(dict[str, Any]):
    """Motia's ``req``: ``body`` (parsed JSON or None), ``rawBody`` (str), ``rawBytes``, ``headers``,
    ``pathParams``, ``queryParams``.

    ``body`` and ``rawBody`` are made from ``rawBytes`` on first use, so a step that checks a
    signature over ``rawBytes`` first never parses or decodes an unsigned body. Anything that looks
    at the whole dict (iteration, ``items()``, ``==``, ``repr``) sees both, as in a plain dict.
    """

    _LAZY: ClassVar[dict[str, Callable[[bytes], Any]]] = {"body": _parse_json, "rawBody": _decode}

    def __missing__(self, key: str) -> Any:
        make = self._LAZY.get(key)
        if make is None:
            raise KeyError(key)
        value = make(dict.get(self, "rawBytes", b""))
        self[key] = value
        return value

    def _complete(self) -> MotiaRequest:
        for key in self._LAZY:
            self[key]  # noqa: B018 - fills the key in
        return self

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self._LAZY or dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self._complete())

    def __len__(self) -> int:
        return dict.__len__(self._complete())

    def __eq__(self, other: object) -> bool:
        return dict.__eq__(self._complete(), other)

    def __repr__(self) -> str:
        return dict.__repr__(self._complete())

    def keys(self) -> Any:
        return dict.keys(self._complete())

    def items(self) -> Any:
        return dict.items(self._complete())

    def values(self) -> Any:
        return dict.values(self._complete())

    def copy(self) -> dict[str, Any]:
        return dict(self._complete().items())


def build_request(request: Request, raw: bytes) -> MotiaRequest:
    """Motia's ``req`` for ``request`` with body ``raw`` (``body``/``rawBody`` made on first use)."""
    return MotiaRequest(
        rawBytes=raw,
        headers=_headers(request),
        pathParams=dict(request.path_params),
        queryParams=_query(request),
    )


def to_response(result: Any, trace_id: str) -> Response:
    if not isinstance(result, dict):
        got = type(result).__name__
        raise TypeError(f"API handler must return a dict with 'status' and 'body', got {got}")
    status = int(result.get("status", 200))
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    headers.setdefault("x-trace-id", trace_id)
    if status in (204, 304) or (status < 200 and status >= 100):
        return Response(status_code=status, headers=headers)
    return JSONResponse(result.get("body"), status_code=status, headers=headers)


def _refusal(step: Step, trace_id: str, refusal: EdgeRefusal) -> Response:
    log.warning("[step=%s trace=%s] request refused with %d: %s", step.name, trace_id, refusal.status,
                refusal.reason)
    headers = {"x-trace-id": trace_id}
    if refusal.status == 503:
        headers["retry-after"] = RETRY_AFTER_SECONDS
    if refusal.close:
        headers["connection"] = "close"
    return JSONResponse({"error": refusal.reason, "traceId": trace_id}, status_code=refusal.status,
                        headers=headers)


def _endpoint(host: StepHost, step: Step, limits: EdgeLimits) -> Callable[[Request], Any]:
    http = host.config.http

    async def endpoint(request: Request) -> Response:
        trace_id = str(uuid.uuid4())
        try:
            async with read_body(request, http.max_body_bytes, http.body_timeout_seconds,
                                 limits.bodies) as raw, limits.handlers.slot():
                return await _run(host, step, build_request(request, raw), trace_id)
        except EdgeRefusal as refusal:
            return _refusal(step, trace_id, refusal)
        except ClientDisconnect:
            log.info("[step=%s trace=%s] client went away before its body arrived", step.name, trace_id)
            return Response(status_code=400)  # nobody reads it

    return endpoint


async def _run(host: StepHost, step: Step, req: MotiaRequest, trace_id: str) -> Response:
    context = host.make_context(step, trace_id)
    try:
        result = await step.handler(req, context)
        return to_response(result, trace_id)
    except Exception:
        log.exception("[step=%s trace=%s] API handler failed", step.name, trace_id)
        return JSONResponse(
            {"error": "internal error", "traceId": trace_id},
            status_code=500,
            headers={"x-trace-id": trace_id},
        )


class EdgeLimits:
    """The budgets one app's API routes share (see :mod:`stephost.http_limits`)."""

    def __init__(self, http: HttpConfig) -> None:
        self.bodies = BodyBudget(http.max_buffered_body_bytes)
        self.handlers = HandlerSlots(http.max_concurrent_handlers, http.handler_wait_seconds)


def build_http_app(host: StepHost, *, manage_host: bool = False) -> Starlette:
    """One route per API step plus ``host.extra_routes``. With ``manage_host`` the app's lifespan
    starts and stops the host (what :func:`stephost.host.serve` uses)."""
    limits = EdgeLimits(host.config.http)
    routes: list[BaseRoute] = [
        Route(
            starlette_path(step.path or "/"),
            _endpoint(host, step, limits),
            methods=[step.method or "GET"],
            name=step.name,
        )
        for step in host.steps
        if step.type == "api"
    ]
    routes.extend(host.extra_routes)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage_host:
            await host.start()
        try:
            yield
        finally:
            if manage_host:
                await host.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.edge_limits = limits
    return app


def route_table(steps: Sequence[Step]) -> list[tuple[str, str, str]]:
    """``(method, starlette path, step name)`` for every API step; handy for logs and docs."""
    return [(s.method or "GET", starlette_path(s.path or "/"), s.name) for s in steps if s.type == "api"]
