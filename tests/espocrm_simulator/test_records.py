"""EspoCRM simulator REST contract (spec §1.1), spoken to over HTTP (ASGI transport)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators.espocrm.simulator import EspoCRMSimulator

KEY = "test-key"
SECRET = "test-hmac-secret"
BASE = "http://espo.test/api/v1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: int = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> EspoCRMSimulator:
    return EspoCRMSimulator(api_key=KEY, hmac_secret=SECRET, clock=clock, seed=7)


@pytest.fixture
async def http(sim: EspoCRMSimulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"X-Api-Key": KEY}) as c:
        yield c


def hmac_header(method: str, path: str, key: str = KEY, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{method} {path}".encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(f"{key}:{digest}".encode()).decode()


# -- auth ----------------------------------------------------------------------------------------
async def test_api_key_and_hmac_authenticate(sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Muster")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE) as c:
        ok_key = await c.get(f"/CBeteiligte/{rec['id']}", headers={"X-Api-Key": KEY})
        signed = hmac_header("GET", f"/CBeteiligte/{rec['id']}")
        ok_hmac = await c.get(
            f"/CBeteiligte/{rec['id']}?select=lastName", headers={"X-Hmac-Authorization": signed}
        )
    assert ok_key.status_code == 200 and ok_key.json()["lastName"] == "Muster"
    assert ok_hmac.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Api-Key": "wrong"},
        {"X-Hmac-Authorization": hmac_header("GET", "/CBeteiligte", secret="other")},
        {"X-Hmac-Authorization": hmac_header("POST", "/CBeteiligte")},  # signed for another method
        {"X-Hmac-Authorization": hmac_header("GET", "/CBeteiligte", key="wrong")},
        {"X-Hmac-Authorization": "not base64!"},
    ],
)
async def test_bad_auth_is_401_with_empty_body(sim: EspoCRMSimulator, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE) as c:
        resp = await c.get("/CBeteiligte", headers=headers)
    assert resp.status_code == 401
    assert resp.content == b""


# -- CRUD ----------------------------------------------------------------------------------------
async def test_create_returns_200_with_full_record(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    resp = await http.post(
        "/CBeteiligte",
        json={
            "firstName": "Anna",
            "lastName": "Müller",
            "dateOfBirth": "1980-04-12",
            "id": "ffffffffffffffff0",
            "versionNumber": 99,
            "noSuchField": 1,
        },
    )
    assert resp.status_code == 200
    rec = resp.json()
    assert re.fullmatch(r"[0-9a-f]{17}", rec["id"]) and rec["id"] != "ffffffffffffffff0"
    assert rec["name"] == "Anna Müller"
    assert "versionNumber" not in rec  # optimistic concurrency control is off by default
    assert rec["syncStatus"] == "pending_sync" and rec["syncRetryCount"] == 0 and rec["betnr"] is None
    assert rec["createdAt"] == rec["modifiedAt"] == "2026-03-01 09:00:00"
    assert rec["createdById"] == rec["modifiedById"] == sim.api_user_id
    assert "noSuchField" not in rec
    assert sim.get(rec["id"]) == rec


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_partial_update_returns_full_record(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, clock: Clock, method: str
) -> None:
    rec = sim.seed(firstName="Anna", lastName="Muster", description="keep me", beteiligtenRolle="Mandant")
    clock.tick(60)
    resp = await http.request(method, f"/CBeteiligte/{rec['id']}", json={"addressCity": "Köln"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["addressCity"] == "Köln"
    assert body["description"] == "keep me" and body["beteiligtenRolle"] == "Mandant"
    assert body["firstName"] == "Anna"
    assert body["modifiedAt"] == "2026-03-01 09:01:00" and body["createdAt"] == "2026-03-01 09:00:00"
    assert body["modifiedById"] == sim.api_user_id


async def test_noop_write_changes_nothing(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, clock: Clock
) -> None:
    rec = sim.seed(lastName="Muster", betnr=5)
    clock.tick(60)
    resp = await http.put(f"/CBeteiligte/{rec['id']}", json={"lastName": "Muster", "betnr": 5})
    assert resp.status_code == 200
    assert resp.json() == rec
    assert sim.get(rec["id"]) == rec


async def test_delete_then_404(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Weg")
    resp = await http.delete(f"/CBeteiligte/{rec['id']}")
    assert resp.status_code == 200 and resp.json() is True
    again = await http.get(f"/CBeteiligte/{rec['id']}")
    assert again.status_code == 404
    assert again.headers["X-Status-Reason"] == f"Record {rec['id']} does not exist."
    assert (await http.delete(f"/CBeteiligte/{rec['id']}")).status_code == 404
    assert (await http.put(f"/CBeteiligte/{rec['id']}", json={"titel": "Dr."})).status_code == 404


# -- validation ----------------------------------------------------------------------------------
def _reason(field: str, type_: str) -> str:
    return f"Field validation failure; entityType: CBeteiligte, field: {field}, type: {type_}."


@pytest.mark.parametrize(
    ("body", "field", "type_"),
    [
        ({"firstName": "Ohne"}, "lastName", "required"),
        ({"lastName": None}, "lastName", "required"),
        ({"lastName": ""}, "lastName", "required"),
        ({"lastName": "X", "dateOfBirth": "12.04.1980"}, "dateOfBirth", "valid"),
        ({"lastName": "X", "dateOfBirth": "1980-02-30"}, "dateOfBirth", "valid"),
        ({"lastName": "X", "advowareLastSync": "2026-01-01T10:00:00Z"}, "advowareLastSync", "valid"),
        ({"lastName": "X", "syncStatus": "done"}, "syncStatus", "valid"),
        ({"lastName": "X", "betnr": "12"}, "betnr", "valid"),
        ({"lastName": "X", "syncRetryCount": 1.5}, "syncRetryCount", "valid"),
    ],
)
async def test_create_validation_400(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, body: dict[str, Any], field: str, type_: str
) -> None:
    resp = await http.post("/CBeteiligte", json=body)
    assert resp.status_code == 400
    assert resp.headers["X-Status-Reason"] == _reason(field, type_)
    assert resp.json() == {
        "messageTranslation": {
            "label": "validationFailure",
            "scope": None,
            "data": {"field": field, "type": type_},
        }
    }
    assert sim.all() == []


@pytest.mark.parametrize("value", [None, ""])
async def test_update_clearing_lastname_is_400_and_changes_nothing(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, value: str | None
) -> None:
    rec = sim.seed(lastName="Muster")
    resp = await http.patch(f"/CBeteiligte/{rec['id']}", json={"lastName": value, "titel": "Dr."})
    assert resp.status_code == 400
    assert resp.headers["X-Status-Reason"] == _reason("lastName", "required")
    assert sim.get(rec["id"]) == rec


async def test_valid_nulls_and_datetime_accepted(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Muster", dateOfBirth="1990-01-01", betnr=3)
    resp = await http.put(
        f"/CBeteiligte/{rec['id']}",
        json={
            "dateOfBirth": None,
            "betnr": None,
            "advowareLastSync": "2026-03-01 08:00:00",
            "syncStatus": "clean",
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["dateOfBirth"] is None and body["betnr"] is None
    assert body["advowareLastSync"] == "2026-03-01 08:00:00" and body["syncStatus"] == "clean"


# -- optimistic concurrency ----------------------------------------------------------------------
async def test_stale_version_conflicting_field_is_409(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    sim.set_occ(True)
    rec = sim.seed(lastName="Muster", firstName="Anna")
    sim.user_edit(rec["id"], firstName="Anne")  # now version 2
    resp = await http.put(
        f"/CBeteiligte/{rec['id']}",
        json={"firstName": "Annette", "lastName": "Muster"},
        headers={"X-Version-Number": "1"},
    )
    assert resp.status_code == 409
    assert resp.headers["X-Status-Reason"] == "modified"
    assert resp.json() == {"values": {"firstName": "Anne"}, "versionNumber": 2}
    assert sim.get(rec["id"])["firstName"] == "Anne"  # type: ignore[index]


async def test_stale_version_without_differing_field_passes(
    http: httpx.AsyncClient, sim: EspoCRMSimulator
) -> None:
    sim.set_occ(True)
    rec = sim.seed(lastName="Muster")
    sim.user_edit(rec["id"], titel="Dr.")
    same = await http.put(
        f"/CBeteiligte/{rec['id']}", json={"lastName": "Muster"}, headers={"X-Version-Number": "1"}
    )
    current = await http.put(
        f"/CBeteiligte/{rec['id']}", json={"lastName": "Neu"}, headers={"X-Version-Number": "2"}
    )
    assert same.status_code == 200 and same.json()["versionNumber"] == 2
    assert current.status_code == 200 and current.json()["versionNumber"] == 3


# -- list ----------------------------------------------------------------------------------------
@pytest.fixture
def people(sim: EspoCRMSimulator, clock: Clock) -> dict[str, dict[str, Any]]:
    out = {}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("Adler", {"betnr": 1, "syncStatus": "clean", "advowareLastSync": "2026-02-01 10:00:00"}),
        ("Berg", {"betnr": 2, "syncStatus": "failed", "syncRetryCount": 2}),
        ("Christ", {"syncStatus": "pending_sync"}),
        ("Dorn", {"betnr": 4, "syncStatus": "clean", "advowareLastSync": "2026-02-20 10:00:00"}),
    ]
    for name, extra in cases:
        out[name] = sim.seed(lastName=name, **extra)
        clock.tick(10)
    return out


WHERE_CASES: list[tuple[str, list[str]]] = [
    ("where[0][type]=equals&where[0][attribute]=syncStatus&where[0][value]=clean", ["Adler", "Dorn"]),
    ("where[0][type]=notEquals&where[0][attribute]=syncStatus&where[0][value]=clean", ["Berg", "Christ"]),
    ("where[0][type]=equals&where[0][attribute]=betnr&where[0][value]=2", ["Berg"]),
    (
        "where[0][type]=in&where[0][attribute]=lastName&where[0][value][]=Berg&where[0][value][]=Dorn",
        ["Berg", "Dorn"],
    ),
    ("where[0][type]=notIn&where[0][attribute]=betnr&where[0][value][0]=1&where[0][value][1]=2", ["Dorn"]),
    ("where[0][type]=isNull&where[0][attribute]=betnr", ["Christ"]),
    ("where[0][type]=isNotNull&where[0][attribute]=betnr", ["Adler", "Berg", "Dorn"]),
    (
        "where[0][type]=after&where[0][attribute]=advowareLastSync&where[0][value]=2026-02-10 00:00:00",
        ["Dorn"],
    ),
    (
        "where[0][type]=before&where[0][attribute]=createdAt&where[0][value]=2026-03-01 09:00:15",
        ["Adler", "Berg"],
    ),
    ("where[0][type]=greaterThan&where[0][attribute]=syncRetryCount&where[0][value]=0", ["Berg"]),
    ("where[0][type]=lessThan&where[0][attribute]=betnr&where[0][value]=4", ["Adler", "Berg"]),
    (
        "where[0][type]=or&where[0][value][0][type]=isNull&where[0][value][0][attribute]=betnr"
        "&where[0][value][1][type]=equals&where[0][value][1][attribute]=syncStatus&where[0][value][1][value]=failed",
        ["Berg", "Christ"],
    ),
    (
        "where[0][type]=and&where[0][value][0][type]=isNotNull&where[0][value][0][attribute]=betnr"
        "&where[0][value][1][type]=or&where[0][value][1][value][0][type]=equals"
        "&where[0][value][1][value][0][attribute]=lastName&where[0][value][1][value][0][value]=Dorn"
        "&where[0][value][1][value][1][type]=equals&where[0][value][1][value][1][attribute]=lastName"
        "&where[0][value][1][value][1][value]=Christ",
        ["Dorn"],
    ),
    (
        "where[0][type]=isNotNull&where[0][attribute]=betnr"
        "&where[1][type]=equals&where[1][attribute]=syncStatus&where[1][value]=clean",
        ["Adler", "Dorn"],
    ),
]


@pytest.mark.parametrize(("query", "expected"), WHERE_CASES)
async def test_list_where(
    http: httpx.AsyncClient, people: dict[str, Any], query: str, expected: list[str]
) -> None:
    resp = await http.get(f"/CBeteiligte?orderBy=lastName&order=asc&maxSize=200&{query}")
    assert resp.status_code == 200, resp.headers.get("X-Status-Reason")
    body = resp.json()
    assert [r["lastName"] for r in body["list"]] == expected
    assert body["total"] == len(expected)


async def test_list_paging_order_and_select(http: httpx.AsyncClient, people: dict[str, Any]) -> None:
    page = await http.get(
        "/CBeteiligte",
        params={
            "maxSize": 2,
            "offset": 1,
            "orderBy": "lastName",
            "order": "desc",
            "select": "lastName,betnr",
        },
    )
    body = page.json()
    assert body["total"] == 4
    assert body["list"] == [
        {"id": people["Christ"]["id"], "lastName": "Christ", "betnr": None},
        {"id": people["Berg"]["id"], "lastName": "Berg", "betnr": 2},
    ]


async def test_list_bad_requests(http: httpx.AsyncClient, people: dict[str, Any]) -> None:
    too_big = await http.get("/CBeteiligte", params={"maxSize": 201})
    bad_type = await http.get(
        "/CBeteiligte?where[0][type]=like&where[0][attribute]=lastName&where[0][value]=A"
    )
    bad_attr = await http.get("/CBeteiligte?where[0][type]=isNull&where[0][attribute]=nope")
    assert too_big.status_code == 403
    assert bad_type.status_code == 400 and bad_attr.status_code == 400


# -- notes, notifications, webhooks --------------------------------------------------------------
async def test_note_post_is_stored_and_listed(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Muster")
    other = sim.seed(lastName="Andere")
    resp = await http.post(
        "/Note",
        json={"type": "Post", "parentType": "CBeteiligte", "parentId": rec["id"], "post": "**Sync failed**"},
    )
    await http.post(
        "/Note", json={"type": "Post", "parentType": "CBeteiligte", "parentId": other["id"], "post": "other"}
    )
    assert resp.status_code == 200
    query = f"where[0][type]=equals&where[0][attribute]=parentId&where[0][value]={rec['id']}"
    listed = await http.get(f"/Note?{query}")
    assert [n["post"] for n in listed.json()["list"]] == ["**Sync failed**"]
    assert [n["id"] for n in sim.notes_for(rec["id"])] == [resp.json()["id"]]
    missing = await http.post(
        "/Note",
        json={"type": "Post", "parentType": "CBeteiligte", "parentId": "00000000000000000", "post": "x"},
    )
    assert missing.status_code == 404


async def test_notification_is_forbidden(http: httpx.AsyncClient) -> None:
    resp = await http.post("/Notification", json={"type": "Message", "message": "hi"})
    assert resp.status_code == 403


async def test_webhook_registration(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    resp = await http.post(
        "/Webhook",
        json={
            "event": "CBeteiligte.update",
            "url": "http://x.test/vmh/webhook/beteiligte/update",
            "skipOwn": True,
        },
    )
    assert resp.status_code == 200
    hook = resp.json()
    assert re.fullmatch(r"[0-9a-f]{32}", hook["secretKey"])
    assert hook["event"] == "CBeteiligte.update" and hook["skipOwn"] is True
    assert hook["userId"] == sim.api_user_id
    assert [w["id"] for w in sim.webhooks] == [hook["id"]]
    bad = await http.post("/Webhook", json={"event": "Account.create", "url": "http://x.test/"})
    assert bad.status_code == 400


async def test_requests_are_counted(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Muster")
    await http.get(f"/CBeteiligte/{rec['id']}")
    assert sim.calls.snapshot() == {"GET /api/v1/CBeteiligte/{id}": 1}
