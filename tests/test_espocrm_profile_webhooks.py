"""EspoCRM simulator: outgoing webhooks of a real 8.1.5 and 9.x (spec §1.2, §1.3), to a real receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.common import ServerHandle, serve_in_thread
from simulators.espocrm import EspoCRMSimulator
from tests.test_espocrm_profiles import Clock, client, make_sim
from tests.test_espocrm_webhooks import Receiver

PROFILES = ["8", "9"]
EXTRAS_8 = ["modifiedAt", "modifiedById", "modifiedByName", "teamsNames", "followersIds", "followersNames"]


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    handle: ServerHandle = serve_in_thread(receiver.app())
    receiver.url = handle.url
    yield receiver
    handle.stop()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.requests.clear()
    receiver_server.statuses.clear()
    receiver_server.default, receiver_server.delay = 200, 0.0
    return receiver_server


async def register(sim: EspoCRMSimulator, receiver: Receiver, *events: str, skip_own: bool = True) -> list[Any]:
    hooks = []
    async with client(sim) as http:
        for event in events:
            resp = await http.post("/Webhook", json={"event": f"CBeteiligte.{event}",
                                                     "url": f"{receiver.url}/hook/{event}", "skipOwn": skip_own})
            assert resp.status_code in (200, 201)
            hooks.append(resp.json())
    return hooks


def sent(receiver: Receiver, event: str) -> list[dict[str, Any]]:
    return [item for path, _, body in receiver.requests if path == f"/hook/{event}" for item in json.loads(body)]


@pytest.mark.parametrize(("profile", "delivered"), [("8", True), ("9", False)])
async def test_skip_own_only_holds_on_9(receiver: Receiver, profile: str, delivered: bool) -> None:
    sim = make_sim(profile)
    await register(sim, receiver, "create", "update", skip_own=True)
    async with client(sim) as http:
        own = (await http.post("/CBeteiligte", json={"lastName": "ViaApi"})).json()
        await http.put(f"/CBeteiligte/{own['id']}", json={"titel": "Dr."})
    staff = sim.seed(lastName="ViaUi")
    await sim.flush_webhooks(drain=True)
    created = [i["id"] for i in sent(receiver, "create")]
    assert created == ([own["id"], staff["id"]] if delivered else [staff["id"]])
    assert [i["titel"] for i in sent(receiver, "update")] == (["Dr."] if delivered else [])


@pytest.mark.parametrize("occ", [False, True])
@pytest.mark.parametrize("profile", PROFILES)
async def test_update_item_attributes_per_profile(receiver: Receiver, profile: str, occ: bool) -> None:
    clock = Clock()
    sim = make_sim(profile, clock, occ=occ)
    await register(sim, receiver, "update")
    rec = sim.seed(lastName="Muster")
    clock.tick()
    sim.user_edit(rec["id"], addressCity="Bonn", titel="Dr.")
    await sim.flush_webhooks()
    [item] = sent(receiver, "update")
    if profile == "9":
        assert list(item) == ["titel", "addressCity", "id"]
        return
    extras = EXTRAS_8[:1] + (["versionNumber"] if occ else []) + EXTRAS_8[1:]
    assert list(item) == ["titel", "addressCity", *extras, "id"]
    assert item["modifiedAt"] == "2026-03-01 09:01:00" and item["modifiedById"] == sim.ui_user_id
    assert item["modifiedByName"] == "Sachbearbeitung" and item["teamsNames"] == {}
    assert item["followersIds"] == [sim.ui_user_id]
    assert item["followersNames"] == {sim.ui_user_id: "Sachbearbeitung"}
    if occ:
        assert item["versionNumber"] == 2


@pytest.mark.parametrize(("profile", "items"), [("8", 1), ("9", 0)])
async def test_noop_edit_queues_an_update_only_on_8(receiver: Receiver, profile: str, items: int) -> None:
    sim = make_sim(profile)
    await register(sim, receiver, "update")
    rec = sim.seed(lastName="Muster", titel="Dr.")
    sim.user_edit(rec["id"], titel="Dr.")
    await sim.flush_webhooks()
    update = sent(receiver, "update")
    assert len(update) == items
    if items:  # nothing changed: only the attributes 8.x always adds, then id
        assert list(update[0]) == [*EXTRAS_8, "id"]


@pytest.mark.parametrize(("profile", "with_signature"), [("8", False), ("9", True)])
async def test_signature_headers_per_profile(receiver: Receiver, profile: str, with_signature: bool) -> None:
    sim = make_sim(profile)
    [hook] = await register(sim, receiver, "create")
    sim.seed(lastName="Müller")
    await sim.flush_webhooks()
    _, headers, raw = receiver.requests[0]
    secret = hook["secretKey"].encode()
    raw_digest = hmac.new(secret, raw, hashlib.sha256).digest()
    assert base64.b64decode(headers["x-signature"]) == hook["id"].encode() + b":" + raw_digest
    assert ("signature" in headers) is with_signature
    if with_signature:
        hex_digest = hmac.new(secret, raw, hashlib.sha256).hexdigest()
        assert base64.b64decode(headers["signature"]) == f"{hook['id']}:{hex_digest}".encode()


@pytest.mark.parametrize("profile", PROFILES)
async def test_one_job_run_moves_at_most_20_events(receiver: Receiver, profile: str) -> None:
    sim = make_sim(profile)
    await register(sim, receiver, "create", "update")
    ids = [sim.seed(lastName=f"P{i}")["id"] for i in range(15)]
    for rid in ids[:10]:
        sim.user_edit(rid, titel="Dr.")
    first = await sim.flush_webhooks()
    assert [(r.event, r.item_count) for r in first] == [("CBeteiligte.create", 15), ("CBeteiligte.update", 5)]
    assert sim.pending_webhook_events() == 5
    second = await sim.flush_webhooks()
    assert [(r.event, r.item_count) for r in second] == [("CBeteiligte.update", 5)]
    assert [i["id"] for i in sent(receiver, "update")] == ids[:10]
    assert await sim.flush_webhooks() == []


async def test_drain_runs_the_job_until_everything_queued_is_sent(receiver: Receiver) -> None:
    sim = make_sim()
    await register(sim, receiver, "create")
    ids = [sim.seed(lastName=f"P{i}")["id"] for i in range(45)]
    results = await sim.flush_webhooks(drain=True)
    assert [r.item_count for r in results] == [20, 20, 5]
    assert [i["id"] for i in sent(receiver, "create")] == ids
    assert sim.pending_webhook_events() == 0


async def test_up_to_a_mark_leaves_later_events_queued(receiver: Receiver) -> None:
    sim = make_sim()
    await register(sim, receiver, "create")
    early = [sim.seed(lastName=f"E{i}")["id"] for i in range(3)]
    mark = sim.webhook_mark()
    sim.seed(lastName="Later")
    assert [r.item_count for r in await sim.flush_webhooks(up_to=mark)] == [3]
    assert [i["id"] for i in sent(receiver, "create")] == early
    assert sim.webhook_events_waiting(mark) == 0 and sim.pending_webhook_events() == 1


@pytest.mark.parametrize("profile", PROFILES)
async def test_create_event_of_a_record_deleted_before_the_job_ran(receiver: Receiver, profile: str) -> None:
    sim = make_sim(profile)
    await register(sim, receiver, "create", "delete")
    rec = sim.seed(firstName="Kurz", lastName="Lebig")
    sim.user_delete(rec["id"])
    await sim.flush_webhooks()
    assert sent(receiver, "create") == [rec]
    assert sent(receiver, "delete") == [{"id": rec["id"]}]


@pytest.mark.parametrize(("profile", "interval"), [("8", 300.0), ("9", 120.0)])
def test_webhook_job_default_interval(profile: str, interval: float, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = make_sim(profile)
    started: list[float] = []
    monkeypatch.setattr(sim._dispatcher, "start_job", started.append)
    sim.start_webhook_job()
    sim.start_webhook_job(2.0)
    assert started == [interval, 2.0]


async def test_staff_key_writes_fire_webhooks_with_skip_own(receiver: Receiver) -> None:
    sim = make_sim("9")
    await register(sim, receiver, "create")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://espo.test/api/v1",
                                 headers={"X-Api-Key": "staff-key"}) as staff:
        rec = (await staff.post("/CBeteiligte", json={"lastName": "Person"})).json()
    await sim.flush_webhooks()
    assert [i["id"] for i in sent(receiver, "create")] == [rec["id"]]
