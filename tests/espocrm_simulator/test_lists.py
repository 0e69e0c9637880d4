"""EspoCRM simulator REST contract (spec §1.1), spoken to over HTTP (ASGI transport): lists, notes,
notifications, webhook registration, call counters."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from simulators.espocrm.simulator import EspoCRMSimulator
from tests.espocrm_simulator.conftest import Clock


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
