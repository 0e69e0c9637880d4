"""HTTP side of the host: one Starlette route per API step, Motia-shaped ``req`` and responses."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stephost.discovery import Step

if TYPE_CHECKING:
    from stephost.host import StepHost

log = logging.getLogger("stephost.http")

_MOTIA_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


class BodyTooLargeError(Exception):
    pass


def starlette_path(motia_path: str) -> str:
    """``/x/:id/y`` -> ``/x/{id}/y``."""
    return _MOTIA_PARAM.sub(r"{\1}", motia_path)


async def read_body_limited(request: Request, limit: int) -> bytes:
    """The raw body, or BodyTooLargeError as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


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


def build_request(request: Request, raw: bytes) -> dict[str, Any]:
    """Motia's ``req``: body (parsed JSON or None), rawBody (str), rawBytes, headers, params."""
    return {
        "body": _parse_json(raw),
        "rawBody": raw.decode("utf-8", errors="replace"),
        "rawBytes": raw,
        "headers": _headers(request),
        "pathParams": dict(request.path_params),
        "queryParams": _query(request),
    }


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


def _endpoint(host: StepHost, step: Step) -> Callable[[Request], Any]:
    limit = host.config.http.max_body_bytes

    async def endpoint(request: Request) -> Response:
        trace_id = str(uuid.uuid4())
        try:
            raw = await read_body_limited(request, limit)
        except BodyTooLargeError:
            log.warning("[step=%s trace=%s] request body over %d bytes refused", step.name, trace_id, limit)
            return JSONResponse(
                {"error": "body too large", "traceId": trace_id},
                status_code=400,
                headers={"x-trace-id": trace_id},
            )
        context = host.make_context(step, trace_id)
        try:
            result = await step.handler(build_request(request, raw), context)
            return to_response(result, trace_id)
        except Exception:
            log.exception("[step=%s trace=%s] API handler failed", step.name, trace_id)
            return JSONResponse(
                {"error": "internal error", "traceId": trace_id},
                status_code=500,
                headers={"x-trace-id": trace_id},
            )

    return endpoint


def build_http_app(host: StepHost, *, manage_host: bool = False) -> Starlette:
    """One route per API step plus ``host.extra_routes``. With ``manage_host`` the app's lifespan
    starts and stops the host (what :func:`stephost.host.serve` uses)."""
    routes: list[BaseRoute] = [
        Route(
            starlette_path(step.path or "/"),
            _endpoint(host, step),
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

    return Starlette(routes=routes, lifespan=lifespan)


def route_table(steps: Sequence[Step]) -> list[tuple[str, str, str]]:
    """``(method, starlette path, step name)`` for every API step; handy for logs and docs."""
    return [(s.method or "GET", starlette_path(s.path or "/"), s.name) for s in steps if s.type == "api"]
