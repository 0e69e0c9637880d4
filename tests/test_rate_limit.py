"""The per-system cap of requests in flight (ESPOCRM_MAX_INFLIGHT, ADVOWARE_MAX_INFLIGHT): counted by
the simulators themselves (``/__sim/activity``: requests being served at once and the peak), it never
exceeds its setting, halves on a 429/503 (once per overload, not once per answer) and grows back by
itself."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import fakeredis
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.advoware_api import AdvowareAPI
from adapters.errors import ApiError, DeferredError
from adapters.espocrm_api import EspoCRMAPI
from adapters.rate_limit import InflightLimit
from simulators.advoware.simulator import AdvowareSimulator
from simulators.espocrm.simulator import EspoCRMSimulator
from simulators.faults import FaultInjector

LATENCY_S = 0.01  # any latency: requests let in at once by the door are all in the simulator at once
CAP = 8
ESPO_KEY = "rate-limit-test-key"


class Door:
    """In front of a simulator: once armed for ``n``, API requests wait until ``n`` of them have
    arrived, then all go in together (so a burst is in flight at once, without a timing margin)."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app, self.path = app, re.compile(path)
        self.waiting = 0
        self.want = 0
        self.opened = asyncio.Event()

    def arm(self, n: int) -> None:
        self.waiting, self.want, self.opened = 0, n, asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.want and scope["type"] == "http" and self.path.search(scope["path"]):
            self.waiting += 1
            if self.waiting >= self.want:
                self.want = 0
                self.opened.set()
            await self.opened.wait()
        await self.app(scope, receive, send)


@dataclass
class System:
    """One system's simulator and our client of it, with one read to repeat."""

    name: str
    faults: FaultInjector
    limit: InflightLimit
    read: Callable[[], Awaitable[Any]]
    sim_http: httpx.AsyncClient
    api_path: str  # a regex matching the read's path only (not Advoware's token endpoint)
    door: Door

    async def activity(self, *, reset: bool = False) -> dict[str, Any]:
        answer = await (self.sim_http.delete if reset else self.sim_http.get)("/__sim/activity")
        return dict(answer.json())

    async def burst(self, n: int, *, together: int = 0) -> list[Any]:
        """``n`` reads at once; the first ``together`` of them reach the simulator together."""
        self.door.arm(together)
        return await asyncio.gather(*(self.read() for _ in range(n)), return_exceptions=True)


@pytest.fixture(params=["espocrm", "advoware"])
async def system(request: pytest.FixtureRequest) -> AsyncIterator[System]:
    if request.param == "espocrm":
        espo = EspoCRMSimulator(api_key=ESPO_KEY, seed=3)
        rec = espo.seed(lastName="Limit", firstName="Test", rechtsform="natürliche Person")
        door = Door(espo.app, r"/CBeteiligte/")
        transport = httpx.ASGITransport(app=door)
        api = EspoCRMAPI("http://espo.test", ESPO_KEY, transport=transport, max_inflight=CAP)
        sim_http = httpx.AsyncClient(transport=transport, base_url="http://espo.test")
        yield System("espocrm", espo.faults, api.inflight, lambda: api.get("CBeteiligte", rec["id"]), sim_http,
                     r"/CBeteiligte/", door)
        await api.aclose()
    else:
        advo = AdvowareSimulator(seed=3)
        bet = advo.seed(name="Limit", vorname="Test")
        door = Door(advo.app, r"/Beteiligte/")
        transport = httpx.ASGITransport(app=door)
        creds: dict[str, Any] = dict(advo.client_settings())
        advo_api = AdvowareAPI("http://advo.test", "http://advo.test", redis=fakeredis.FakeAsyncRedis(),
                               transport=transport, max_inflight=CAP, **creds)
        sim_http = httpx.AsyncClient(transport=transport, base_url="http://advo.test")
        await advo_api.get_beteiligter(int(bet["betNr"]))  # the token, fetched once
        yield System("advoware", advo.faults, advo_api.inflight,
                     lambda: advo_api.get_beteiligter(int(bet["betNr"])), sim_http, r"/Beteiligte/",
                     door)
        await advo_api.aclose()
    await sim_http.aclose()


async def test_requests_in_flight_never_exceed_the_setting(system: System) -> None:
    system.faults.latency = LATENCY_S
    await system.activity(reset=True)
    results = await system.burst(5 * CAP, together=CAP)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert (await system.activity())["peak"] == CAP  # used to the full, never beyond


async def test_an_overload_halves_the_cap_once_and_it_grows_back_by_itself(system: System) -> None:
    system.faults.latency = LATENCY_S
    status = 429 if system.name == "espocrm" else 503
    system.faults.add(path=system.api_path, status=status, retry_after=1, times=None)

    results = await system.burst(CAP, together=CAP)  # all in flight at once: their answers are one overload
    assert all(isinstance(r, DeferredError | ApiError) for r in results)
    assert system.limit.limit == CAP // 2

    await system.burst(1)  # sent after the cut, answered 429/503 again: halves again
    assert system.limit.limit == CAP // 4

    system.faults.clear()
    system.faults.latency = LATENCY_S
    await system.activity(reset=True)
    waiting = await system.burst(3 * CAP)  # more than the cap: the rest wait for free places
    assert not [r for r in waiting if isinstance(r, BaseException)]
    grown = system.limit.limit
    assert CAP // 4 < grown <= CAP
    assert (await system.activity())["peak"] <= grown

    bursts = 0
    while system.limit.limit < CAP and bursts < 50:  # +1 per window of successes, up to the setting
        before = system.limit.limit
        await system.activity(reset=True)
        await system.burst(before)
        assert (await system.activity())["peak"] <= before
        bursts += 1
    assert system.limit.limit == CAP

    await system.activity(reset=True)
    await system.burst(5 * CAP, together=CAP)
    assert (await system.activity())["peak"] == CAP  # back at the setting, and no further


async def test_a_cap_below_one_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InflightLimit("espocrm", 0)
