"""EspoCRM simulator: the facts of a real 8.1.5 and 9.x (spec §1.1, §1.3), by profile, over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators.espocrm import GERMAN_SALUTATIONS, STOCK_SALUTATIONS, EspoCRMSimulator

KEY, STAFF, ADMIN, SECRET = "api-key", "staff-key", "admin-key", "hmac-secret"
BASE = "http://espo.test/api/v1"
PROFILES = ["8", "9"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: int = 60) -> None:
        self.now += timedelta(seconds=seconds)


def make_sim(profile: str = "9", clock: Clock | None = None, **kw: Any) -> EspoCRMSimulator:
    return EspoCRMSimulator(api_key=KEY, staff_api_key=STAFF, admin_api_key=ADMIN, hmac_secret=SECRET,
                            profile=profile, clock=clock, seed=5, **kw)


def client(sim: EspoCRMSimulator, key: str | None = KEY) -> httpx.AsyncClient:
    headers = {"X-Api-Key": key} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE, headers=headers)


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(profile: str, clock: Clock) -> EspoCRMSimulator:
    return make_sim(profile, clock)


@pytest.fixture
async def http(sim: EspoCRMSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client(sim) as c:
        yield c


def validation_reason(field: str, type_: str) -> str:
    return f"Field validation failure; entityType: CBeteiligte, field: {field}, type: {type_}."


# -- optimistic concurrency control --------------------------------------------------------------
async def test_occ_off_no_version_number_and_a_stale_put_overwrites(
    http: httpx.AsyncClient, sim: EspoCRMSimulator
) -> None:
    rec = sim.seed(lastName="Muster", firstName="Anna")
    sim.user_edit(rec["id"], firstName="Anne")  # a person's edit after our read
    resp = await http.put(f"/CBeteiligte/{rec['id']}", json={"firstName": "Annette"},
                          headers={"X-Version-Number": "1"})
    assert resp.status_code == 200
    assert resp.json()["firstName"] == "Annette" and "versionNumber" not in resp.json()
    read = (await http.get(f"/CBeteiligte/{rec['id']}")).json()
    assert read["firstName"] == "Annette" and "versionNumber" not in read
    listed = (await http.get("/CBeteiligte", params={"select": "lastName,versionNumber"})).json()
    assert listed["list"] == [{"id": rec["id"], "lastName": "Muster"}]
    full = (await http.get("/CBeteiligte")).json()["list"][0]
    assert "versionNumber" not in full


async def test_occ_on_a_stale_put_of_a_changed_field_is_409(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    sim.set_occ(True)
    rec = sim.seed(lastName="Muster", firstName="Anna")
    assert rec["versionNumber"] == 1
    sim.user_edit(rec["id"], firstName="Anne")
    stale = await http.put(f"/CBeteiligte/{rec['id']}", json={"firstName": "Annette", "lastName": "Muster"},
                           headers={"X-Version-Number": "1"})
    assert stale.status_code == 409 and stale.headers["X-Status-Reason"] == "modified"
    assert stale.json() == {"values": {"firstName": "Anne"}, "versionNumber": 2}
    same = await http.put(f"/CBeteiligte/{rec['id']}", json={"lastName": "Muster"},
                          headers={"X-Version-Number": "1"})
    assert same.status_code == 200 and sim.get(rec["id"])["firstName"] == "Anne"  # type: ignore[index]
    version = same.json()["versionNumber"]  # 8.x bumped it for that no-op save, 9.x did not
    assert version == {"8": 3, "9": 2}[str(sim.profile)]
    current = await http.put(f"/CBeteiligte/{rec['id']}", json={"titel": "Dr."},
                             headers={"X-Version-Number": str(version)})
    assert current.status_code == 200 and current.json()["versionNumber"] == version + 1


async def test_occ_switched_on_at_run_time_starts_counting(http: httpx.AsyncClient, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Muster")
    sim.set_occ(True)
    assert (await http.get(f"/CBeteiligte/{rec['id']}")).json()["versionNumber"] == 0  # the new column's default
    saved = await http.put(f"/CBeteiligte/{rec['id']}", json={"titel": "Dr."})
    assert saved.json()["versionNumber"] == 1
    sim.set_occ(False)
    assert "versionNumber" not in (await http.get(f"/CBeteiligte/{rec['id']}")).json()


# -- salutationName is an enum -------------------------------------------------------------------
@pytest.mark.parametrize("value", ["Mr.", "Ms.", "Mrs.", "Dr.", "", None])
async def test_stock_salutation_options_are_accepted(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, value: str | None
) -> None:
    assert sim.salutation_options == STOCK_SALUTATIONS  # the default, as EspoCRM ships it
    resp = await http.post("/CBeteiligte", json={"lastName": "Muster", "salutationName": value})
    assert resp.status_code == 200 and resp.json()["salutationName"] == value


@pytest.mark.parametrize("value", ["Frau", "Herr", "mr.", "Mr", 1])
async def test_other_salutations_are_400(http: httpx.AsyncClient, sim: EspoCRMSimulator, value: Any) -> None:
    rec = sim.seed(lastName="Muster", salutationName="Ms.")
    created = await http.post("/CBeteiligte", json={"lastName": "Neu", "salutationName": value})
    updated = await http.put(f"/CBeteiligte/{rec['id']}", json={"salutationName": value})
    for resp in (created, updated):
        assert resp.status_code == 400
        assert resp.headers["X-Status-Reason"] == validation_reason("salutationName", "valid")
        assert resp.json() == {"messageTranslation": {"label": "validationFailure", "scope": None,
                                                      "data": {"field": "salutationName", "type": "valid"}}}
    assert [r["lastName"] for r in sim.all()] == ["Muster"]
    assert sim.get(rec["id"])["salutationName"] == "Ms."  # type: ignore[index]


async def test_custom_salutation_options(profile: str) -> None:
    sim = make_sim(profile, salutation_options=GERMAN_SALUTATIONS)
    async with client(sim) as http:
        frau = await http.post("/CBeteiligte", json={"lastName": "Muster", "salutationName": "Frau"})
        mister = await http.post("/CBeteiligte", json={"lastName": "Muster", "salutationName": "Mr."})
        sim.set_salutation_options(["", "Herr"])
        now_refused = await http.post("/CBeteiligte", json={"lastName": "Muster", "salutationName": "Frau"})
    assert frau.status_code == 200 and frau.json()["salutationName"] == "Frau"
    assert mister.status_code == 400 and now_refused.status_code == 400
    assert now_refused.headers["X-Status-Reason"] == validation_reason("salutationName", "valid")


# -- a PUT that changes no value -----------------------------------------------------------------
NOOP_BUMPS = {"8": True, "9": False}


async def test_noop_put_bumps_and_queues_only_on_8(
    http: httpx.AsyncClient, sim: EspoCRMSimulator, clock: Clock, profile: str
) -> None:
    sim.set_occ(True)
    await http.post("/Webhook", json={"event": "CBeteiligte.update", "url": "http://hook.test/u", "skipOwn": False})
    rec = sim.seed(lastName="Muster", betnr=5)
    clock.tick()
    resp = await http.put(f"/CBeteiligte/{rec['id']}", json={"lastName": "Muster", "betnr": 5})
    assert resp.status_code == 200
    body = resp.json()
    if NOOP_BUMPS[profile]:
        assert body["modifiedAt"] == "2026-03-01 09:01:00" and body["versionNumber"] == 2
        assert sim.pending_webhook_events() == 1
    else:
        assert body == rec and sim.get(rec["id"]) == rec
        assert sim.pending_webhook_events() == 0


# -- deleted records -----------------------------------------------------------------------------
async def test_deleted_record_is_200_deleted_for_an_admin_and_404_for_others(
    http: httpx.AsyncClient, sim: EspoCRMSimulator
) -> None:
    rec = sim.seed(lastName="Weg")
    assert (await http.delete(f"/CBeteiligte/{rec['id']}")).json() is True
    async with client(sim, ADMIN) as admin, client(sim, STAFF) as staff:
        as_admin = await admin.get(f"/CBeteiligte/{rec['id']}")
        as_staff = await staff.get(f"/CBeteiligte/{rec['id']}")
        admin_list = (await admin.get("/CBeteiligte")).json()
    as_api = await http.get(f"/CBeteiligte/{rec['id']}")
    assert as_admin.status_code == 200
    assert as_admin.json()["deleted"] is True and as_admin.json()["lastName"] == "Weg"
    assert as_api.status_code == 404 and as_staff.status_code == 404
    assert as_api.headers["X-Status-Reason"] == f"Record {rec['id']} does not exist."
    assert admin_list == {"total": 0, "list": []}


# -- list limits ---------------------------------------------------------------------------------
async def test_max_size_above_200_is_403(http: httpx.AsyncClient) -> None:
    assert (await http.get("/CBeteiligte", params={"maxSize": 201})).status_code == 403
    assert (await http.get("/CBeteiligte", params={"maxSize": 200})).status_code == 200


# -- HMAC auth -----------------------------------------------------------------------------------
def hmac_auth(method: str, path: str, *, hex_digest: bool) -> str:
    mac = hmac.new(SECRET.encode(), f"{method} {path}".encode(), hashlib.sha256)
    digest = mac.hexdigest().encode() if hex_digest else mac.digest()
    return base64.b64encode(KEY.encode() + b":" + digest).decode()


@pytest.mark.parametrize(("hex_digest", "expected"), [(False, {"8": 200, "9": 200}), (True, {"8": 401, "9": 200})])
async def test_hmac_digest_formats_per_profile(
    sim: EspoCRMSimulator, profile: str, hex_digest: bool, expected: dict[str, int]
) -> None:
    rec = sim.seed(lastName="Muster")
    path = f"/CBeteiligte/{rec['id']}"
    async with client(sim, key=None) as http:
        resp = await http.get(path, headers={"X-Hmac-Authorization": hmac_auth("GET", path, hex_digest=hex_digest)})
        wrong_path = await http.get(path, headers={"X-Hmac-Authorization": hmac_auth("GET", "/CBeteiligte",
                                                                                        hex_digest=hex_digest)})
    assert resp.status_code == expected[profile]
    assert wrong_path.status_code == 401 and wrong_path.content == b""
