"""The Advoware client and the simulator on each shipped wire profile (issue 21): the wire really is the
profile's (names, date formats, answer shapes, paging parameters), and the client hands the service the
same internal records whatever the profile."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest

from adapters.advoware_api import AdvowareAPI
from adapters.errors import BadResponseError
from config.advoware_profile import SHIPPED, AdvowareProfile, PutAnswer, load_profile
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle
from tests.fakes.backends import CurrentApp
from tests.test_advoware_api import make_api

PROFILES = ("default", "pascal-object", "no-list", str(Path(__file__).resolve().parent / "advoware_profiles" /
                                                      "wrapped-location.toml"))
BORN = "1980-04-12T00:00:00"



@pytest.fixture(params=PROFILES)
def sim(request: pytest.FixtureRequest, app_server: tuple[ServerHandle, CurrentApp]) -> AdvowareSimulator:
    ticks = itertools.count()
    start = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)

    def clock() -> datetime:
        return start + timedelta(milliseconds=next(ticks))

    simulator = AdvowareSimulator(seed=3, clock=clock, profile=load_profile(request.param))
    app_server[1].target = simulator.app
    return simulator


@pytest.fixture
async def api(sim: AdvowareSimulator, app_server: tuple[ServerHandle, CurrentApp]) -> AsyncIterator[AdvowareAPI]:
    client = make_api(sim, app_server[0].url, timeout=2.0, profile=sim.profile)
    yield client
    await client.aclose()


def raw_get(sim: AdvowareSimulator, url: str, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {sim.issue_token()}"}
    return httpx.get(f"{url}/{path}", headers=headers, timeout=2.0)


def wire_counts(sim: AdvowareSimulator) -> dict[str, int]:
    return {k: v for k, v in sim.calls.snapshot().items() if not k.endswith("/Token")}


async def test_the_wire_is_the_profiles_and_the_service_sees_internal_records(
        sim: AdvowareSimulator, api: AdvowareAPI, app_server: tuple[ServerHandle, CurrentApp]) -> None:
    p: AdvowareProfile = sim.profile
    created = await api.create_beteiligter({"name": "Muster", "geburtsdatum": BORN,
                                            "handelsRegisterNummer": "HRB 1"})
    stored = sim.get(created["betNr"])
    assert created == stored and stored is not None and stored["geburtsdatum"] == BORN
    on_wire = raw_get(sim, app_server[0].url, f"{p.resource_path}/{created['betNr']}").json()
    assert set(on_wire) == {p.wire_name(k) for k in stored}  # every field in the profile's names
    assert p.geburtsdatum_format.matches(on_wire[p.wire_name("geburtsdatum")], api._zone)
    assert p.geaendert_am_format.matches(on_wire[p.wire_name("geaendertAm")], api._zone)
    assert on_wire[p.wire_name("handelsRegisterNummer")] == "HRB 1"
    sim.calls.reset()
    updated = await api.update_beteiligter(created["betNr"], {**created, "ort": "Köln"})
    assert updated == sim.get(created["betNr"]) and updated["ort"] == "Köln" and updated["geburtsdatum"] == BORN
    item = f"{'/' + p.resource_path}/{{id}}"
    extra_get = {f"GET {item}": 1} if p.put_answer == PutAnswer.NONE else {}
    assert wire_counts(sim) == {f"PUT {item}": 1, **extra_get}


async def test_list_pages_use_the_profiles_parameters_and_split_above_its_max_take(
        sim: AdvowareSimulator, api: AdvowareAPI) -> None:
    p = sim.profile
    if not p.has_list:
        assert await api.supports_list() is False and wire_counts(sim) == {}  # known absent: no call
        return
    rows = [sim.seed(name=f"N{i}") for i in range(p.list_max_take + 5)]
    sim.calls.reset()
    got = await api.list_beteiligte(take=p.list_max_take + 50)
    assert [r["betNr"] for r in got] == [r["betNr"] for r in rows]
    assert wire_counts(sim) == {f"GET /{p.list_path}": 2}  # one full wire page and the rest
    since = datetime.fromisoformat(rows[-1]["geaendertAm"]).replace(tzinfo=api._zone)
    assert [r["betNr"] for r in await api.list_beteiligte(geaendert_seit=since)] == [rows[-1]["betNr"]]


async def test_a_put_answer_of_another_shape_is_a_bad_response_naming_the_profile_key(
        tmp_path: Path, app_server: tuple[ServerHandle, CurrentApp]) -> None:
    """The write landed; the sync is told which key is wrong (doctor cannot probe a PUT without writing)."""
    other = tmp_path / "object-put.toml"
    other.write_text((SHIPPED / "default.toml").read_text().replace('put_answer = "array"', 'put_answer = "object"'))
    sim = AdvowareSimulator(seed=3, profile=load_profile(str(other)))
    app_server[1].target = sim.app
    row = sim.seed(name="Muster")
    api = make_api(sim, app_server[0].url, timeout=2.0, profile=load_profile("default"))
    try:
        with pytest.raises(BadResponseError) as caught:
            await api.update_beteiligter(row["betNr"], {"name": "Neu", "rowId": row["rowId"]})
    finally:
        await api.aclose()
    assert str(caught.value) == ("advoware: PUT Beteiligte/{betNr}: expected an array with one object "
                                 "(put_answer of ADVOWARE_PROFILE)")
    assert sim.get(row["betNr"])["name"] == "Neu"  # type: ignore[index]


@pytest.mark.parametrize("tail", ["", "/api/v1", "/api/v1/advonet", "/api/v1/advonet/"])
async def test_advoware_url_with_or_without_an_api_tail_reaches_the_profile_s_resource(
        sim: AdvowareSimulator, app_server: tuple[ServerHandle, CurrentApp], tail: str) -> None:
    """ADVOWARE_URL may be given with or without /api/v1 (docs): also with today's /api/v1/advonet tail under
    a profile whose resource is directly under api/v1 (the path was doubled before: 404)."""
    betnr = sim.seed(name="Muster")["betNr"]
    url = app_server[0].url
    settings: dict[str, Any] = {**sim.client_settings(), "timeout": 2.0, "profile": sim.profile}
    client = AdvowareAPI(url + tail, url, redis=fakeredis.FakeAsyncRedis(), **settings)
    try:
        assert (await client.get_beteiligter(betnr))["betNr"] == betnr
    finally:
        await client.aclose()
