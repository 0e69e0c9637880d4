"""EspoCRM simulator REST contract (spec §1.1), spoken to over HTTP (ASGI transport): auth and records."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from simulators.espocrm.simulator import EspoCRMSimulator
from tests.espocrm_simulator.conftest import BASE, KEY, Clock, hmac_header


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
