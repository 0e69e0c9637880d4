"""Ids are data, never paths (issue 7, point 5): both clients check every id and betNr and encode it as
one path segment; a bad one is a fatal ValidationError and nothing is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import fakeredis
import httpx
import pytest

from adapters.advoware_api import AdvowareAPI
from adapters.errors import FatalError, ValidationError
from adapters.espocrm_api import EspoCRMAPI
from sync.sync_failures import classify
from tests.testbed import Testbed

E = "CBeteiligte"
BAD_IDS: list[Any] = [
    "../Webhook", "..", ".", "x?maxSize=5000", "%2e%2e", "a/b", "a\\b", "a#b", "", " ", "a b", "a\nb",
    "a\x00b", "a\u200bb", None, -1, True, 6650, ["x"], "x" * 65,
]
BAD_BETNRS: list[Any] = [0, -1, True, False, None, "12", "../x", 1.5, "1/../2", [1]]
TOKEN = {"token_type": "bearer", "expires_in": 3600, "access_token": "tok", "refresh_token": "r"}


class Recorder:
    """A transport that records every request and answers like a friendly server."""

    def __init__(self, answer: Any) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(200, json=self._answer)


def espo(recorder: Recorder, hmac_secret: str | None = None) -> EspoCRMAPI:
    return EspoCRMAPI("http://espo.test", "key", hmac_secret=hmac_secret, transport=httpx.MockTransport(recorder))


def advo(recorder: Recorder) -> AdvowareAPI:
    return AdvowareAPI("http://advo.test", "http://advo.test", app_id="a", api_key="dGVzdA==", kanzlei="k",
                       database="d", user="u", password="p", redis=fakeredis.FakeAsyncRedis(),
                       transport=httpx.MockTransport(recorder))


ESPO_CALLS: dict[str, Callable[[EspoCRMAPI, Any], Awaitable[Any]]] = {
    "get": lambda api, i: api.get(E, i),
    "update": lambda api, i: api.update(E, i, {"syncStatus": "syncing"}),
    "delete": lambda api, i: api.delete(E, i),
    "note": lambda api, i: api.post_note(E, i, "text"),
}
ADVO_CALLS: dict[str, Callable[[AdvowareAPI, Any], Awaitable[Any]]] = {
    "get": lambda api, b: api.get_beteiligter(b),
    "update": lambda api, b: api.update_beteiligter(b, {"name": "X", "rowId": "r"}),
    "delete": lambda api, b: api.delete_beteiligter(b),
}


@pytest.mark.parametrize("call", ESPO_CALLS)
@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
async def test_bad_espocrm_id_sends_nothing(call: str, bad: Any) -> None:
    recorder = Recorder({"id": "x"})
    async with espo(recorder) as api:
        with pytest.raises(ValidationError) as info:
            await ESPO_CALLS[call](api, bad)
    assert recorder.requests == []
    assert isinstance(info.value, FatalError) and classify(info.value) == "fatal"
    assert str(info.value).startswith("espocrm: invalid record id")


@pytest.mark.parametrize("call", ADVO_CALLS)
@pytest.mark.parametrize("bad", BAD_BETNRS, ids=repr)
async def test_bad_betnr_sends_nothing(call: str, bad: Any) -> None:
    recorder = Recorder([{"betNr": 1, "rowId": "r"}])
    api = advo(recorder)
    try:
        with pytest.raises(ValidationError) as info:
            await ADVO_CALLS[call](api, bad)
    finally:
        await api.aclose()
    assert recorder.requests == []
    assert classify(info.value) == "fatal" and "invalid betNr" in str(info.value)


async def test_bad_entity_type_sends_nothing() -> None:
    recorder = Recorder({"total": 0, "list": []})
    async with espo(recorder) as api:
        for entity in ("../Webhook", "CBeteiligte?x=1", "", "cBeteiligte/x"):
            with pytest.raises(ValidationError):
                await api.list(entity)
            with pytest.raises(ValidationError):
                await api.create(entity, {})
    assert recorder.requests == []


@pytest.mark.parametrize("hmac_secret", [None, "s3cret"])
async def test_real_and_unusual_ids_stay_one_encoded_segment(hmac_secret: str | None) -> None:
    recorder = Recorder({"id": "x"})
    async with espo(recorder, hmac_secret) as api:
        for record_id in ("6650f1a2b3c4d5e6f", "0b7a4c2e-1d3f-4e5a-9b8c-7d6e5f4a3b2c", "a;b+c", "v1.2"):
            await api.get(E, record_id)
    paths = [r.url.raw_path.decode() for r in recorder.requests]
    assert paths == ["/api/v1/CBeteiligte/6650f1a2b3c4d5e6f",
                     "/api/v1/CBeteiligte/0b7a4c2e-1d3f-4e5a-9b8c-7d6e5f4a3b2c",
                     "/api/v1/CBeteiligte/a%3Bb%2Bc", "/api/v1/CBeteiligte/v1.2"]
    assert all(r.url.query == b"" for r in recorder.requests)


async def test_good_betnr_is_sent() -> None:
    recorder = Recorder({"betNr": 12, "rowId": "r"})
    api = advo(recorder)
    try:
        assert (await api.get_beteiligter(12))["betNr"] == 12
    finally:
        await api.aclose()
    assert recorder.requests[-1].url.raw_path == b"/api/v1/advonet/Beteiligte/12"


async def test_syncing_a_path_as_id_touches_nothing(tb: Testbed) -> None:
    """What ``beteiligte-sync sync '../Webhook'`` does: no request reaches either system."""
    tb.reset_calls()
    for bad in ("../Webhook", "x?maxSize=5000", "%2e%2e", "a/b"):
        result = await tb.services.sync.sync(bad, "cli")
        assert result.action == "error" and "invalid record id" in result.message
    assert tb.calls() == {}
