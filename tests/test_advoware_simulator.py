"""The Advoware simulator over HTTP (in-process ASGI transport): spec §2 behaviour."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from simulators.advoware.auth import expected_signature
from simulators.advoware.simulator import AdvowareSimulator

BASE = "/api/v1/advonet/Beteiligte"
VECTOR_SIG = "o7rz9KmoXZs550HfzO6ffiG17XwiPmlBHlksUYKZ3jcfolELow51Fw5KlrQqCK5y41aIValDjrh1iQ2GZ2WtqQ=="


def token_body(sim: AdvowareSimulator, **override: Any) -> dict[str, Any]:
    c = sim.credentials
    nonce, stamp = str(uuid.uuid4()), "2026-11-29T10:04:26.7955547Z"
    body: dict[str, Any] = {
        "AppID": c.app_id, "Kanzlei": c.kanzlei, "Database": c.database, "User": c.user, "Role": 2,
        "Product": 64, "Password": c.password, "Nonce": nonce, "RequestTimeStamp": stamp,
        "HMAC512Signature": expected_signature(c.app_id, c.api_key_b64, nonce, stamp),
    }
    body.update(override)
    return body


@pytest.fixture
def sim() -> AdvowareSimulator:
    return AdvowareSimulator(seed=1)


@pytest.fixture
async def http(sim: AdvowareSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as c:
        token = (await c.post("/api/v1/Token", json=token_body(sim))).json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def test_signature_matches_spec_test_vector() -> None:
    key = base64.b64encode(b"test-secret-key").decode()
    assert expected_signature("app-123", key, "nonce-abc", "2026-08-30T00:00:00.000Z") == VECTOR_SIG


async def test_token_issued_for_valid_request(sim: AdvowareSimulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as c:
        r = await c.post("/api/v1/Token", json=token_body(sim))
    assert r.status_code == 200
    data = r.json()
    assert data["token_type"] == "bearer" and data["expires_in"] == 3600
    assert data["access_token"] and data["refresh_token"] and data["expiration_utc"].endswith("Z")


@pytest.mark.parametrize(
    "override",
    [{"HMAC512Signature": VECTOR_SIG}, {"Password": "wrong"}, {"Kanzlei": "other"}, {"Product": 1},
     {"Nonce": "tampered-after-signing"}],
)
async def test_token_refused_with_401(sim: AdvowareSimulator, override: dict[str, Any]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as c:
        r = await c.post("/api/v1/Token", json=token_body(sim, **override))
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 401


async def test_api_requires_valid_bearer(sim: AdvowareSimulator, http: httpx.AsyncClient) -> None:
    row = sim.seed(name="Muster")
    assert (await http.get(f"{BASE}/{row['betNr']}")).status_code == 200
    unknown = await http.get(f"{BASE}/{row['betNr']}", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    sim.expire_tokens()
    r = await http.get(f"{BASE}/{row['betNr']}")
    assert r.status_code == 401 and r.json()["title"] == "Unauthorized"


async def test_create_get_delete(sim: AdvowareSimulator, http: httpx.AsyncClient) -> None:
    r = await http.post(BASE, json={"name": "Muster", "vorname": "Max", "betNr": 5, "rowId": "x"})
    assert r.status_code == 201
    created = r.json()
    assert created["betNr"] != 5 and created["rowId"] != "x"
    assert len(base64.b64decode(created["rowId"])) == 8
    assert created["angelegtAm"] == created["geaendertAm"]
    assert created["titel"] is None and created["kurzname"] is None
    got = await http.get(f"{BASE}/{created['betNr']}")
    assert got.json() == created
    assert (await http.delete(f"{BASE}/{created['betNr']}")).status_code == 204
    missing = await http.get(f"{BASE}/{created['betNr']}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert set(missing.json()) == {"type", "title", "status", "detail"}


async def test_post_without_rowid_switch(sim: AdvowareSimulator, http: httpx.AsyncClient) -> None:
    sim.set_post_returns_rowid(False)
    created = (await http.post(BASE, json={"name": "Muster"})).json()
    assert "rowId" not in created
    assert sim.get(created["betNr"])["rowId"]  # type: ignore[index]


async def test_put_is_full_replacement_and_answers_array(sim: AdvowareSimulator,
                                                         http: httpx.AsyncClient) -> None:
    row = sim.seed(name="Muster", vorname="Max", kurzname="MUSTER", email="m@example.org")
    r = await http.put(f"{BASE}/{row['betNr']}", json={"name": "Neu", "rowId": row["rowId"],
                                                        "email": "n@example.org"})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    updated = body[0]
    assert updated["name"] == "Neu" and updated["email"] == "n@example.org"
    assert updated["vorname"] is None and updated["kurzname"] is None  # missing writable -> null
    assert updated["rowId"] != row["rowId"]
    assert updated["angelegtAm"] == row["angelegtAm"]
    assert sim.get(row["betNr"]) == updated


async def test_put_needs_current_rowid(sim: AdvowareSimulator, http: httpx.AsyncClient) -> None:
    row = sim.seed(name="Muster")
    edited = sim.edit(row["betNr"], vorname="Erika")
    assert edited["rowId"] != row["rowId"] and edited["name"] == "Muster"
    stale = await http.put(f"{BASE}/{row['betNr']}", json={"name": "X", "rowId": row["rowId"]})
    assert stale.status_code == 409 and stale.json()["status"] == 409
    without = await http.put(f"{BASE}/{row['betNr']}", json={"name": "X"})
    assert without.status_code == 409
    assert sim.get(row["betNr"]) == edited
    ok = await http.put(f"{BASE}/{row['betNr']}", json={"name": "X", "rowId": edited["rowId"]})
    assert ok.status_code == 200
    assert (await http.put(f"{BASE}/999999", json={"name": "X", "rowId": "x"})).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"vorname": "ohne Name"}, {"name": None}, {"name": ""}, {"name": "A", "plz": 10115},
     {"name": "A", "geburtsdatum": "1980-04-12"}, {"name": "A", "geburtsdatum": "1980-02-30T00:00:00"},
     ["not", "an", "object"]],
)
async def test_validation_answers_400(sim: AdvowareSimulator, http: httpx.AsyncClient, body: Any) -> None:
    r = await http.post(BASE, json=body)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"]
    assert sim.all() == []


async def test_delete_referenced_is_409(sim: AdvowareSimulator, http: httpx.AsyncClient) -> None:
    row = sim.seed(name="Akte-Partei")
    sim.set_referenced(row["betNr"], True)
    assert (await http.delete(f"{BASE}/{row['betNr']}")).status_code == 409
    assert sim.get(row["betNr"]) is not None
    sim.set_referenced(row["betNr"], False)
    assert (await http.delete(f"{BASE}/{row['betNr']}")).status_code == 204


async def test_list_orders_pages_and_limits() -> None:
    now = [datetime(2026, 1, 10, 9, 0, tzinfo=UTC)]
    sim = AdvowareSimulator(clock=lambda: now[0])
    rows = []
    for minute in (5, 1, 3, 3, 2):
        now[0] = datetime(2026, 1, 10, 9, minute, tzinfo=UTC)
        rows.append(sim.seed(name=f"N{minute}"))
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as c:
        c.headers["Authorization"] = f"Bearer {sim.issue_token()}"
        everything = (await c.get(BASE, params={"skip": 0, "take": 200})).json()
        expected = [rows[i]["betNr"] for i in (1, 4, 2, 3, 0)]  # by geaendertAm, ties by betNr
        assert [r["betNr"] for r in everything] == expected
        page = (await c.get(BASE, params={"skip": 2, "take": 2})).json()
        assert [r["betNr"] for r in page] == expected[2:4]
        since = (await c.get(BASE, params={"geaendertSeit": "2026-01-10T10:03:00.000"})).json()
        assert [r["betNr"] for r in since] == expected[2:]  # inclusive, Berlin local time
        assert (await c.get(BASE, params={"take": 201})).status_code == 400
        assert (await c.get(BASE, params={"take": "x"})).status_code == 400
        sim.set_list_endpoint(False)
        assert (await c.get(BASE)).status_code == 404
        assert (await c.post(BASE, json={"name": "still works"})).status_code == 201


@pytest.mark.parametrize(
    ("instant", "local"),
    [(datetime(2026, 7, 1, 10, 0, 0, 123456, tzinfo=UTC), "2026-07-01T12:00:00.123"),  # CEST
     (datetime(2026, 1, 15, 23, 30, 5, 9000, tzinfo=UTC), "2026-01-16T00:30:05.009")],  # CET
)
async def test_timestamps_are_berlin_local_time(instant: datetime, local: str) -> None:
    sim = AdvowareSimulator(clock=lambda: instant)
    row = sim.seed(name="Zeit")
    assert row["angelegtAm"] == row["geaendertAm"] == local
    assert sim.edit(row["betNr"], name="Zeit2")["geaendertAm"] == local


async def test_injected_fault_is_problem_json_and_counted(sim: AdvowareSimulator,
                                                          http: httpx.AsyncClient) -> None:
    sim.faults.add(method="GET", path=r"/Beteiligte/\d+$", status=503, retry_after=7)
    r = await http.get(f"{BASE}/123")
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 503
    assert sim.calls.snapshot()["GET /api/v1/advonet/Beteiligte/{id}"] == 1
    assert sim.calls.snapshot()["POST /api/v1/Token"] == 1


def test_direct_methods_are_thread_safe() -> None:
    sim = AdvowareSimulator()
    threads = [threading.Thread(target=lambda: [sim.seed(name="T") for _ in range(50)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = sim.all()
    assert len({r["betNr"] for r in rows}) == 200 and len({r["rowId"] for r in rows}) == 200
    sim.remove(rows[0]["betNr"])
    assert sim.get(rows[0]["betNr"]) is None
    with pytest.raises(KeyError):
        sim.edit(rows[0]["betNr"], name="gone")
    with pytest.raises(ValueError):
        sim.seed(vorname="no name")
