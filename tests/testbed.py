"""A whole installation in one process: both simulators, the service, the step host on a real port.

Tests and benchmarks use it the same way: edit records through the simulators as people would,
``flush()`` EspoCRM's webhook queue into the service, ``sync_check()``, then read the simulators'
records and call counters. Everything the service does goes over real HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from redis.asyncio import Redis

from config.advoware_profile import load_profile
from config.settings import Settings
from domain.conflict_policy import ConflictPolicy
from entrypoints.bootstrap import Services, build_services
from entrypoints.runtime import build_host
from entrypoints.sandbox import Sandbox
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle, free_port, serve_in_thread
from simulators.espocrm.fields import GERMAN_SALUTATIONS
from simulators.espocrm.profiles import Profile
from simulators.espocrm.simulator import EspoCRMSimulator
from stephost.host import StepHost


def _store(redis_url: str | None) -> Any:
    """The given real Redis, or fakeredis: the fast in-process suite (a test dependency only)."""
    if redis_url:
        return Redis.from_url(redis_url)
    import fakeredis

    return fakeredis.FakeAsyncRedis()


class FakeClock:
    """Wall clock for the sync's retry schedule that tests can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Testbed:
    __test__ = False  # not a pytest test class

    espo: EspoCRMSimulator
    advo: AdvowareSimulator
    espo_server: ServerHandle | None  # None: the fast bed (tests/fakes/fast_bed.py) serves no HTTP
    advo_server: ServerHandle | None
    services: Services
    host: StepHost
    url: str
    clock: FakeClock
    server: uvicorn.Server | None = None
    server_task: asyncio.Task[None] | None = None
    webhook_ids: dict[str, str] = field(default_factory=dict)

    async def flush(self, wait_s: float = 30.0) -> list[Any]:
        """Deliver every webhook event queued now and wait until the service has handled them.

        Like EspoCRM's job: one run moves at most 20 events, and the service handles each run's
        batches before the next run. Events queued meanwhile (on 8.x also the echoes of the sync's
        own writes) wait for the next ``flush``."""
        mark = self.espo.webhook_mark()
        results: list[Any] = []
        while True:
            results.extend(await self.espo.flush_webhooks(up_to=mark))
            await self.host.drain(wait_s)
            if not self.espo.webhook_events_waiting(mark):
                return results

    async def sync_check(self, wait_s: float = 60.0) -> None:
        await self.host.run_cron("beteiligte_sync_cron")
        await self.host.drain(wait_s)

    def espo_record(self, espo_id: str) -> dict[str, Any]:
        rec = self.espo.get(espo_id)
        assert rec is not None, f"EspoCRM record {espo_id} does not exist"
        return rec

    def advo_record(self, betnr: int) -> dict[str, Any]:
        obj = self.advo.get(betnr)
        assert obj is not None, f"Advoware Beteiligter {betnr} does not exist"
        return obj

    def calls(self) -> dict[str, int]:
        out = {f"espocrm {k}": v for k, v in self.espo.calls.snapshot().items()}
        out.update({f"advoware {k}": v for k, v in self.advo.calls.snapshot().items()})
        return out

    def api_calls(self, *, include_token: bool = False, include_notes: bool = True) -> int:
        n = 0
        for k, v in self.calls().items():
            if not include_token and k.endswith("/api/v1/Token"):
                continue
            if not include_notes and "/Note" in k:
                continue
            if "/Webhook" in k or "/App/user" in k or "/Metadata" in k:  # setup, once per process
                continue
            n += v
        return n

    def writes(self) -> int:
        """Writes to either system (token requests and Notes excluded)."""
        return sum(v for k, v in self.calls().items()
                   if k.split()[1] in ("POST", "PUT", "PATCH", "DELETE")
                   and not k.endswith("/Token") and "/Note" not in k and "/Webhook" not in k)

    def reset_calls(self) -> None:
        self.espo.calls.reset()
        self.advo.calls.reset()

    async def close(self) -> None:
        await self.host.stop()
        if self.server is not None:
            self.server.should_exit = True
        if self.server_task is not None:
            await self.server_task
        await self.services.aclose()
        self.espo.stop_webhook_job()
        for handle in (self.espo_server, self.advo_server):
            if handle is not None:
                handle.stop()


async def start_testbed(
    *,
    redis_url: str | None = None,
    policy: ConflictPolicy | None = None,
    delete_policy: str = "unlink",
    post_returns_rowid: bool | None = None,
    list_endpoint: bool | None = None,
    workers: int = 4,
    token_lifetime: int = 3600,
    http_timeout: float = 5.0,
    seed: int | None = 1,
    espo_profile: Profile | str = Profile.V9,
    occ: bool = False,
    salutation_options: Sequence[str] = GERMAN_SALUTATIONS,
    phone_normalization: bool = True,
    advo_profile: str = "default",
) -> Testbed:
    """A started installation. The EspoCRM side: ``espo_profile`` ("8" = 8.1.5, "9" = current),
    ``occ`` (optimistic concurrency control on CBeteiligte, off as the Entity Manager leaves it),
    the ``salutationName`` options (German by default, as firms configure them; the stock ones are
    ``STOCK_SALUTATIONS``) and phone normalisation. Switch them at run time through ``tb.espo``
    (``set_occ``, ``set_profile``, ``set_salutation_options``, ``set_phone_normalization``).
    The Advoware side speaks the wire profile ``advo_profile`` (ADVOWARE_PROFILE of the service too);
    ``post_returns_rowid`` and ``list_endpoint`` override what it says."""
    espo = EspoCRMSimulator(seed=seed, webhook_timeout_s=http_timeout, profile=espo_profile, occ=occ,
                            salutation_options=salutation_options, phone_normalization=phone_normalization)
    advo = AdvowareSimulator(post_returns_rowid=post_returns_rowid, list_endpoint=list_endpoint,
                             token_lifetime=token_lifetime, seed=seed, profile=load_profile(advo_profile))
    espo_server, advo_server = serve_in_thread(espo.app), serve_in_thread(advo.app)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox = Sandbox(espo, advo, espo_server, advo_server)
    secrets = await sandbox.register_webhooks(url)
    base = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_url, host="127.0.0.1", port=port, delete_policy=delete_policy,
        http_timeout_seconds=http_timeout, advoware_profile=advo_profile,
    )
    settings = sandbox.settings(base, secrets).model_copy(update={"sandbox_mode": False})
    clock = FakeClock()
    services = build_services(settings, redis=_store(redis_url), clock=clock, policy=policy)
    host = build_host(services, cron=False, workers=workers)
    await host.start()
    server = uvicorn.Server(uvicorn.Config(host.http_app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return Testbed(espo, advo, espo_server, advo_server, services, host, url, clock, server, task,
                   dict(sandbox.webhook_ids))
