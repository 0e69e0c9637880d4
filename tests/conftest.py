from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from redis import Redis

from domain.decision import configure_fingerprint_key
from simulators.common import ServerHandle, serve_in_thread
from stephost.host import StepHost
from tests.embedded_support import state_root
from tests.fakes.backends import CurrentApp
from tests.fakes.fast_bed import FastBed, start_fast_testbed
from tests.redis_server import redis_server
from tests.stephost_fixtures.support import fast_config
from tests.testbed import Testbed, start_testbed

# One fingerprint key for the session, set before any test module is imported (modules compute
# fingerprints at import): an in-process testbed and the commands it starts with their own STATE_DIR
# share a store, as serve and its commands share STATE_DIR in a firm (tests/test_fingerprint_key.py
# runs commands without it: the key file and the store's check).
TEST_FINGERPRINT_KEY = "test-fingerprint-key-0123456789abcdef0123456789"
os.environ["FINGERPRINT_KEY"] = TEST_FINGERPRINT_KEY
configure_fingerprint_key(TEST_FINGERPRINT_KEY.encode())


@pytest.fixture(scope="session", autouse=True)
def _throwaway_state_dir() -> Iterator[None]:
    """No test touches the project's .state/: anything that starts an embedded store without its own
    STATE_DIR gets a throwaway one, and its servers are stopped at the end."""
    with state_root() as root:
        patch = pytest.MonkeyPatch()
        patch.setenv("STATE_DIR", str(root / "state"))
        yield
        patch.undo()




@pytest.fixture(params=[("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
async def tb(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    """The whole installation on fakeredis, against EspoCRM 8.1.5 as the Entity Manager leaves it
    (optimistic concurrency off, international phone numbers on, every write of ours echoed as a webhook)
    and against a current EspoCRM with optimistic concurrency on."""
    profile, occ = request.param
    bed = await start_testbed(espo_profile=profile, occ=occ)
    try:
        yield bed
    finally:
        await bed.close()


@pytest.fixture(params=[("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
async def fast_tb(request: pytest.FixtureRequest) -> AsyncIterator[FastBed]:
    """``tb`` without sockets: the same simulators and services, the clients replaced by the in-memory
    fakes (proven alike by tests/test_client_contract.py). For tests of the sync's logic."""
    profile, occ = request.param
    bed = await start_fast_testbed(espo_profile=profile, occ=occ)
    try:
        yield bed
    finally:
        await bed.close()


async def _firm(real_redis_url: str, profile: str, occ: bool) -> AsyncIterator[Testbed]:
    Redis.from_url(real_redis_url).flushdb()
    testbed = await start_testbed(redis_url=real_redis_url, espo_profile=profile, occ=occ)
    try:
        yield testbed
    finally:
        await testbed.close()


@pytest.fixture
async def firm(real_redis_url: str) -> AsyncIterator[Testbed]:
    """A firm whose two systems are already full (issue 11): both simulators and the service on the
    session's throwaway redis-server (emptied first, shared with the CLI a test runs), EspoCRM 8.1.5
    with optimistic concurrency off."""
    async for testbed in _firm(real_redis_url, "8", occ=False):
        yield testbed


@pytest.fixture(params=[("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
async def firm_both(real_redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    """``firm`` on both EspoCRM profiles, for the races."""
    async for testbed in _firm(real_redis_url, *request.param):
        yield testbed


@pytest.fixture
async def host() -> AsyncIterator[StepHost]:
    """A started step host over the test fixture steps, on fakeredis."""
    h = StepHost(fast_config(), fakeredis.FakeAsyncRedis())
    await h.start()
    yield h
    await h.stop()


@pytest.fixture(scope="session")
def real_redis_url() -> Iterator[str]:
    """A throwaway real redis-server on a free port for this test session."""
    with redis_server() as url:
        yield url


@pytest.fixture
async def own_redis() -> AsyncIterator[Any]:
    """A redis.asyncio client of a throwaway real redis-server of its own (tests that stop, flush or
    race one server without touching the session's)."""
    with redis_server() as url:
        client = aioredis.from_url(url)
        yield client
        await client.aclose()


SAMPLE = {
    "salutationName": "Frau",
    "firstName": "Anna",
    "lastName": "Müller",
    "titel": "Dr.",
    "rechtsform": "natürliche Person",
    "dateOfBirth": "1980-04-12",
    "emailAddress": "anna@example.org",
    "phoneNumber": "+49 30 1234567",
    "addressStreet": "Hauptstraße 1",
    "addressPostalCode": "10115",
    "addressCity": "Berlin",
    "addressCountry": "Deutschland",
    "description": "Mandantin seit 2020",
}


async def synced_record(tb: Testbed, **overrides: Any) -> dict[str, Any]:
    """SAMPLE (with ``overrides``) created by staff and synced; a second flush delivers EspoCRM 8.x's
    echoes of our writes."""
    rec = tb.espo.seed(**{**SAMPLE, **overrides})
    await tb.flush()
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"], rec["syncErrorMessage"]
    return rec


@pytest.fixture(scope="module")
def app_server() -> Iterator[tuple[ServerHandle, CurrentApp]]:
    """One HTTP server per test module whose app a test swaps (``CurrentApp.target``): a simulator per
    test without a server start each."""
    current = CurrentApp()
    handle = serve_in_thread(current)
    yield handle, current
    handle.stop()
