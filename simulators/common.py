"""Shared pieces of both simulators: the middleware applying faults (:mod:`simulators.faults`), call
counters, running a server.

Fault injection and counters are an ASGI middleware, so they see every request the way a client
does. Both are controllable at run time: in-process through the :class:`FaultInjector` and
:class:`CallCounter` objects, and over HTTP through ``/__sim/faults`` and ``/__sim/calls``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.faults import FaultInjector, FaultRule

_ID_SEGMENT = re.compile(r"^(?:[0-9a-f]{17}|\d+)$")


def normalize_path(path: str) -> str:
    """``/api/v1/CBeteiligte/6650f1a2b3c4d5e6f`` -> ``/api/v1/CBeteiligte/{id}``."""
    return "/".join("{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/"))


class CallCounter:
    """Counts requests per ``METHOD /normalized/path`` (the /__sim control routes excluded)."""

    def __init__(self) -> None:
        self._c: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        with self._lock:
            self._c[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)

    def total(self, prefix: str = "") -> int:
        with self._lock:
            return sum(v for k, v in self._c.items() if k.startswith(prefix))

    def reset(self) -> None:
        with self._lock:
            self._c.clear()


class Activity:
    """Requests being served right now, the most at once since the last reset (how a client's
    concurrency cap is seen from the server), and the wall-clock time the last answer went out."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.last_done = 0.0
        self.serving_s = 0.0  # time spent serving requests, the injected latency not counted
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1
            self.last_done = time.time()

    def served(self, seconds: float) -> None:
        with self._lock:
            self.serving_s += seconds

    def reset(self) -> None:
        with self._lock:
            self.peak = self.now
            self.serving_s = 0.0

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"inflight": self.now, "peak": self.peak, "last_done": self.last_done,
                    "serving_s": self.serving_s}


async def _send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(payload).encode() if payload is not None else b""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + headers,
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now; the returned ``receive`` replays it."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay


class SimulatorMiddleware:
    """Counts every request, applies faults, and serves ``/__sim/faults`` and ``/__sim/calls``."""

    def __init__(
        self,
        app: ASGIApp,
        faults: FaultInjector,
        calls: CallCounter,
        fault_body: Any = None,
        records: Any = None,
        edit_record: Any = None,
        actions: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.faults = faults
        self.calls = calls
        self.activity = Activity()
        # callable(record_id | None) -> list | dict | None: an uncounted, unauthenticated look at the
        # simulator's data under /__sim/records[/<id>] (sandbox and debugging only)
        self.records = records
        # callable(record_id, body) -> (status, payload): ``PUT /__sim/records/<id>`` edits a record as a
        # user of that system would; without it the route is read-only and says so (405)
        self.edit_record = edit_record
        # ``/__sim/<name>`` -> callable(method, body) -> (status, payload): a simulator's own control
        # routes (Advoware's bulk change and clock, say)
        self.actions = actions or {}
        # payload of an injected error (e.g. problem+json for Advoware); callable(status)->obj or None
        self.fault_body = fault_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if path.startswith("/__sim/"):
            await self._control(scope, receive, send)
            return
        self.calls.hit(f"{method} {normalize_path(path)}")
        self.activity.enter()
        try:
            await self._serve(scope, receive, send, method, path)
        finally:
            self.activity.leave()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, method: str, path: str) -> None:
        if self.faults.latency:  # every request answers this much later (a system far away)
            await asyncio.sleep(self.faults.latency)
        started = time.perf_counter()
        try:
            await self._serve_now(scope, receive, send, method, path)
        finally:
            self.activity.served(time.perf_counter() - started)

    async def _serve_now(self, scope: Scope, receive: Receive, send: Send, method: str, path: str) -> None:
        rule = self.faults.pick(method, path)
        if rule is not None and rule.before is not None:
            rule.before()
        if rule is not None and rule.lose_answer:
            await self._serve_then_hold(rule.delay, scope, receive, send)
            return
        if rule is not None:
            if rule.delay:
                # A slow server: the request is taken in first, so a client that gives up meanwhile
                # does not stop a write from being applied (as a real system would apply it).
                receive = await _buffered(receive)
                await asyncio.sleep(rule.delay)
            if rule.status:
                headers: list[tuple[bytes, bytes]] = []
                if rule.retry_after is not None:
                    headers.append((b"retry-after", str(rule.retry_after).encode()))
                if rule.body is not None:
                    raw = rule.body.encode()
                    await send({"type": "http.response.start", "status": rule.status,
                                "headers": [(b"content-length", str(len(raw)).encode())] + headers})
                    await send({"type": "http.response.body", "body": raw})
                    return
                payload = self.fault_body(rule.status) if callable(self.fault_body) else None
                await _send_json(send, rule.status, payload, headers)
                return
        await self.app(scope, receive, send)
        if rule is not None and rule.after is not None:
            rule.after()

    async def _serve_then_hold(self, delay: float, scope: Scope, receive: Receive, send: Send) -> None:
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        await asyncio.sleep(delay)
        try:
            for message in held:
                await send(message)
        except OSError:
            pass  # the client gave up long ago: that is the point

    async def _edit(self, rid: str, method: str, body: bytes, send: Send) -> None:
        if self.edit_record is None or method != "PUT" or not rid:
            what = "PUT /__sim/records/<id> only" if self.edit_record else "read-only: edit through the API"
            await _send_json(send, 405, {"error": what}, [])
            return
        status, payload = self.edit_record(rid, body)
        await _send_json(send, status, payload, [])

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            msg: Message = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if path == "/__sim/calls":
            if method == "DELETE":
                self.calls.reset()
            await _send_json(send, 200, self.calls.snapshot(), [])
        elif path == "/__sim/faults":
            if method == "DELETE":
                self.faults.clear()
            elif method == "POST":
                data = json.loads(body or b"{}")
                if "latency" in data:
                    self.faults.latency = float(data["latency"])
                for r in data.get("rules", []):
                    self.faults.add(FaultRule(**{k: v for k, v in r.items() if k not in ("before", "after")}))
            await _send_json(send, 200, self.faults.to_json(), [])
        elif path == "/__sim/activity":
            if method == "DELETE":
                self.activity.reset()
            await _send_json(send, 200, self.activity.to_json(), [])
        elif path in self.actions:
            status, payload = self.actions[path](method, body)
            await _send_json(send, status, payload, [])
        elif path.startswith("/__sim/records") and method not in ("GET", "HEAD"):
            await self._edit(path.removeprefix("/__sim/records").strip("/"), method, body, send)
        elif path.startswith("/__sim/records") and self.records is not None:
            rid = path.removeprefix("/__sim/records").strip("/") or None
            found = self.records(rid)
            await _send_json(send, 200 if found is not None else 404, found, [])
        else:
            await _send_json(send, 404, {"error": "unknown control route"}, [])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ServerHandle:
    """A uvicorn server running in a background thread (its own event loop)."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread
    extra: dict[str, Any] = field(default_factory=dict)

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int | None = None) -> ServerHandle:
    """Start ``app`` on ``host:port`` (a free port when ``None``) and wait until it accepts."""
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sim-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.01)
    return ServerHandle(url=f"http://{host}:{port}", server=server, thread=thread)
