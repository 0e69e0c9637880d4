"""EspoCRM simulator outgoing webhooks (spec §1.2) against a small real receiver over HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import simulators.espocrm.webhooks as webhooks_module
from simulators.common import ServerHandle, serve_in_thread
from simulators.espocrm.simulator import EspoCRMSimulator

KEY = "test-key"


@dataclass
class Receiver:
    """Records every POST; answers ``statuses`` in turn (then ``default``), after ``delay`` s."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.requests.append((request.url.path, dict(request.headers), body))
                status = self.statuses.pop(0) if self.statuses else self.default
            if self.delay:
                await asyncio.sleep(self.delay)
            return Response(b"", status_code=status)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    def items(self, index: int) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = json.loads(self.requests[index][2])
        return loaded


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, ServerHandle]]:
    receiver = Receiver()
    handle = serve_in_thread(receiver.app())
    receiver.url = handle.url
    yield receiver, handle
    handle.stop()


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, ServerHandle]) -> Receiver:
    rec = receiver_server[0]
    rec.requests.clear()
    rec.statuses.clear()
    rec.default, rec.delay = 200, 0.0
    return rec


@pytest.fixture
def sim() -> EspoCRMSimulator:
    return EspoCRMSimulator(api_key=KEY, seed=3, webhook_timeout_s=0.5)


@pytest.fixture
async def http(sim: EspoCRMSimulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://espo.test/api/v1", headers={"X-Api-Key": KEY}
    ) as client:
        yield client


async def register(
    http: httpx.AsyncClient, receiver: Receiver, event: str, skip_own: bool = True
) -> dict[str, Any]:
    resp = await http.post(
        "/Webhook",
        json={"event": f"CBeteiligte.{event}", "url": f"{receiver.url}/hook/{event}", "skipOwn": skip_own},
    )
    assert resp.status_code == 200
    hook: dict[str, Any] = resp.json()
    return hook


async def test_payload_shapes(http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver) -> None:
    for event in ("create", "update", "delete"):
        await register(http, receiver, event)
    rec = sim.seed(firstName="Anna", lastName="Muster", description="frei")
    sim.user_edit(rec["id"], addressCity="Bonn", titel="Dr.")
    sim.user_edit(rec["id"], firstName="Anne")
    sim.user_edit(rec["id"], firstName="Anne")  # no-op: no event
    sim.user_delete(rec["id"])
    assert sim.pending_webhook_events() == 4
    results = await sim.flush_webhooks()
    assert [r.outcome for r in results] == ["done", "done", "done"]
    by_path = {path: json.loads(body) for path, _, body in receiver.requests}
    create = by_path["/hook/create"]
    assert len(create) == 1 and list(create[0])[0] == "id"
    assert create[0]["description"] == "frei" and "versionNumber" not in create[0]  # OCC off
    assert by_path["/hook/update"] == [
        {"titel": "Dr.", "addressCity": "Bonn", "id": rec["id"]},
        {"name": "Anne Muster", "firstName": "Anne", "id": rec["id"]},
    ]
    assert all(list(item)[-1] == "id" for item in by_path["/hook/update"])
    assert by_path["/hook/delete"] == [{"id": rec["id"]}]
    assert sim.pending_webhook_events() == 0


async def test_signature_and_php_escaping(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver
) -> None:
    hook = await register(http, receiver, "create")
    sim.seed(lastName="Müller", emailAddress="a/b@example.org")
    await sim.flush_webhooks()
    _, headers, raw = receiver.requests[0]
    assert headers["content-type"] == "application/json"
    assert b"M\\u00fcller" in raw and b"a\\/b@example.org" in raw
    assert b", " not in raw and b'": ' not in raw  # compact separators, like PHP
    assert json.loads(raw)[0]["lastName"] == "Müller"
    secret = hook["secretKey"].encode()
    expected_hex = hmac.new(secret, raw, hashlib.sha256).hexdigest()
    assert base64.b64decode(headers["signature"]) == f"{hook['id']}:{expected_hex}".encode()
    expected_raw = hmac.new(secret, raw, hashlib.sha256).digest()
    assert base64.b64decode(headers["x-signature"]) == hook["id"].encode() + b":" + expected_raw
    reserialized = json.dumps(json.loads(raw)).encode()
    assert hmac.new(secret, reserialized, hashlib.sha256).hexdigest() != expected_hex


async def test_skip_own_sends_only_ui_changes(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver
) -> None:
    await register(http, receiver, "create", skip_own=True)
    await register(http, receiver, "update", skip_own=False)
    api_rec = (await http.post("/CBeteiligte", json={"lastName": "ViaApi"})).json()
    ui_rec = sim.seed(lastName="ViaUi")
    await http.put(f"/CBeteiligte/{api_rec['id']}", json={"titel": "Prof."})
    await sim.flush_webhooks()
    by_path = {path: json.loads(body) for path, _, body in receiver.requests}
    assert [i["id"] for i in by_path["/hook/create"]] == [ui_rec["id"]]
    assert by_path["/hook/update"] == [{"titel": "Prof.", "id": api_rec["id"]}]  # skipOwn off: sent


