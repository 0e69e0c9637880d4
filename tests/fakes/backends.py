"""The two ways a test can reach the simulators, for the contract suite: the production HTTP clients
over real HTTP (uvicorn in a thread), or the in-memory fakes. Both sit on the same kind of simulator,
so one test body runs against either and must see the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import fakeredis
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.advoware_api import AdvowareAPI
from adapters.espocrm_api import EspoCRMAPI
from config.advoware_profile import AdvowareProfile
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle, serve_in_thread
from simulators.espocrm.simulator import EspoCRMSimulator
from tests.fakes.advoware import FakeAdvoware
from tests.fakes.espocrm import FakeEspoCRM

ADMIN_KEY = "contract-admin-key"
TIMEOUT_S = 2.0


class Kind(StrEnum):
    HTTP = "http"
    FAKE = "fake"


class ManualClock:
    """Simulator time that moves only when told (and by 1 ms per reading: distinct, ordered stamps)."""

    def __init__(self, start: datetime = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CurrentApp:
    """One uvicorn server per system for a whole module, serving whichever test's simulator is current."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.target is not None
        await self.target(scope, receive, send)


@dataclass
class Servers:
    espo: tuple[ServerHandle, CurrentApp]
    advo: tuple[ServerHandle, CurrentApp]


@contextmanager
def shared_servers() -> Iterator[Servers]:
    espo_app, advo_app = CurrentApp(), CurrentApp()
    servers = Servers((serve_in_thread(espo_app), espo_app), (serve_in_thread(advo_app), advo_app))
    try:
        yield servers
    finally:
        servers.espo[0].stop()
        servers.advo[0].stop()


@dataclass
class Backend:
    """Both simulators and a client of each, HTTP or fake (``kind``)."""

    kind: Kind
    espo_sim: EspoCRMSimulator
    advo_sim: AdvowareSimulator
    espo: Any  # EspoCRMAPI | FakeEspoCRM: the same public methods
    advo: Any  # AdvowareAPI | FakeAdvoware
    clock: ManualClock
    servers: Servers

    def espo_as(self, api_key: str) -> Any:
        """Another EspoCRM client of the same kind, acting as the user of ``api_key``."""
        if self.kind == Kind.FAKE:
            return FakeEspoCRM(self.espo_sim, api_key, timeout=TIMEOUT_S)
        return EspoCRMAPI(self.servers.espo[0].url, api_key, timeout=TIMEOUT_S)

    async def aclose(self) -> None:
        await self.espo.aclose()
        await self.advo.aclose()


def make_backend(kind: Kind, servers: Servers, advo_profile: AdvowareProfile | None = None) -> Backend:
    """``advo_profile``: the wire both the simulator and the HTTP client speak (the fake knows only
    today's contract: it serves the store's internal records without a wire)."""
    clock = ManualClock()
    espo_sim = EspoCRMSimulator(seed=5, clock=clock, admin_api_key=ADMIN_KEY)
    advo_sim = AdvowareSimulator(seed=5, clock=clock, profile=advo_profile)
    if kind == Kind.FAKE:
        assert advo_profile is None, "the fake speaks today's contract only"
        return Backend(kind, espo_sim, advo_sim, FakeEspoCRM(espo_sim, timeout=TIMEOUT_S),
                       FakeAdvoware(advo_sim, timeout=TIMEOUT_S), clock, servers)
    servers.espo[1].target, servers.advo[1].target = espo_sim.app, advo_sim.app
    espo = EspoCRMAPI(servers.espo[0].url, espo_sim.api_key, timeout=TIMEOUT_S)
    url = servers.advo[0].url
    creds = advo_sim.client_settings()
    advo = AdvowareAPI(url, url, redis=fakeredis.FakeAsyncRedis(), timeout=TIMEOUT_S, app_id=creds["app_id"],
                       api_key=creds["api_key"], kanzlei=creds["kanzlei"], database=creds["database"],
                       user=creds["user"], password=creds["password"], profile=advo_sim.profile)
    return Backend(kind, espo_sim, advo_sim, espo, advo, clock, servers)


# -- what the contract tests compare ------------------------------------------------------------
def counted(b: Backend, sim: str) -> dict[str, int]:
    calls = (b.espo_sim if sim == "espo" else b.advo_sim).calls.snapshot()
    return {k: v for k, v in calls.items() if not k.endswith("/Token")}


def advo_row(b: Backend, betnr: int) -> dict[str, Any]:
    row = b.advo_sim.get(betnr)
    assert row is not None
    return row


def espo_row(b: Backend, espo_id: str) -> dict[str, Any]:
    rec = b.espo_sim.get(espo_id)
    assert rec is not None
    return rec


def error_facts(exc: BaseException) -> tuple[Any, ...]:
    return type(exc), str(exc), getattr(exc, "status", None), getattr(exc, "details", None)
