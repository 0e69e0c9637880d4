"""The edge's limits over real sockets, on the server ``serve`` runs (``server_config``): deadlines for
headers and bodies, idle keep-alive, the body-memory budget and the handler slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from stephost.discovery import Step
from stephost.host import StepHost
from stephost.http_app import MotiaRequest
from stephost.http_server import server_config
from tests.flood import idle_socket, trickled_body, trickled_headers
from tests.stephost_fixtures.support import fast_config, free_port

FAST = {"headerTimeoutSeconds": 0.3, "bodyTimeoutSeconds": 0.3, "keepAliveSeconds": 1}
GIVE_UP_S = 20.0  # far beyond every deadline: reaching it means the connection was never closed


def configured(host: StepHost, **http: Any) -> StepHost:
    cfg = host.config
    merged = cfg.http.model_validate({**cfg.http.model_dump(by_alias=True), **FAST, **http})
    return StepHost(cfg.model_copy(update={"http": merged}), host.redis, steps=host.steps,
                    extra_routes=host.extra_routes)


@asynccontextmanager
async def served(host: StepHost) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(server_config(host.http_app, host.config.http, host="127.0.0.1", port=port,
                                          lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_silent_and_trickling_connections_are_closed(host: StepHost) -> None:
    async with served(configured(host)) as url:
        closed = await asyncio.gather(idle_socket(url, GIVE_UP_S), trickled_headers(url, 0.05, GIVE_UP_S))
    assert closed == [True, True]


async def test_slow_body_gets_408_on_api_routes_and_is_cut_off_elsewhere(host: StepHost) -> None:
    async with served(configured(host)) as url:
        api, unknown = await asyncio.gather(trickled_body(url, "/echo/k/1", 0.05, GIVE_UP_S),
                                            trickled_body(url, "/nowhere", 0.05, GIVE_UP_S))
    assert api == 408
    assert unknown in (404, "closed")  # answered at once; the rest of the body is never waited for
    assert await host.state.get("echo", "calls") is None


async def test_idle_keep_alive_connection_is_closed(host: StepHost) -> None:
    async with served(configured(host)) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(b"POST /echo/k/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 201")
        async with asyncio.timeout(GIVE_UP_S):
            while await reader.read(65536):
                pass  # the body, then EOF once the keep-alive ran out
        writer.close()


async def test_bodies_over_the_memory_budget_get_503(host: StepHost) -> None:
    async with served(configured(host, maxBufferedBodyBytes=1000)) as url, httpx.AsyncClient(base_url=url) as c:
        declared = await c.post("/echo/k/1", content=b"x" * 2000)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it streams
            for _ in range(20):
                yield b"y" * 100

        streamed = await c.post("/echo/k/1", content=chunks())
        fits = await c.post("/echo/k/1", content=b"z" * 900)
    for resp in (declared, streamed):
        assert resp.status_code == 503 and resp.headers["retry-after"]
    assert fits.status_code == 201  # the refused bodies gave their bytes back
    assert await host.state.get("echo", "calls") == 1


def slow_step(release: asyncio.Event, entered: list[int], both_in: asyncio.Event) -> Step:
    async def handler(req: Any, context: Any) -> dict[str, Any]:
        entered.append(1)
        if len(entered) == 2:
            both_in.set()
        await release.wait()
        return {"status": 200, "body": {"ok": True}}

    cfg = {"type": "api", "name": "slow_api", "path": "/slow", "method": "POST", "emits": [], "flows": []}
    return Step(name="slow_api", type="api", file=Path("slow_api_step.py"), handler=handler, config=cfg,
                path="/slow", method="POST")


async def test_requests_beyond_the_handler_slots_get_a_fast_503() -> None:
    release, both_in = asyncio.Event(), asyncio.Event()
    entered: list[int] = []
    base = StepHost(fast_config(), None, steps=[slow_step(release, entered, both_in)])
    host = configured(base, maxConcurrentHandlers=2, handlerWaitSeconds=0.1)
    async with served(host) as url, httpx.AsyncClient(base_url=url, timeout=GIVE_UP_S) as c:
        running = [asyncio.create_task(c.post("/slow", content=b"[]")) for _ in range(2)]
        await both_in.wait()
        over = await c.post("/slow", content=b"[]")
        release.set()
        done = [r.status_code for r in await asyncio.gather(*running)]
        after = await c.post("/slow", content=b"[]")
    assert over.status_code == 503 and over.headers["retry-after"]
    assert done == [200, 200] and after.status_code == 200


def test_motia_request_parses_its_body_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[bytes] = []
    real: Callable[[bytes], Any] = MotiaRequest._LAZY["body"]

    def counting(raw: bytes) -> Any:
        parsed.append(raw)
        return real(raw)

    monkeypatch.setitem(MotiaRequest._LAZY, "body", counting)
    req = MotiaRequest(rawBytes=b'[{"id": "x"}]', headers={}, pathParams={}, queryParams={})
    assert req.get("rawBytes") == b'[{"id": "x"}]' and req["headers"] == {} and parsed == []
    assert "body" in req and parsed == []
    assert req["body"] == [{"id": "x"}] and req.get("rawBody") == '[{"id": "x"}]'
    assert dict(req) == {"body": [{"id": "x"}], "rawBody": '[{"id": "x"}]', "rawBytes": b'[{"id": "x"}]',
                         "headers": {}, "pathParams": {}, "queryParams": {}}
    assert len(parsed) == 1
    assert MotiaRequest(rawBytes=b"no json").get("body") is None
    assert MotiaRequest(rawBytes=b"").get("missing", 7) == 7


async def test_large_bodies_cannot_crowd_out_small_ones(host: StepHost) -> None:
    """A quarter of the body budget is kept for small bodies (every EspoCRM batch is one)."""
    budget = 4 * 1024 * 1024
    async with served(configured(host, maxBufferedBodyBytes=budget, bodyTimeoutSeconds=5)) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(b"POST /echo/k/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n[")  # held open
        await writer.drain()
        async with httpx.AsyncClient(base_url=url) as c:
            for _ in range(100):  # until the held body has reserved its bytes: other large ones are refused
                if await large_refused(c):
                    break
            else:
                pytest.fail("the held body never counted against the budget")
            small = await c.post("/echo/k/1", content=b"y" * 100_000)
        writer.close()
    assert small.status_code == 201


async def large_refused(client: httpx.AsyncClient) -> bool:
    try:  # refused unread, so the server may close the connection while the body is still going out
        return (await client.post("/echo/k/1", content=b"x" * 530_000)).status_code == 503
    except httpx.HTTPError:
        return True
