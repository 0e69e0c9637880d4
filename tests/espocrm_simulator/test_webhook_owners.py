"""Who may see which webhook, as in EspoCRM (``Acl/Webhook/AccessChecker``, the Webhook select's
mandatory access filter): an admin every one, an API user only those it created (``userId``), with
their ``secretKey``; a person (not an API user) may not use the scope at all (403)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from simulators.espocrm.simulator import EspoCRMSimulator
from tests.espocrm_simulator.conftest import BASE, KEY, Clock

OTHER_API_USER = "6650a0000000000d4"
ADMIN_KEY = "admin-key"
STAFF_KEY = "sandbox-staff-key"


@pytest.fixture
def sim(clock: Clock) -> EspoCRMSimulator:
    return EspoCRMSimulator(api_key=KEY, clock=clock, seed=7, admin_api_key=ADMIN_KEY)


@pytest.fixture
async def client(sim: EspoCRMSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE) as c:
        yield c


async def test_an_api_user_sees_reads_and_deletes_only_its_own_webhooks(
        sim: EspoCRMSimulator, client: httpx.AsyncClient) -> None:
    api = {"X-Api-Key": KEY}
    ours = (await client.post("/Webhook", headers=api, json={"event": "CBeteiligte.create",
                                                             "url": "http://x.test/vmh/webhook/beteiligte/create"})).json()
    theirs = sim.register_webhook("CBeteiligte.update", "http://other.test/hook", False, OTHER_API_USER)
    listed = (await client.get("/Webhook", headers=api)).json()
    assert listed["total"] == 1 and [h["id"] for h in listed["list"]] == [ours["id"]]
    assert listed["list"][0]["secretKey"] == ours["secretKey"]  # readable by its owner
    assert (await client.get(f"/Webhook/{ours['id']}", headers=api)).json()["secretKey"] == ours["secretKey"]
    assert (await client.get(f"/Webhook/{theirs['id']}", headers=api)).status_code == 403
    assert (await client.delete(f"/Webhook/{theirs['id']}", headers=api)).status_code == 403
    assert theirs["id"] in {h["id"] for h in sim.webhooks}

    admin = (await client.get("/Webhook", headers={"X-Api-Key": ADMIN_KEY})).json()
    assert {h["id"] for h in admin["list"]} == {ours["id"], theirs["id"]}


async def test_a_person_may_not_use_webhooks(sim: EspoCRMSimulator, client: httpx.AsyncClient) -> None:
    staff = {"X-Api-Key": STAFF_KEY}
    hook = sim.register_webhook("CBeteiligte.create", "http://x.test/h", True, sim.api_user_id)
    assert (await client.get("/Webhook", headers=staff)).status_code == 403
    assert (await client.get(f"/Webhook/{hook['id']}", headers=staff)).status_code == 403
    assert (await client.post("/Webhook", headers=staff, json={"event": "CBeteiligte.create",
                                                               "url": "http://x.test/h"})).status_code == 403
    assert (await client.delete(f"/Webhook/{hook['id']}", headers=staff)).status_code == 403
    assert len(sim.webhooks) == 1
