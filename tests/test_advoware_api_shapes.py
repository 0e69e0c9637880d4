"""The answer shapes a .NET Web API commonly has, as wire-profile keys: a list answer wrapped in an object
(``list_items``) and a create answered 201 with a Location header (``post_answer = "location"``). The client
against the simulator speaking each; an answer of another shape is an error naming the key to change."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adapters.errors import BadResponseError, OutcomeUnknownError
from config.advoware_profile import SHIPPED, AdvowareProfile, load_profile
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle
from tests.fakes.backends import CurrentApp
from tests.test_advoware_api import make_api

TEST_PROFILES = Path(__file__).resolve().parent / "advoware_profiles"
WRAPPED = str(TEST_PROFILES / "wrapped-location.toml")
COLLECTION = "/api/v1/advonet/Beteiligte"



def profile_with(tmp_path: Path, name: str, *lines: str) -> AdvowareProfile:
    """The default profile with ``lines`` added (a key given twice is not TOML: only new keys here)."""
    path = tmp_path / f"{name}.toml"
    text = (SHIPPED / "default.toml").read_text()
    for line in lines:
        key = line.split(" = ")[0]
        text = text.replace(next(x for x in text.splitlines() if x.startswith(f"{key} = ")), line)
    path.write_text(text)
    return load_profile(str(path))


def serve(app_server: tuple[ServerHandle, CurrentApp], profile: AdvowareProfile) -> AdvowareSimulator:
    sim = AdvowareSimulator(seed=3, profile=profile)
    app_server[1].target = sim.app
    return sim


def raw(sim: AdvowareSimulator, method: str, url: str, **kw: object) -> httpx.Response:
    """A request as any HTTP client sends it (the simulator's answer as it is on the wire)."""
    headers = {"Authorization": f"Bearer {sim.issue_token()}"}
    return httpx.request(method, url, headers=headers, timeout=2.0, **kw)  # type: ignore[arg-type]


def wire_counts(sim: AdvowareSimulator) -> dict[str, int]:
    return {k: v for k, v in sim.calls.snapshot().items() if not k.endswith("/Token")}


@pytest.mark.parametrize("key", ["value", "items"])
async def test_a_wrapped_list_answer_is_read_from_the_profiles_key(
        tmp_path: Path, app_server: tuple[ServerHandle, CurrentApp], key: str) -> None:
    profile = profile_with(tmp_path, key, f'list_items = "{key}"')
    sim = serve(app_server, profile)
    rows = [sim.seed(name=f"N{i}") for i in range(profile.list_max_take + 3)]
    answer = raw(sim, "GET", f"{app_server[0].url}{COLLECTION}", params={"take": 2}).json()
    assert set(answer) == {key, "totalCount"} and len(answer[key]) == 2  # the simulator answers the declared shape
    async with make_api(sim, app_server[0].url, timeout=2.0, profile=profile) as api:
        got = await api.list_beteiligte(take=profile.list_max_take + 50)
        assert [r["betNr"] for r in got] == [r["betNr"] for r in rows]
        assert got[0] == sim.get(rows[0]["betNr"])
        assert await api.supports_list() is True


@pytest.mark.parametrize("answers, expects, message", [
    ("items", None, 'GET Beteiligte: expected a JSON array, got an object with the list-valued keys items '
                    '(set list_items = "items" in ADVOWARE_PROFILE; doctor --advoware names it)'),
    (None, "value", 'GET Beteiligte: expected an object with the rows as a list under "value", got a JSON array '
                    '(list_items = "value" of ADVOWARE_PROFILE; "" for a bare array; doctor --advoware names it)'),
    ("items", "value", "GET Beteiligte: expected an object with the rows as a list under \"value\", got no key "
                       "'value' (list_items = \"value\" of ADVOWARE_PROFILE"),
], ids=["object-for-array", "array-for-object", "key-missing"])
async def test_a_list_answer_of_another_shape_is_a_bad_response_naming_list_items(
        tmp_path: Path, app_server: tuple[ServerHandle, CurrentApp], answers: str | None, expects: str | None,
        message: str) -> None:
    said = [f'list_items = "{answers}"'] if answers else []
    sim = serve(app_server, profile_with(tmp_path, "sim", *said))
    sim.seed(name="Muster")
    client_profile = profile_with(tmp_path, "client", *([f'list_items = "{expects}"'] if expects else []))
    async with make_api(sim, app_server[0].url, timeout=2.0, profile=client_profile) as api:
        with pytest.raises(BadResponseError) as caught:
            await api.list_beteiligte(take=5)
    assert str(caught.value).startswith(f"advoware: {message}")


async def test_a_wrapped_key_that_is_not_a_list_is_a_bad_response(tmp_path: Path,
                                                                  app_server: tuple[ServerHandle, CurrentApp]) -> None:
    sim = serve(app_server, profile_with(tmp_path, "sim", 'list_items = "items"'))
    client_profile = profile_with(tmp_path, "client", 'list_items = "totalCount"')
    async with make_api(sim, app_server[0].url, timeout=2.0, profile=client_profile) as api:
        with pytest.raises(BadResponseError, match='under "totalCount", got an object with the list-valued keys '
                                                   'items .list_items = "totalCount" of ADVOWARE_PROFILE'):
            await api.list_beteiligte(take=5)


async def test_a_create_answered_with_a_location_reads_the_new_beteiligter_once(
        app_server: tuple[ServerHandle, CurrentApp]) -> None:
    profile = load_profile(WRAPPED)
    sim = serve(app_server, profile)
    answer = raw(sim, "POST", f"{app_server[0].url}{COLLECTION}", json={"name": "Roh"})
    assert answer.status_code == 201 and answer.content == b""
    assert answer.headers["Location"] == f"{app_server[0].url}{COLLECTION}/{sim.all()[0]['betNr']}"
    async with make_api(sim, app_server[0].url, timeout=2.0, profile=profile) as api:
        sim.calls.reset()
        created = await api.create_beteiligter({"name": "Muster", "ort": "Köln"})
    assert created == sim.get(created["betNr"]) and created["rowId"] and created["ort"] == "Köln"
    assert wire_counts(sim) == {f"POST {COLLECTION}": 1, f"GET {COLLECTION}/{{id}}": 1}


async def test_a_create_without_a_location_is_an_unknown_outcome_naming_post_answer(
        app_server: tuple[ServerHandle, CurrentApp]) -> None:
    """The POST was applied (201) but its number is unknown: never a plain failure that would be repeated at
    once, but the lost-create path (sync/advoware_create.py looks for it before the next attempt)."""
    sim = serve(app_server, load_profile("default"))  # answers the object, no Location
    async with make_api(sim, app_server[0].url, timeout=2.0, profile=load_profile(WRAPPED)) as api:
        with pytest.raises(OutcomeUnknownError) as caught:
            await api.create_beteiligter({"name": "Muster"})
    assert str(caught.value) == ('advoware: HTTP 201: POST Beteiligte answered 201 with no Location header '
                                 '(post_answer = "location" of ADVOWARE_PROFILE; if it answers the created object, '
                                 'set post_answer = "body")')
    assert len(sim.all()) == 1


async def test_a_create_whose_read_goes_unanswered_counts_as_done_with_the_location_s_number(
        app_server: tuple[ServerHandle, CurrentApp]) -> None:
    sim = serve(app_server, load_profile(WRAPPED))
    sim.faults.add(method="GET", path=r"/Beteiligte/\d+$", status=500, times=1)
    async with make_api(sim, app_server[0].url, timeout=2.0, profile=load_profile(WRAPPED)) as api:
        created = await api.create_beteiligter({"name": "Muster"})
    [row] = sim.all()
    assert created == {"name": "Muster", "betNr": row["betNr"]}  # no rowId: the next sync reads it
