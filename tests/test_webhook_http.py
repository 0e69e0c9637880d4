"""The webhook receivers, /health and /metrics over real HTTP, with the whole installation (testbed)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from entrypoints.webhook_intake import MAX_ITEMS
from simulators.espocrm.webhooks import legacy_signature_header, php_json_encode, signature_header
from tests.conftest import SAMPLE
from tests.testbed import Testbed

FOUR_MIB = 4 * 1024 * 1024


@pytest.fixture
async def client(tb: Testbed) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tb.url, timeout=10.0) as c:
        yield c


def hook(tb: Testbed, event: str) -> dict[str, Any]:
    """EspoCRM's registration of the webhook for ``event`` (holds ``id`` and ``secretKey``)."""
    [sub] = [w for w in tb.espo.webhooks if w["event"] == f"CBeteiligte.{event}"]
    assert sub["id"] == tb.webhook_ids[event]
    assert tb.services.settings.webhook_secrets()[sub["id"]] == sub["secretKey"]
    return sub


def signed(tb: Testbed, event: str, raw: bytes, *, legacy: bool = False) -> dict[str, str]:
    sub = hook(tb, event)
    if legacy:
        return {"Content-Type": "application/json",
                "X-Signature": legacy_signature_header(sub["id"], sub["secretKey"], raw)}
    return {"Content-Type": "application/json", "Signature": signature_header(sub["id"], sub["secretKey"], raw)}