async def test_batches_of_50(http: httpx.AsyncClient, receiver: Receiver) -> None:
    # with a portion size above 50 (webhookQueueEventPortionSize), one run sends one batch of at most
    # 50 items per webhook; the rest waits for the next run
    sim = EspoCRMSimulator(api_key=KEY, seed=3, event_portion_size=200)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://espo.test/api/v1",
                                 headers={"X-Api-Key": KEY}) as client:
        await register(client, receiver, "create")
    ids = [sim.seed(lastName=f"P{i}")["id"] for i in range(120)]
    runs = [[r.item_count for r in await sim.flush_webhooks()] for _ in range(3)]
    assert runs == [[50], [50], [20]]
    assert [item["id"] for i in range(3) for item in receiver.items(i)] == ids
    assert await sim.flush_webhooks() == []


@pytest.mark.parametrize("status", [500, 401, 503])
async def test_retryable_answer_retried_then_dropped_after_4_attempts(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver, status: int
) -> None:
    await register(http, receiver, "create")
    receiver.default = status
    sim.seed(lastName="Retry")
    outcomes = [(await sim.flush_webhooks())[0].outcome for _ in range(4)]
    assert outcomes == ["retry", "retry", "retry", "dropped"]
    assert len(receiver.requests) == 4
    assert len({body for _, _, body in receiver.requests}) == 1  # the same batch each time
    assert sim.pending_webhook_events() == 0
    assert await sim.flush_webhooks() == []


async def test_retry_succeeds_on_next_flush(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver
) -> None:
    await register(http, receiver, "create")
    receiver.statuses = [503]
    sim.seed(lastName="Later")
    first = await sim.flush_webhooks()
    assert first[0].outcome == "retry" and sim.pending_webhook_events() == 1
    second = await sim.flush_webhooks()
    assert second[0].outcome == "done" and second[0].attempt == 2
    assert sim.pending_webhook_events() == 0


async def test_a_batch_kept_for_retry_waits_for_the_retry_delay(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EspoCRM sends a failed batch again every 10 min, not on every job run: a receiver that is down
    for a restart gets the batch later instead of losing it after four quick attempts."""
    clock = [1000.0]
    monkeypatch.setattr(webhooks_module.time, "monotonic", lambda: clock[0])
    sim.set_webhook_retry_delay(600)
    await register(http, receiver, "create")
    receiver.statuses = [503]
    sim.seed(lastName="Restart")
    assert (await sim.flush_webhooks())[0].outcome == "retry"
    clock[0] += 599
    assert await sim.flush_webhooks() == [] and sim.pending_webhook_events() == 1
    clock[0] += 1
    (second,) = await sim.flush_webhooks()
    assert second.outcome == "done" and second.attempt == 2


@pytest.mark.parametrize("status", [400, 422, 502, 504])
async def test_other_errors_drop_at_once(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver, status: int
) -> None:
    await register(http, receiver, "create")
    receiver.default = status
    sim.seed(lastName="Gone")
    results = await sim.flush_webhooks()
    assert [r.outcome for r in results] == ["dropped"]
    assert await sim.flush_webhooks() == []
    assert len(receiver.requests) == 1


async def test_410_deletes_subscription(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver
) -> None:
    hook = await register(http, receiver, "create")
    receiver.default = 410
    sim.seed(lastName="A")
    results = await sim.flush_webhooks()
    assert results[0].outcome == "webhook_deleted"
    assert hook["id"] not in [w["id"] for w in sim.webhooks]
    sim.seed(lastName="B")
    assert sim.pending_webhook_events() == 0
    assert await sim.flush_webhooks() == []


async def test_timeout_is_retried(http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver) -> None:
    await register(http, receiver, "create")
    receiver.delay = 1.0  # longer than the simulator's 0.5 s webhook timeout
    sim.seed(lastName="Slow")
    results = await sim.flush_webhooks()
    assert results[0].status is None and results[0].error == "timeout" and results[0].outcome == "retry"
    receiver.delay = 0.0
    assert (await sim.flush_webhooks())[0].outcome == "done"


async def test_background_job_delivers(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, receiver: Receiver
) -> None:
    await register(http, receiver, "create")
    sim.start_webhook_job(0.05)
    try:
        sim.seed(lastName="Job")
        await asyncio.to_thread(wait_until, lambda: bool(receiver.requests))
    finally:
        sim.stop_webhook_job()
    assert receiver.items(0)[0]["lastName"] == "Job"
    assert sim.pending_webhook_events() == 0
