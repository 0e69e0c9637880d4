"""The whole installation in one process without a socket: the fast twin of ``tests/testbed.py``.

The services are built by the production composition root (:func:`entrypoints.bootstrap.build_services`)
with the in-memory fakes in place of the two HTTP clients, on fakeredis; the step host is the real one,
and webhook batches reach its HTTP app in-process (``httpx.ASGITransport``), signed as EspoCRM signs
them. The simulators, their direct methods, call counters and injected faults are the same as the
HTTP testbed's, so a test of the sync's logic runs unchanged on either (``fast_tb`` in conftest).
Keep HTTP (``tb``) for what is about the wire: clients, tokens, timeouts, webhook delivery itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import fakeredis
import httpx

from adapters.advoware_api import AdvowareAPI
from adapters.espocrm_api import EspoCRMAPI
from config.settings import Settings
from domain.conflict_policy import ConflictPolicy
from entrypoints.bootstrap import build_services
from entrypoints.runtime import build_host
from entrypoints.sandbox import EVENTS, Sandbox
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle
from simulators.espocrm.fields import ENTITY, GERMAN_SALUTATIONS
from simulators.espocrm.profiles import Profile
from simulators.espocrm.signing import Verdict, classify_answer, delivery_headers, php_json_encode
from simulators.espocrm.simulator import EspoCRMSimulator
from simulators.espocrm.webhooks import DeliveryResult
from tests.fakes.advoware import FakeAdvoware
from tests.fakes.espocrm import FakeEspoCRM
from tests.testbed import FakeClock, Testbed

SERVICE_URL = "http://beteiligte-sync.test"
ESPO_URL, ADVO_URL = "http://espocrm.test", "http://advoware.test"
OUTCOMES = {Verdict.DONE: "done", Verdict.DROP: "dropped", Verdict.DELETE: "webhook_deleted", Verdict.RETRY: "retry"}


class FastBed(Testbed):
    """A :class:`Testbed` whose service talks to the simulators through the fakes."""

    __test__ = False
    webhook_client: httpx.AsyncClient

    async def flush(self, wait_s: float = 30.0) -> list[Any]:
        """Deliver every webhook event queued now (in batches of up to 50 per webhook) and wait until
        the service has handled them; events queued meanwhile wait for the next ``flush``."""
        results: list[Any] = []
        for sub, items in self.espo.take_webhook_events():
            results.append(await self._deliver(sub, items))
        await self.host.drain(wait_s)
        return results

    async def _deliver(self, sub: dict[str, Any], items: list[dict[str, Any]]) -> DeliveryResult:
        body = php_json_encode(items)
        headers = delivery_headers(sub["id"], sub["secretKey"], body,
                                   with_signature=self.espo.behaviour.sends_signature_header)
        resp = await self.webhook_client.post(sub["url"], content=body, headers=headers)
        outcome = OUTCOMES[classify_answer(resp.status_code)]
        return DeliveryResult(webhook_id=sub["id"], event=sub["event"], url=sub["url"], status=resp.status_code,
                              outcome=outcome, attempt=1, item_count=len(items))

    async def close(self) -> None:
        await super().close()
        await self.webhook_client.aclose()


async def start_fast_testbed(
    *,
    policy: ConflictPolicy | None = None,
    delete_policy: str = "unlink",
    post_returns_rowid: bool = True,
    list_endpoint: bool = True,
    workers: int = 4,
    http_timeout: float = 5.0,
    seed: int | None = 1,
    espo_profile: Profile | str = Profile.V9,
    occ: bool = False,
    salutation_options: Sequence[str] = GERMAN_SALUTATIONS,
    phone_international: bool = True,
    redis: Any = None,
) -> FastBed:
    """A started installation on the fakes; the arguments are :func:`tests.testbed.start_testbed`'s.
    ``redis``: a client of a real redis-server (its Lua scripts, not fakeredis's WATCH/MULTI forms);
    the caller empties and closes it."""
    espo = EspoCRMSimulator(seed=seed, webhook_timeout_s=http_timeout, profile=espo_profile, occ=occ,
                            salutation_options=salutation_options, phone_international=phone_international)
    advo = AdvowareSimulator(post_returns_rowid=post_returns_rowid, list_endpoint=list_endpoint, seed=seed)
    registrar = FakeEspoCRM(espo)
    secrets, webhook_ids = {}, {}
    for event in EVENTS:
        hook = await registrar.register_webhook(f"{ENTITY}.{event}", f"{SERVICE_URL}/vmh/webhook/beteiligte/{event}")
        secrets[hook["id"]], webhook_ids[event] = hook["secretKey"], hook["id"]
    base = Settings(_env_file=None, delete_policy=delete_policy,  # type: ignore[call-arg]
                    http_timeout_seconds=http_timeout)
    addresses = Sandbox(espo, advo, cast(ServerHandle, SimpleNamespace(url=ESPO_URL)),
                        cast(ServerHandle, SimpleNamespace(url=ADVO_URL)))
    settings = addresses.settings(base, secrets).model_copy(update={"sandbox_mode": False})
    clock = FakeClock()

    fake_espo = FakeEspoCRM(espo, timeout=settings.http_timeout_seconds)
    fake_advo = FakeAdvoware(advo, timeout=settings.http_timeout_seconds, timezone=settings.advoware_timezone)
    store = redis if redis is not None else fakeredis.FakeAsyncRedis()
    services = build_services(settings, redis=store, clock=clock, policy=policy,
                              espo=cast(EspoCRMAPI, fake_espo), advo=cast(AdvowareAPI, fake_advo))
    host = build_host(services, cron=False, workers=workers)
    await host.start()
    bed = FastBed(espo, advo, None, None, services, host, SERVICE_URL, clock, webhook_ids=webhook_ids)
    bed.webhook_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=host.http_app), base_url=SERVICE_URL)
    return bed