async def post(client: httpx.AsyncClient, event: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    resp = await client.post(f"/vmh/webhook/beteiligte/{event}", content=raw, headers=headers)
    assert resp.status_code != 410
    return resp


def create_batch(tb: Testbed, **extra: Any) -> tuple[dict[str, Any], bytes]:
    """A record created in EspoCRM and the create batch EspoCRM would send for it (never flushed)."""
    rec = tb.espo.seed(**{**SAMPLE, **extra})
    return rec, php_json_encode([{k: v for k, v in rec.items() if k not in ("modifiedAt", "versionNumber")}])


def webhook_count(tb: Testbed, event: str, status: int) -> float:
    value = tb.services.metrics.registry.get_sample_value(
        "beteiligte_webhook_requests_total", {"event": event, "status": str(status)})
    return value or 0.0


async def test_real_espocrm_batch_is_accepted_and_synced(tb: Testbed) -> None:
    rec = tb.espo.seed(**SAMPLE)
    results = await tb.flush()
    assert [(r.status, r.outcome) for r in results] == [(200, "done")]
    rec = tb.espo_record(rec["id"])
    assert rec["betnr"] and rec["syncStatus"] == "clean"
    assert tb.advo_record(rec["betnr"])["name"] == SAMPLE["lastName"]
    assert webhook_count(tb, "create", 200) == 1

    tb.espo.user_edit(rec["id"], addressCity="Köln/Deutz")  # PHP escapes both "ö" and "/"
    assert [(r.status, r.outcome) for r in await tb.flush()] == [(200, "done")]
    assert tb.advo_record(rec["betnr"])["ort"] == "Köln/Deutz"


async def test_legacy_x_signature_is_accepted(tb: Testbed, client: httpx.AsyncClient) -> None:
    rec, raw = create_batch(tb)
    resp = await post(client, "create", raw, signed(tb, "create", raw, legacy=True))
    assert resp.status_code == 200
    await tb.host.drain(30)
    assert tb.espo_record(rec["id"])["betnr"]


def _bad_signatures(tb: Testbed, raw: bytes) -> dict[str, dict[str, str]]:
    create, update = hook(tb, "create"), hook(tb, "update")
    digest = hmac.new(create["secretKey"].encode(), raw + b" ", hashlib.sha256).hexdigest()
    return {
        "missing": {},
        "garbage": {"Signature": "garbage!!"},
        "wrong secret": {"Signature": signature_header(create["id"], "0" * 32, raw)},
        "unknown webhook": {"Signature": signature_header("aaaaaaaaaaaaaaaaa", create["secretKey"], raw)},
        "other webhook's id with this secret": {"Signature": signature_header(update["id"], create["secretKey"], raw)},
        "other bytes": {"Signature": base64.b64encode(f"{create['id']}:{digest}".encode()).decode()},
    }


async def test_bad_signature_is_401_and_changes_nothing(tb: Testbed, client: httpx.AsyncClient) -> None:
    rec, raw = create_batch(tb)
    for why, headers in _bad_signatures(tb, raw).items():
        resp = await post(client, "create", raw, headers)
        assert resp.status_code == 401, why
        assert tb.host.queue_depth() == 0, why
    await tb.host.drain(5)
    assert tb.advo.all() == [] and tb.espo_record(rec["id"])["betnr"] is None
    assert webhook_count(tb, "create", 401) == len(_bad_signatures(tb, raw))
    assert tb.host.bus_stats().get("published", 0) == 0


async def test_signature_over_reserialised_json_is_401(tb: Testbed, client: httpx.AsyncClient) -> None:
    rec, raw = create_batch(tb, addressStreet="Hauptstraße 1/2")
    readable = json.dumps(json.loads(raw), ensure_ascii=False).encode()  # same JSON, other bytes
    assert readable != raw and json.loads(readable) == json.loads(raw)
    resp = await post(client, "create", raw, signed(tb, "create", readable))
    assert resp.status_code == 401 and tb.host.queue_depth() == 0
    await tb.host.drain(5)
    assert tb.advo.all() == []


MALFORMED = {"text": b"not json", "object": b"{\"id\": \"x\"}", "numbers": b"[1, 2]",
             "no id": b"[{\"name\": \"x\"}]", "int id": b"[{\"id\": 5}]", "empty": b""}


async def test_malformed_body_is_400_and_nothing_queued(tb: Testbed, client: httpx.AsyncClient) -> None:
    for why, raw in MALFORMED.items():
        resp = await post(client, "update", raw, signed(tb, "update", raw))
        assert resp.status_code == 400 and tb.host.queue_depth() == 0, why
        assert "error" in resp.json()
    assert webhook_count(tb, "update", 400) == len(MALFORMED)


async def test_unsigned_deeply_nested_body_is_401_not_500(tb: Testbed, client: httpx.AsyncClient) -> None:
    resp = await post(client, "create", b"[" * 2000, {})
    assert resp.status_code == 401 and tb.host.queue_depth() == 0


async def test_body_over_4_mib_is_400_and_nothing_queued(tb: Testbed, client: httpx.AsyncClient) -> None:
    rec = tb.espo.seed(**SAMPLE)
    raw = php_json_encode([{"id": rec["id"], "description": "x" * FOUR_MIB}])
    resp = await post(client, "create", raw, signed(tb, "create", raw))
    assert resp.status_code == 400 and tb.host.queue_depth() == 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit must hold while streaming
        for i in range(0, len(raw), 65536):
            yield raw[i:i + 65536]

    resp = await client.post("/vmh/webhook/beteiligte/create", content=chunks(), headers=signed(tb, "create", raw))
    assert resp.status_code == 400 and tb.host.queue_depth() == 0
    await tb.host.drain(5)
    assert tb.advo.all() == []


async def test_queue_unavailable_is_503_and_espocrm_keeps_the_batch(tb: Testbed) -> None:
    tb.espo.seed(**SAMPLE)
    await tb.host.bus.stop()  # the queue cannot take events any more
    results = await tb.flush(1)
    assert [(r.status, r.outcome) for r in results] == [(503, "retry")]
    assert tb.espo.pending_webhook_events() == 1 and len(tb.espo.webhooks) == 3
    assert tb.advo.all() == []


async def test_health(tb: Testbed, client: httpx.AsyncClient) -> None:
    resp = await client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["redis"] is True and body["queue_depth"] == 0 and body["status"] == "ok"


async def test_metrics_is_prometheus_text(tb: Testbed, client: httpx.AsyncClient) -> None:
    await post(client, "delete", b"[]", {})  # one 401 so the counter has a sample
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "# TYPE beteiligte_webhook_requests_total counter" in text
    assert 'beteiligte_webhook_requests_total{event="delete",status="401"} 1.0' in text
    assert all(secret not in text for secret in tb.services.settings.webhook_secrets().values())


NOT_ROUTES = [
    ("GET", "/vmh/webhook/beteiligte/create"),
    ("PUT", "/vmh/webhook/beteiligte/update"),
    ("DELETE", "/vmh/webhook/beteiligte/delete"),
    ("POST", "/vmh/webhook/beteiligte/unknown"),
    ("POST", "/vmh/webhook/beteiligte"),
    ("POST", "/vmh/webhook/beteiligte/create/extra"),
    ("POST", "/vmh/webhook/kontakt/create"),
    ("POST", "/health"),
]


async def test_never_410(tb: Testbed, client: httpx.AsyncClient) -> None:
    for method, path in NOT_ROUTES:
        resp = await client.request(method, path, content=b"[]")
        assert resp.status_code in (404, 405), (method, path, resp.status_code)
    assert tb.host.queue_depth() == 0


async def test_duplicate_delivery_creates_once(tb: Testbed, client: httpx.AsyncClient) -> None:
    rec, raw = create_batch(tb)
    headers = signed(tb, "create", raw)
    assert (await post(client, "create", raw, headers)).status_code == 200
    assert (await post(client, "create", raw, headers)).status_code == 200
    await tb.host.drain(30)
    assert (await post(client, "create", raw, headers)).status_code == 200  # a late retry
    await tb.host.drain(30)
    assert len(tb.advo.all()) == 1
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"] == tb.advo.all()[0]["betNr"]


async def test_concurrent_duplicate_deliveries_create_once(tb: Testbed, client: httpx.AsyncClient) -> None:
    recs = [create_batch(tb, lastName=f"Name{i}") for i in range(3)]
    raw = php_json_encode([item for _, body in recs for item in json.loads(body)])
    headers = signed(tb, "create", raw)
    answers = await asyncio.gather(*(post(client, "create", raw, headers) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    await tb.host.drain(30)
    assert sorted(o["name"] for o in tb.advo.all()) == ["Name0", "Name1", "Name2"]
    assert all(tb.espo_record(r["id"])["syncStatus"] == "clean" for r, _ in recs)


async def test_unsigned_json_is_never_parsed(tb: Testbed, client: httpx.AsyncClient,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature is checked on the raw bytes before anything parses them (host or step)."""
    parses: list[int] = []
    real_loads = json.loads

    def counting_loads(s: Any, **kw: Any) -> Any:
        parses.append(len(s))
        return real_loads(s, **kw)

    monkeypatch.setattr(json, "loads", counting_loads)
    body = b"[" + b'{"id": "0123456789abcdef0", "lastName": "x"},' * 20_000 + b"{}]"
    wrong = {"Signature": signature_header(hook(tb, "create")["id"], "0" * 32, body)}
    statuses = [(await post(client, "create", body, headers)).status_code for headers in ({}, wrong)]
    monkeypatch.undo()
    assert statuses == [401, 401] and parses == []
    assert tb.host.bus_stats()["published"] == 0


def batch_of(n: int) -> bytes:
    return php_json_encode([{"id": f"{i:017x}", "lastName": f"N{i}"} for i in range(n)])


async def test_batches_up_to_the_item_limit_are_queued_in_one_go(tb: Testbed, client: httpx.AsyncClient) -> None:
    for n in (50, MAX_ITEMS):
        raw = batch_of(n)
        resp = await post(client, "update", raw, signed(tb, "update", raw))
        assert resp.status_code == 200 and len(resp.json()["queued"]) == n
    raw = batch_of(MAX_ITEMS + 1)
    resp = await post(client, "update", raw, signed(tb, "update", raw))
    assert resp.status_code == 400 and "items" in resp.json()["error"]
    assert tb.host.bus_stats()["published"] == 50 + MAX_ITEMS


async def test_unknown_ids_in_signed_webhooks_leave_no_keys_in_redis(tb: Testbed, client: httpx.AsyncClient) -> None:
    """Issue 19: a signed delivery for ids EspoCRM does not have (or no longer has) writes no history,
    and a record deleted in EspoCRM leaves no ``edited`` key behind, whichever event arrives."""
    before = {k async for k in tb.services.redis.scan_iter("bsync:*")}
    unknown = [{"id": f"{n:017x}"} for n in range(0xABC00, 0xABC05)]
    for event in ("update", "create"):
        raw = php_json_encode(unknown)
        assert (await post(client, event, raw, signed(tb, event, raw))).status_code == 200
    await tb.host.drain(30)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    tb.espo.user_edit(rec["id"], addressCity="Bonn")  # a person's edit: its time is kept (newest_wins)
    await tb.flush()
    assert await tb.services.redis.exists(f"bsync:edited:{rec['id']}")
    tb.espo.user_delete(rec["id"])
    await tb.flush()
    await tb.host.drain(30)
    keys = {k.decode() async for k in tb.services.redis.scan_iter("bsync:*")} - {k.decode() for k in before}
    assert not [k for k in keys if any(u["id"] in k for u in unknown)], sorted(keys)
    assert not [k for k in keys if k.startswith("bsync:edited:")], sorted(keys)
