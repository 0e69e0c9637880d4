"""Both simulators answer list pages from an index kept on every write (so that a page costs the
page, not a sort of the table). Paged over HTTP with creates, edits and deletes between the pages, on
clocks that repeat and go back, every page must be exactly what a full sort of every record gives:
EspoCRM's ``createdAt`` order (ties in creation order, also descending) and the same list through
its sorting path (a ``where`` that matches everything); Advoware's ``geaendertAm, betNr`` order,
also from ``geaendertSeit``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from simulators.advoware.simulator import AdvowareSimulator
from simulators.espocrm.simulator import EspoCRMSimulator

ESPO_KEY = "index-key"
ESPO_LIST = "/api/v1/CBeteiligte"
ADVO_LIST = "/api/v1/advonet/Beteiligte"
MATCH_ALL = {"where[0][type]": "isNotNull", "where[0][attribute]": "id"}  # forces the full sort


class Clock:
    """A clock that often stands still (ties) and sometimes goes back (out-of-order stamps)."""

    def __init__(self, rng: random.Random, unit: timedelta) -> None:
        self.now = datetime(2026, 3, 28, 23, 59, 0, tzinfo=UTC)
        self.rng, self.unit = rng, unit

    def __call__(self) -> datetime:
        return self.now

    def step(self) -> None:
        self.now += self.unit * self.rng.choice((0, 0, 0, 1, 1, 3, -2))


# -- EspoCRM -------------------------------------------------------------------------------------
def espo_expected(sim: EspoCRMSimulator, order: str, offset: int, size: int) -> tuple[int, list[str]]:
    records = sim.all()  # creation order; Python's sort is stable also with reverse=True
    ordered = sorted(records, key=lambda r: r["createdAt"], reverse=order != "asc")
    return len(records), [r["id"] for r in ordered[offset: offset + size]]


async def espo_write(http: httpx.AsyncClient, sim: EspoCRMSimulator, rng: random.Random, clock: Clock,
                     kind: str | None = None) -> None:
    clock.step()
    ids = [r["id"] for r in sim.all()]
    kind = kind or (rng.choice(("create", "create", "update", "delete")) if ids else "create")
    if kind == "create":
        resp = await http.post(ESPO_LIST, json={"lastName": f"P{rng.randrange(10**6)}"})
    elif kind == "update":
        resp = await http.put(f"{ESPO_LIST}/{rng.choice(ids)}", json={"lastName": f"U{rng.randrange(10**6)}"})
    else:
        resp = await http.delete(f"{ESPO_LIST}/{rng.choice(ids)}")
    assert resp.status_code == 200, resp.text


async def espo_page(http: httpx.AsyncClient, params: dict[str, Any]) -> dict[str, Any]:
    resp = await http.get(ESPO_LIST, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_espocrm_pages_match_a_full_sort_while_records_change() -> None:
    rng = random.Random(10)
    clock = Clock(rng, timedelta(seconds=1))
    sim = EspoCRMSimulator(api_key=ESPO_KEY, clock=clock, seed=10)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://espo",
                                 headers={"X-Api-Key": ESPO_KEY}) as http:
        for i in range(80):
            await espo_write(http, sim, rng, clock, "create" if i < 40 else None)
        checked = 0
        for order in ("asc", "desc", None):  # None: EspoCRM's default, createdAt descending
            offset, size = 0, 7
            while offset <= len(sim.all()) + size:
                params: dict[str, Any] = {"maxSize": size, "offset": offset}
                if order is not None:
                    params.update(orderBy="createdAt", order=order)
                if rng.random() < 0.5:
                    params["select"] = "lastName,createdAt"
                indexed = await espo_page(http, params)
                assert indexed == await espo_page(http, {**params, **MATCH_ALL})
                assert (indexed["total"], [r["id"] for r in indexed["list"]]) == espo_expected(
                    sim, order or "desc", offset, size)
                checked += len(indexed["list"])
                await espo_write(http, sim, rng, clock)
                offset += size
        assert checked > 100  # the pages were not empty


# -- Advoware ------------------------------------------------------------------------------------
def advo_expected(sim: AdvowareSimulator, since: str | None, skip: int, take: int) -> list[int]:
    rows = sorted(sim.all(), key=lambda r: (r["geaendertAm"], r["betNr"]))
    if since is not None:
        rows = [r for r in rows if datetime.fromisoformat(r["geaendertAm"]) >= datetime.fromisoformat(since)]
    return [r["betNr"] for r in rows[skip: skip + take]]


async def advo_write(http: httpx.AsyncClient, sim: AdvowareSimulator, rng: random.Random, clock: Clock,
                     kind: str | None = None) -> None:
    clock.step()
    numbers = [r["betNr"] for r in sim.all()]
    kind = kind or (rng.choice(("create", "create", "put", "edit", "delete")) if numbers else "create")
    if kind == "create":
        assert (await http.post(ADVO_LIST, json={"name": f"N{rng.randrange(10**6)}"})).status_code == 201
    elif kind == "put":
        row = sim.get(rng.choice(numbers))
        assert row is not None
        resp = await http.put(f"{ADVO_LIST}/{row['betNr']}", json={"name": "Neu", "rowId": row["rowId"]})
        assert resp.status_code == 200, resp.text
    elif kind == "edit":  # a user's edit in Advoware
        sim.edit(rng.choice(numbers), name=f"E{rng.randrange(10**6)}")
    else:
        assert (await http.delete(f"{ADVO_LIST}/{rng.choice(numbers)}")).status_code == 204


async def test_advoware_pages_match_a_full_sort_while_rows_change() -> None:
    rng = random.Random(11)
    clock = Clock(rng, timedelta(milliseconds=1))
    sim = AdvowareSimulator(clock=clock, seed=11)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://advo") as http:
        http.headers["Authorization"] = f"Bearer {sim.issue_token()}"
        for i in range(80):
            await advo_write(http, sim, rng, clock, "create" if i < 40 else None)
        checked = 0
        for _ in range(3):
            stamps = sorted(r["geaendertAm"] for r in sim.all())
            # from no bound, from a stored stamp exactly, and from between two stamps
            for since in (None, rng.choice(stamps), rng.choice(stamps)[:-1] + "5"):
                skip, take = 0, 6
                while skip <= len(sim.all()) + take:
                    params: dict[str, Any] = {"skip": skip, "take": take}
                    if since is not None:
                        params["geaendertSeit"] = since
                    resp = await http.get(ADVO_LIST, params=params)
                    assert resp.status_code == 200, resp.text
                    assert [r["betNr"] for r in resp.json()] == advo_expected(sim, since, skip, take)
                    assert all(r == sim.get(r["betNr"]) for r in resp.json())  # whole, current rows
                    checked += len(resp.json())
                    await advo_write(http, sim, rng, clock)
                    skip += take
        assert checked > 100
