"""Answers outside the contract (garbage no simulator produces), mocked at the HTTP boundary."""

from __future__ import annotations

import fakeredis
import httpx
import pytest
import respx

from adapters.advoware_api import AdvowareAPI
from adapters.errors import BadResponseError, FatalError
from adapters.espocrm_api import EspoCRMAPI
from sync.sync_failures import classify, describe

ESPO = "http://espo.test"
ADVO = "http://advo.test"
TOKEN = {"token_type": "bearer", "expires_in": 3600, "expiration_utc": "2026-11-29T12:00:00Z",
         "access_token": "tok-123", "refresh_token": "r"}


def advo_client() -> AdvowareAPI:
    return AdvowareAPI(ADVO, ADVO, app_id="a", api_key="dGVzdC1zZWNyZXQta2V5", kanzlei="k", database="d",
                       user="u", password="very-secret-pw", redis=fakeredis.FakeAsyncRedis())


@respx.mock
async def test_espocrm_html_instead_of_json_is_a_bad_response():
    respx.get(f"{ESPO}/api/v1/CBeteiligte/0123456789abcdef0").mock(
        return_value=httpx.Response(200, text="<html>Maintenance</html>"))
    async with EspoCRMAPI(ESPO, "key-xyz") as api:
        with pytest.raises(BadResponseError) as err:
            await api.get("CBeteiligte", "0123456789abcdef0")
    assert isinstance(err.value, FatalError)
    assert "key-xyz" not in str(err.value)


@respx.mock
async def test_espocrm_list_without_total_is_a_bad_response():
    respx.get(url__startswith=f"{ESPO}/api/v1/CBeteiligte").mock(return_value=httpx.Response(200, json=[1, 2]))
    async with EspoCRMAPI(ESPO, "key") as api:
        with pytest.raises(BadResponseError):
            await api.list("CBeteiligte")


@respx.mock
async def test_advoware_put_answering_an_object_instead_of_an_array_is_a_bad_response():
    respx.post(f"{ADVO}/api/v1/Token").mock(return_value=httpx.Response(200, json=TOKEN))
    respx.put(f"{ADVO}/api/v1/advonet/Beteiligte/7").mock(
        return_value=httpx.Response(200, json={"betNr": 7, "rowId": "x"}))
    api = advo_client()
    try:
        with pytest.raises(BadResponseError) as err:
            await api.update_beteiligter(7, {"name": "X", "rowId": "x"})
    finally:
        await api.aclose()
    assert classify(err.value) == "fatal"
    text = describe(err.value)
    assert "advoware" in text and "tok-123" not in text and "very-secret-pw" not in text


@respx.mock
async def test_advoware_truncated_json_is_a_bad_response():
    respx.post(f"{ADVO}/api/v1/Token").mock(return_value=httpx.Response(200, json=TOKEN))
    respx.get(f"{ADVO}/api/v1/advonet/Beteiligte/7").mock(
        return_value=httpx.Response(200, text='{"betNr": 7, "name": "Mül'))
    api = advo_client()
    try:
        with pytest.raises(BadResponseError):
            await api.get_beteiligter(7)
    finally:
        await api.aclose()
