"""API steps served over real HTTP (uvicorn on a free port)."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from stephost.host import StepHost
from stephost.http_app import starlette_path
from tests.stephost_fixtures.support import fast_config, http_server


@pytest.fixture
async def client(host: StepHost) -> AsyncIterator[httpx.AsyncClient]:
    async with http_server(host.http_app) as base, httpx.AsyncClient(base_url=base) as c:
        yield c


def test_motia_path_params_become_starlette_params() -> None:
    assert starlette_path("/x/:id/y/:other_id") == "/x/{id}/y/{other_id}"
    assert starlette_path("/plain") == "/plain"


async def test_request_is_passed_in_motia_shape(client: httpx.AsyncClient) -> None:
    payload = [{"id": "abc", "name": "Müller"}]
    raw = json.dumps(payload).encode()
    resp = await client.post(
        "/echo/person/42?x=1&tag=a&tag=b",
        content=raw,
        headers={"Content-Type": "application/json", "Signature": "sig==", "X-Multi": "v"},
    )
    assert resp.status_code == 201
    assert resp.headers["x-echo"] == "yes"
    got = resp.json()
    assert got["body"] == payload
    assert got["rawBody"] == raw.decode() and got["rawBytesLen"] == len(raw)
    assert got["headers"]["signature"] == "sig==" and got["headers"]["content-type"] == "application/json"
    assert all(k == k.lower() for k in got["headers"])
    assert got["pathParams"] == {"kind": "person", "id": "42"}
    assert got["queryParams"] == {"x": "1", "tag": ["a", "b"]}
    assert resp.headers["x-trace-id"] == got["traceId"]


async def test_non_json_body_gives_none_but_keeps_raw(client: httpx.AsyncClient) -> None:
    resp = await client.post("/echo/k/1", content=b"not json \xff")
    got = resp.json()
    assert got["body"] is None
    assert got["rawBody"].startswith("not json ") and got["rawBytesLen"] == 10


async def test_each_request_gets_a_new_trace_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.post("/echo/k/1", content=b"{}")).json()["traceId"] for _ in range(3)}
    assert len(ids) == 3


async def test_oversized_body_is_refused_without_calling_the_handler(host: StepHost) -> None:
    small = StepHost(
        fast_config().model_copy(
            update={"http": fast_config().http.model_copy(update={"max_body_bytes": 100})}
        ),
        host.redis,
        steps=host.steps,
    )
    async with http_server(small.http_app) as base, httpx.AsyncClient(base_url=base) as c:
        ok = await c.post("/echo/k/1", content=b"x" * 100)
        assert ok.status_code == 201
        for size in (101, 5_000_000):  # Content-Length over the limit: refused before reading
            too_big = await c.post("/echo/k/1", content=b"x" * size)
            assert too_big.status_code == 400 and too_big.json()["error"] == "body too large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: stream-read limit applies
            for _ in range(50):
                yield b"y" * 10

        streamed = await c.post("/echo/k/1", content=chunks())
        assert streamed.status_code == 400 and streamed.json()["error"] == "body too large"
    assert await host.state.get("echo", "calls") == 1


async def test_handler_exception_is_500_with_trace_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    resp = await client.get("/boom")
    assert resp.status_code == 500
    trace_id = resp.json()["traceId"]
    assert resp.json()["error"] == "internal error" and "kaputt" not in resp.text
    assert any(trace_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_undeclared_topic_is_refused_and_nothing_is_queued(
    client: httpx.AsyncClient, host: StepHost
) -> None:
    resp = await client.post("/chain", json={"topic": "fx.chain.next", "data": {}})
    assert resp.status_code == 409 and resp.json()["error"] == "TopicNotDeclaredError"
    assert host.queue_depth() == 0 and host.bus_stats()["published"] == 0
    assert await host.drain(1) and await host.state.get_group("chain") == []


async def test_wrong_method_and_unknown_path(client: httpx.AsyncClient) -> None:
    assert (await client.get("/echo/k/1")).status_code == 405
    assert (await client.post("/nowhere")).status_code == 404


async def test_extra_routes_are_served(host: StepHost) -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"depth={host.queue_depth()}")

    h = StepHost(fast_config(), host.redis, steps=host.steps, extra_routes=[Route("/health", health)])
    async with http_server(h.http_app) as base, httpx.AsyncClient(base_url=base) as c:
        assert (await c.get("/health")).text == "depth=0"
