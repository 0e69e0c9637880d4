"""EspoCRM simulator: what a client reads to check its setup (``GET /App/user``, ``GET /Metadata``,
``POST /Webhook``), per profile, over HTTP."""

from __future__ import annotations

import pytest

from simulators.espocrm import GERMAN_SALUTATIONS, STOCK_SALUTATIONS
from tests.test_espocrm_profiles import ADMIN, KEY, STAFF, client, make_sim

PROFILES = ["8", "9"]


@pytest.mark.parametrize(
    ("key", "user_type", "is_admin"), [(KEY, "api", False), (STAFF, "regular", False), (ADMIN, "admin", True)]
)
async def test_app_user_names_the_acting_user(key: str, user_type: str, is_admin: bool) -> None:
    sim = make_sim()
    async with client(sim, key) as http:
        resp = await http.get("/App/user")
    assert resp.status_code == 200
    body = resp.json()
    user = body["user"]
    assert user["id"] == {KEY: sim.api_user_id, STAFF: sim.ui_user_id, ADMIN: sim.admin_user_id}[key]
    assert user["type"] == user_type and user["isAdmin"] is is_admin and user["userName"]
    assert body["acl"]["table"]["CBeteiligte"]["edit"] == "all"


async def test_app_user_needs_auth() -> None:
    async with client(make_sim(), "wrong") as http:
        resp = await http.get("/App/user")
    assert resp.status_code == 401


@pytest.mark.parametrize("profile", PROFILES)
async def test_metadata_describes_every_record_attribute(profile: str) -> None:
    sim = make_sim(profile, occ=True)
    rec = sim.seed(lastName="Muster")
    async with client(sim) as http:
        resp = await http.get("/Metadata")
    assert resp.status_code == 200
    defs = resp.json()["entityDefs"]["CBeteiligte"]
    fields = defs["fields"]
    for attribute in rec:
        if attribute == "versionNumber":  # an attribute of OCC, no field
            continue
        # createdById/modifiedById are attributes of the link fields createdBy/modifiedBy
        field = attribute if attribute in fields else attribute.removesuffix("Id")
        assert isinstance(fields[field]["type"], str), attribute
    assert fields["salutationName"] == {"type": "enum", "options": list(STOCK_SALUTATIONS)}
    assert fields["syncStatus"]["type"] == "enum"
    assert fields["syncStatus"]["options"] == ["pending_sync", "syncing", "clean", "failed", "permanently_failed"]
    assert fields["dateOfBirth"]["type"] == "date" and fields["betnr"]["type"] == "int"
    assert fields["phoneNumber"]["type"] == "phone" and fields["advowareLastSync"]["type"] == "datetime"
    assert defs["optimisticConcurrencyControl"] is True


async def test_metadata_follows_the_run_time_settings() -> None:
    sim = make_sim(salutation_options=GERMAN_SALUTATIONS)
    async with client(sim) as http:
        before = (await http.get("/Metadata")).json()["entityDefs"]["CBeteiligte"]
        sim.set_occ(True)
        sim.set_salutation_options(["", "Herr", "Frau"])
        after = (await http.get("/Metadata", params={"key": "entityDefs.CBeteiligte"})).json()
    assert before["optimisticConcurrencyControl"] is False
    assert before["fields"]["salutationName"]["options"] == list(GERMAN_SALUTATIONS)
    assert after["optimisticConcurrencyControl"] is True
    assert after["fields"]["salutationName"]["options"] == ["", "Herr", "Frau"]


@pytest.mark.parametrize(
    ("profile", "status", "stored_skip_own"), [("8", 201, None), ("9", 200, True)]
)
async def test_webhook_registration_per_profile(profile: str, status: int, stored_skip_own: bool | None) -> None:
    sim = make_sim(profile)
    async with client(sim) as http:
        resp = await http.post("/Webhook", json={"event": "CBeteiligte.update", "url": "http://x.test/u",
                                                 "skipOwn": True})
        listed = (await http.get("/Webhook")).json()["list"]
    assert resp.status_code == status
    assert resp.json().get("skipOwn") is stored_skip_own  # 8.x has no such field: dropped
    assert [w.get("skipOwn") for w in listed] == [stored_skip_own]
    assert resp.json()["userId"] == sim.api_user_id
