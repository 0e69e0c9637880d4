"""The EspoCRM simulator's REST contract (spec §1.1), split by topic: records and auth
(``test_records``), lists, notes, webhooks and counters (``test_lists``). Fixtures: a simulator on a
settable clock and an HTTP client speaking to it over the ASGI transport with the API key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from simulators.espocrm.simulator import EspoCRMSimulator

KEY = "test-key"
SECRET = "test-hmac-secret"
BASE = "http://espo.test/api/v1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: int = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> EspoCRMSimulator:
    return EspoCRMSimulator(api_key=KEY, hmac_secret=SECRET, clock=clock, seed=7)


@pytest.fixture
async def http(sim: EspoCRMSimulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"X-Api-Key": KEY}) as c:
        yield c


def hmac_header(method: str, path: str, key: str = KEY, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{method} {path}".encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(f"{key}:{digest}".encode()).decode()
