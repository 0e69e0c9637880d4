"""The Advoware client against the simulator over real HTTP (uvicorn in a thread)."""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis

from adapters.advoware_api import AdvowareAPI
from adapters.advoware_wire import request_timestamp, sign_token_request
from adapters.errors import (
    AuthenticationError,
    BadResponseError,
    DeferredError,
    NotFoundError,
    ReferencedError,
    RetryableError,
    StaleWriteError,
    ValidationError,
)
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle, free_port
from tests.fakes.backends import CurrentApp
from tests.redis_server import redis_server

TOKEN = "POST /api/v1/Token"
GET_ONE = "GET /api/v1/advonet/Beteiligte/{id}"
LIST = "GET /api/v1/advonet/Beteiligte"
PASSWORD = "pw-Geheim-4711"
API_KEY = base64.b64encode(b"very-secret-api-key").decode()


@pytest.fixture
def sim() -> AdvowareSimulator:
    ticks = itertools.count()
    start = datetime.now(UTC)  # every reading 1 ms later: distinct, ordered geaendertAm stamps

    def clock() -> datetime:
        return start + timedelta(milliseconds=next(ticks))

    return AdvowareSimulator(password=PASSWORD, api_key_b64=API_KEY, seed=3, clock=clock)



@pytest.fixture
def server(sim: AdvowareSimulator, app_server: tuple[ServerHandle, CurrentApp]) -> ServerHandle:
    handle, current = app_server
    current.target = sim.app
    return handle


def make_api(sim: AdvowareSimulator, url: str, redis: Any = None, **kw: Any) -> AdvowareAPI:
    settings = {**sim.client_settings(), **kw}
    return AdvowareAPI(url, url, redis=redis or fakeredis.FakeAsyncRedis(), **settings)


@pytest.fixture
async def api(sim: AdvowareSimulator, server: ServerHandle) -> AsyncIterator[AdvowareAPI]:
    client = make_api(sim, server.url, timeout=2.0)
    yield client
    await client.aclose()


def test_signature_matches_spec_test_vector() -> None:
    key = base64.b64encode(b"test-secret-key").decode()
    assert sign_token_request("app-123", key, "nonce-abc", "2026-08-30T00:00:00.000Z") == (
        "o7rz9KmoXZs550HfzO6ffiG17XwiPmlBHlksUYKZ3jcfolELow51Fw5KlrQqCK5y41aIValDjrh1iQ2GZ2WtqQ==")
    stamp = request_timestamp(datetime(2026, 11, 29, 10, 4, 26, 795554, tzinfo=UTC))
    assert stamp == "2026-11-29T10:04:26.7955540Z"


