"""EspoCRMAPI client against the EspoCRM simulator (ASGI transport, and real HTTP where timing matters)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from adapters.errors import (
    AuthenticationError,
    BadResponseError,
    DeferredError,
    ForbiddenError,
    NotFoundError,
    RetryableError,
    StaleWriteError,
    ValidationError,
)
from adapters.espocrm_api import EspoCRMAPI, encode_bracket_params
from simulators.common import ServerHandle, free_port, serve_in_thread
from simulators.espocrm.simulator import EspoCRMSimulator

KEY = "client-test-key-0123"
SECRET = "client-hmac-secret"
E = "CBeteiligte"


@pytest.fixture(params=["8", "9"])
def sim(request: pytest.FixtureRequest) -> EspoCRMSimulator:
    return EspoCRMSimulator(api_key=KEY, hmac_secret=SECRET, seed=11, occ=True, profile=request.param)


@pytest.fixture(params=["api_key", "hmac"])
async def api(request: pytest.FixtureRequest, sim: EspoCRMSimulator) -> AsyncIterator[EspoCRMAPI]:
    """Every client test on both profiles: 8.1.5 checks ``X-Hmac-Authorization`` against the raw
    binary digest only."""
    secret = SECRET if request.param == "hmac" else None
    client = EspoCRMAPI("http://espo.test", KEY, hmac_secret=secret,
                        transport=httpx.ASGITransport(app=sim.app))
    yield client
    await client.aclose()


@pytest.fixture
def server(sim: EspoCRMSimulator) -> Iterator[ServerHandle]:
    handle = serve_in_thread(sim.app)
    yield handle
    handle.stop()


def test_where_encoding_is_php_brackets() -> None:
    where = [{"type": "or", "value": [
        {"type": "isNull", "attribute": "betnr"},
        {"type": "in", "attribute": "syncStatus", "value": ["failed", "clean"]},
    ]}]
    assert encode_bracket_params("where", where) == [
        ("where[0][type]", "or"),
        ("where[0][value][0][type]", "isNull"),
        ("where[0][value][0][attribute]", "betnr"),
        ("where[0][value][1][type]", "in"),
        ("where[0][value][1][attribute]", "syncStatus"),
        ("where[0][value][1][value][0]", "failed"),
        ("where[0][value][1][value][1]", "clean"),
    ]


async def test_crud_roundtrip(api: EspoCRMAPI, sim: EspoCRMSimulator) -> None:
    created = await api.create(E, {"firstName": "Jörg", "lastName": "Schäfer", "description": "x"})
    assert created["versionNumber"] == 1
    assert await api.get(E, created["id"]) == created
    updated = await api.update(E, created["id"], {"betnr": 42, "syncStatus": "clean"}, version_number=1)
    assert updated["betnr"] == 42 and updated["description"] == "x" and updated["versionNumber"] == 2
    await api.delete(E, created["id"])
    assert sim.get(created["id"]) is None
    with pytest.raises(NotFoundError) as info:
        await api.get(E, created["id"])
    assert info.value.message == f"Record {created['id']} does not exist."


async def test_list_where_select_and_iter_list(api: EspoCRMAPI, sim: EspoCRMSimulator) -> None:
    for i in range(7):
        sim.seed(lastName=f"P{i}", betnr=i if i % 2 else None, syncStatus="failed" if i == 4 else "clean")
    where = [{"type": "or", "value": [{"type": "isNotNull", "attribute": "betnr"},
                                      {"type": "equals", "attribute": "syncStatus", "value": "failed"}]}]
    page = await api.list(E, where=where, select=["lastName"], order_by="lastName", max_size=2, offset=1)
    assert page["total"] == 4
    assert [r["lastName"] for r in page["list"]] == ["P3", "P4"]
    assert set(page["list"][0]) == {"id", "lastName"}
    seen = [r["lastName"] async for r in api.iter_list(E, where=where, page_size=3)]
    assert seen == ["P1", "P3", "P4", "P5"]
    every = [r["id"] async for r in api.iter_list(E, page_size=2)]
    assert every == [r["id"] for r in sim.all()]


async def test_validation_error_carries_body(api: EspoCRMAPI) -> None:
    with pytest.raises(ValidationError) as info:
        await api.create(E, {"lastName": "X", "dateOfBirth": "1.1.1990"})
    assert info.value.status == 400
    assert "field: dateOfBirth, type: valid" in info.value.message
    assert info.value.details["messageTranslation"]["data"] == {"field": "dateOfBirth", "type": "valid"}


async def test_max_size_201_is_forbidden(api: EspoCRMAPI) -> None:
    with pytest.raises(ForbiddenError):
        await api.list(E, max_size=201)


async def test_stale_version_is_stale_write_with_values(api: EspoCRMAPI, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Alt", phoneNumber="+49 30 1111111")
    sim.user_edit(rec["id"], phoneNumber="+49 30 2222222")
    with pytest.raises(StaleWriteError) as info:
        await api.update(E, rec["id"], {"phoneNumber": "+49 30 3333333"}, version_number=1)
    assert info.value.details == {"values": {"phoneNumber": "+49302222222"}, "versionNumber": 2}


async def test_note_and_webhook_registration(api: EspoCRMAPI, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="Muster")
    note = await api.post_note(E, rec["id"], "Sync **failed**: Advoware unreachable")
    assert sim.notes_for(rec["id"]) == [note]
    hook = await api.register_webhook("CBeteiligte.delete", "http://svc.test/vmh/webhook/beteiligte/delete")
    assert hook.get("skipOwn") is (True if str(sim.profile) == "9" else None)  # 8.x drops it silently
    assert len(hook["secretKey"]) == 32
    assert [w["id"] for w in sim.webhooks] == [hook["id"]]


async def test_wrong_key_is_authentication_error_without_key(sim: EspoCRMSimulator) -> None:
    for secret in (None, "wrong-secret"):
        client = EspoCRMAPI("http://espo.test", "very-secret-wrong-key", hmac_secret=secret,
                            transport=httpx.ASGITransport(app=sim.app))
        with pytest.raises(AuthenticationError) as info:
            await client.list(E)
        await client.aclose()
        assert "very-secret-wrong-key" not in str(info.value)
        assert "wrong-secret" not in str(info.value) and "wrong-secret" not in repr(client)


async def test_injected_503_is_deferred_with_retry_after(api: EspoCRMAPI, sim: EspoCRMSimulator) -> None:
    sim.faults.add(method="GET", path=r"/CBeteiligte$", status=503, retry_after=42)
    with pytest.raises(DeferredError) as info:
        await api.list(E)
    assert info.value.retry_after == 42.0
    assert (await api.list(E))["total"] == 0  # fault applied once


async def test_injected_500_is_retryable(api: EspoCRMAPI, sim: EspoCRMSimulator) -> None:
    sim.faults.add(method="POST", status=500)
    with pytest.raises(RetryableError) as info:
        await api.create(E, {"lastName": "X"})
    assert info.value.status == 500
    assert sim.all() == []


async def test_non_json_success_is_bad_response(api: EspoCRMAPI, sim: EspoCRMSimulator) -> None:
    rec = sim.seed(lastName="X")
    sim.faults.add(method="GET", status=200, body="<html>maintenance</html>")
    with pytest.raises(BadResponseError):
        await api.get(E, rec["id"])


async def test_timeout_over_real_http_is_retryable(sim: EspoCRMSimulator, server: ServerHandle) -> None:
    sim.faults.add(method="GET", delay=1.0)
    client = EspoCRMAPI(server.url, KEY, timeout=0.2)
    try:
        with pytest.raises(RetryableError) as info:
            await client.list(E)
        assert "timeout" in info.value.message
        assert KEY not in str(info.value)
        assert (await client.list(E))["total"] == 0
    finally:
        await client.aclose()


async def test_connection_refused_is_retryable() -> None:
    client = EspoCRMAPI(f"http://127.0.0.1:{free_port()}", KEY, timeout=1.0)
    try:
        with pytest.raises(RetryableError):
            await client.get(E, "0123456789abcdef0")
    finally:
        await client.aclose()