async def test_token_request_body_per_spec() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/Token":
            seen.append(json.loads(request.content))
            return httpx.Response(200, json={"access_token": "t1", "expires_in": 3600})
        assert request.headers["authorization"] == "Bearer t1"
        return httpx.Response(200, json={"betNr": 1, "name": "A", "rowId": "AAAAAAAAAAE="})

    api = AdvowareAPI("http://adv", "http://gw", app_id="a", api_key=API_KEY, kanzlei="k", database="d",
                      user="u", password=PASSWORD, redis=fakeredis.FakeAsyncRedis(),
                      transport=httpx.MockTransport(handler))
    await api.get_beteiligter(1)
    await api.get_beteiligter(1)
    await api.aclose()
    assert len(seen) == 1  # cached
    body = seen[0]
    assert {k: body[k] for k in ("AppID", "Kanzlei", "Database", "User", "Role", "Product", "Password")} == {
        "AppID": "a", "Kanzlei": "k", "Database": "d", "User": "u", "Role": 2, "Product": 64,
        "Password": PASSWORD}
    uuid.UUID(body["Nonce"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", body["RequestTimeStamp"])
    signature = sign_token_request("a", API_KEY, body["Nonce"], body["RequestTimeStamp"])
    assert body["HMAC512Signature"] == signature


async def test_crud_roundtrip(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    created = await api.create_beteiligter({"name": "Muster", "vorname": "Max", "kurzname": "MU"})
    assert created["rowId"] and created["betNr"]
    assert sim.calls.snapshot().get(GET_ONE, 0) == 0  # rowId came with the POST answer
    assert await api.get_beteiligter(created["betNr"]) == created
    body = {"name": "Muster", "kurzname": "MU", "rowId": created["rowId"]}
    updated = await api.update_beteiligter(created["betNr"], body)
    assert updated["vorname"] is None and updated["kurzname"] == "MU"  # full replacement
    assert updated["rowId"] != created["rowId"]
    await api.delete_beteiligter(created["betNr"])
    with pytest.raises(NotFoundError):
        await api.get_beteiligter(created["betNr"])


async def test_create_without_rowid_in_answer_does_one_get(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    sim.set_post_returns_rowid(False)
    created = await api.create_beteiligter({"name": "Muster"})
    assert created["rowId"] == sim.get(created["betNr"])["rowId"]  # type: ignore[index]
    assert sim.calls.snapshot()[GET_ONE] == 1


async def test_stale_rowid_is_stale_write(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    row = sim.seed(name="Muster")
    edited = sim.edit(row["betNr"], name="Anders")
    with pytest.raises(StaleWriteError):
        await api.update_beteiligter(row["betNr"], {"name": "Ours", "rowId": row["rowId"]})
    assert sim.get(row["betNr"]) == edited
    result = await api.update_beteiligter(row["betNr"], {"name": "Ours", "rowId": edited["rowId"]})
    assert result["name"] == "Ours"


async def test_validation_and_referenced(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    with pytest.raises(ValidationError, match="name is required"):
        await api.create_beteiligter({"vorname": "no name"})
    row = sim.seed(name="In Akte")
    sim.set_referenced(row["betNr"], True)
    with pytest.raises(ReferencedError):
        await api.delete_beteiligter(row["betNr"])


async def test_list_pages_in_order(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    rows = [sim.seed(name=f"N{i}") for i in range(5)]
    sim.edit(rows[0]["betNr"], name="changed last")
    seen = [r["betNr"] async for r in api.iter_beteiligte(page_size=2)]
    assert seen == [r["betNr"] for r in rows[1:]] + [rows[0]["betNr"]]
    assert sim.calls.snapshot()[LIST] == 3
    since = datetime.fromisoformat(sim.get(rows[0]["betNr"])["geaendertAm"])  # type: ignore[index]
    assert [r["betNr"] for r in await api.list_beteiligte(geaendert_seit=since)] == [rows[0]["betNr"]]
    with pytest.raises(ValidationError):  # the server's limit; the client splits a bigger take (below)
        await api.get_raw("api/v1/advonet/Beteiligte", {"take": 201})
    assert len(await api.list_beteiligte(take=201)) == 5
    assert await api.supports_list() is True


async def test_list_disabled(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    sim.set_list_endpoint(False)
    with pytest.raises(NotFoundError):
        await api.list_beteiligte()
    assert await api.supports_list() is False
    assert await api.supports_list() is False
    assert sim.calls.snapshot()[LIST] == 1  # the failed list call answered the probe


async def test_supports_list_probes_once(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    sim.set_list_endpoint(False)
    assert await api.supports_list() is False
    assert await api.supports_list() is False
    assert sim.calls.snapshot()[LIST] == 1


async def test_expired_token_renewed_once(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    row = sim.seed(name="Muster")
    await api.get_beteiligter(row["betNr"])
    sim.expire_tokens()
    assert (await api.get_beteiligter(row["betNr"]))["name"] == "Muster"
    assert sim.calls.snapshot()[TOKEN] == 2
    assert sim.calls.snapshot()[GET_ONE] == 3


async def test_second_401_is_authentication_error(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    sim.faults.add(method="GET", path="/Beteiligte/", status=401, times=2)
    with pytest.raises(AuthenticationError):
        await api.get_beteiligter(1)
    assert sim.calls.snapshot()[TOKEN] == 2 and sim.calls.snapshot()[GET_ONE] == 2


async def test_wrong_credentials_do_not_leak(sim: AdvowareSimulator, server: ServerHandle) -> None:
    bad = make_api(sim, server.url, password="pw-Falsch-0815")
    with pytest.raises(AuthenticationError) as info:
        await bad.get_beteiligter(1)
    await bad.aclose()
    assert "pw-Falsch-0815" not in str(info.value) and API_KEY not in str(info.value)


async def test_secrets_echoed_by_server_are_scrubbed(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    await api.get_beteiligter(sim.seed(name="A")["betNr"])
    echo = json.dumps({"title": "boom", "status": 500, "detail": f"bad password {PASSWORD} key {API_KEY}"})
    sim.faults.add(method="GET", status=500, body=echo)
    with pytest.raises(RetryableError) as info:
        await api.get_beteiligter(1)
    text = str(info.value) + repr(info.value.details)
    assert PASSWORD not in text and API_KEY not in text and "bad password ***" in text


async def test_503_with_retry_after_is_deferred(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    sim.faults.add(method="GET", path="/Beteiligte/", status=503, retry_after=7)
    with pytest.raises(DeferredError) as info:
        await api.get_beteiligter(1)
    assert info.value.retry_after == 7
    sim.faults.add(method="GET", path="/Beteiligte/", status=429, retry_after=3)
    with pytest.raises(DeferredError):
        await api.get_beteiligter(1)


async def test_500_is_retryable_and_not_retried(sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    sim.faults.add(method="GET", path="/Beteiligte/", status=500)
    with pytest.raises(RetryableError) as info:
        await api.get_beteiligter(1)
    assert type(info.value) is RetryableError and info.value.status == 500
    assert sim.calls.snapshot()[GET_ONE] == 1


async def test_timeout_is_retryable(sim: AdvowareSimulator, server: ServerHandle) -> None:
    row = sim.seed(name="Langsam")
    fast = make_api(sim, server.url, timeout=0.2)
    sim.faults.add(method="GET", path="/Beteiligte/", delay=0.5)
    with pytest.raises(RetryableError, match="timed out"):
        await fast.get_beteiligter(row["betNr"])
    await fast.aclose()


async def test_connection_refused_is_retryable(sim: AdvowareSimulator) -> None:
    dead = make_api(sim, f"http://127.0.0.1:{free_port()}", timeout=1.0)
    with pytest.raises(RetryableError, match="connection failed"):
        await dead.get_beteiligter(1)
    await dead.aclose()


@pytest.mark.parametrize("body", ["<html>oops</html>", '{"unexpected": true}', "[1, 2]"])
async def test_garbage_answer_is_bad_response(sim: AdvowareSimulator, api: AdvowareAPI, body: str) -> None:
    sim.faults.add(method="GET", path="/Beteiligte/", status=200, body=body)
    with pytest.raises(BadResponseError):
        await api.get_beteiligter(1)


@pytest.mark.redis
async def test_token_shared_between_clients_via_real_redis(sim: AdvowareSimulator,
                                                           server: ServerHandle) -> None:
    row = sim.seed(name="Geteilt")
    with redis_server() as url:
        r1, r2 = aioredis.from_url(url), aioredis.from_url(url)
        first, second = make_api(sim, server.url, redis=r1), make_api(sim, server.url, redis=r2)
        try:
            await first.get_beteiligter(row["betNr"])
            await second.get_beteiligter(row["betNr"])
            assert sim.calls.snapshot()[TOKEN] == 1
            [key] = [k async for k in r1.scan_iter("beteiligte-sync:advoware:token:*") if not k.endswith(b":lock")]
            ttl_ms = await r1.pttl(key)
            assert 3530_000 < ttl_ms <= 3540_000  # lifetime 3600 s minus the 60 s margin
        finally:
            for client in (first, second):
                await client.aclose()
            await r1.aclose()
            await r2.aclose()
