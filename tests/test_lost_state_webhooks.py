"""Issue 17 item 2: the store comes back empty (FLUSHALL) while the webhook secrets live only there (as
``webhooks register`` leaves them). Deliveries keep working without a person: the secrets are read
back from EspoCRM (the API user's own webhooks show ``secretKey``). Until then ``/ready`` is red with one
line naming the fix and deliveries get 503 (EspoCRM retries), never accepted unsigned. On a real
redis-server, both EspoCRM profiles.
"""

from __future__ import annotations

import logging
import secrets as random_secrets

import fakeredis
import httpx
import pytest

from adapters.webhook_secrets import SECRETS_KEY, WebhookSecretStore
from installation.dependency_health import Dependency, DependencyStatus
from installation.webhook_recovery import WebhookSecretRecovery
from installation.webhook_setup import HookEvent, hook_url, register
from simulators.espocrm.signing import signature_header
from simulators.faults import FaultRule
from tests.conftest import SAMPLE
from tests.test_webhook_register import Clock, FakeEspo
from tests.testbed import Testbed

pytestmark = pytest.mark.redis


async def secrets_only_stored(tb: Testbed, clock: Clock) -> None:
    """As after ``webhooks register``: the secrets in the store only, none in ESPOCRM_WEBHOOK_SECRETS.
    ``clock`` drives the intake's copy (re-read after 30 s) and the recovery's rate limit."""
    services = tb.services
    services.settings = services.settings.model_copy(update={"espocrm_webhook_secrets": {}})
    store = WebhookSecretStore(services.redis, clock=clock)
    services.stored_secrets = store
    recovery = services.secret_recovery
    recovery.store, recovery.env, recovery.clock = store, {}, clock
    await register(services.espo, store, tb.url, {})  # reuses the testbed's three webhooks


async def lose_the_store(tb: Testbed, clock: Clock) -> None:
    """Redis comes back empty; the intake's copy of the secrets ages out (30 s)."""
    await tb.services.redis.flushall()
    clock.now += 31.0


async def webhooks_state(tb: Testbed) -> tuple[DependencyStatus, str | None]:
    states = {s.name: s for s in await tb.services.dependencies.check()}
    state = states[Dependency.WEBHOOKS]
    return state.status, state.last_error


async def test_deliveries_work_again_after_the_store_was_emptied(firm_both: Testbed) -> None:
    tb, clock = firm_both, Clock()
    await secrets_only_stored(tb, clock)
    first = tb.espo.seed(**SAMPLE)["id"]
    await tb.flush()
    assert tb.espo_record(first)["syncStatus"] == "clean"

    await lose_the_store(tb, clock)
    second = tb.espo.seed(**{**SAMPLE, "firstName": "Berta", "lastName": "Zweite"})["id"]
    results = await tb.flush()
    assert {r.status for r in results} == {200}, [(r.event, r.status) for r in results]
    assert tb.espo_record(second)["syncStatus"] == "clean" and tb.espo_record(second)["betnr"]
    assert await tb.services.redis.hlen(SECRETS_KEY) == 3  # all three read back from EspoCRM
    assert await webhooks_state(tb) == (DependencyStatus.OK, None)


async def test_until_recovered_ready_is_red_deliveries_get_503_and_one_line_names_the_fix(
        firm_both: Testbed, caplog: pytest.LogCaptureFixture) -> None:
    tb, clock = firm_both, Clock()
    await secrets_only_stored(tb, clock)
    await lose_the_store(tb, clock)
    tb.espo.faults.add(FaultRule(method="GET", path=r"/Webhook$", status=500, times=None))
    with caplog.at_level(logging.WARNING):
        status, line = await webhooks_state(tb)
        assert status == DependencyStatus.FAILING and line is not None
        assert "webhooks register" in line and "503" in line
        async with httpx.AsyncClient(base_url=tb.url) as http:
            ready = await http.get("/ready")
        assert ready.status_code == 503 and ready.json()["dependencies"]["webhooks"]["status"] == "failing"

        rec = tb.espo.seed(**SAMPLE)["id"]
        results = await tb.flush()
        assert {r.status for r in results} == {503}  # cannot be verified yet: EspoCRM keeps the batch
        assert {r.outcome for r in results} == {"retry"}
        assert tb.espo_record(rec)["syncStatus"] != "clean" and not tb.espo_record(rec).get("betnr")
        await webhooks_state(tb)  # a second round: no second line
    named = [r for r in caplog.records if "webhooks register" in r.getMessage()]
    assert len(named) == 1, [r.getMessage() for r in named]

    tb.espo.faults.clear()
    clock.now += 10.0  # the recovery's rate limit
    results = await tb.flush()  # EspoCRM's retry of the kept batch
    assert 200 in {r.status for r in results}
    assert tb.espo_record(rec)["syncStatus"] == "clean"
    assert await webhooks_state(tb) == (DependencyStatus.OK, line)  # the last error stays on record


async def test_forged_deliveries_cannot_make_the_service_hammer_espocrm(firm_both: Testbed) -> None:
    tb, clock = firm_both, Clock()
    await secrets_only_stored(tb, clock)
    tb.espo.calls.reset()
    body = b'[{"id": "0123456789abcdef0"}]'
    async with httpx.AsyncClient(base_url=tb.url) as http:
        answers = []
        for _ in range(50):
            forged = random_secrets.token_hex(8) + "a"
            headers = {"Content-Type": "application/json",
                       "Signature": signature_header(forged, random_secrets.token_hex(16), body)}
            answers.append((await http.post("/vmh/webhook/beteiligte/create", content=body, headers=headers))
                           .status_code)
        unsigned = await http.post("/vmh/webhook/beteiligte/create", content=body,
                                   headers={"Content-Type": "application/json"})
    assert set(answers) == {401} and unsigned.status_code == 401
    assert tb.espo.calls.snapshot().get("GET /api/v1/Webhook", 0) == 1  # one read per 10 s, whatever comes
    assert tb.host.queue_depth() == 0


async def test_secrets_espocrm_does_not_show_are_registered_again_when_the_url_is_known() -> None:
    url = "https://sync.example"
    hidden = [{"id": f"{i}" * 17, "event": f"CBeteiligte.{e}", "url": f"{url}/vmh/webhook/beteiligte/{e}",
               "isActive": True} for i, e in enumerate(("create", "update", "delete"))]
    store = WebhookSecretStore(fakeredis.FakeAsyncRedis())
    without_url = WebhookSecretRecovery(FakeEspo(list(hidden)), store, {})  # type: ignore[arg-type]
    with pytest.raises(Exception, match="webhooks register") as failed:
        await without_url.ensure()
    assert "0" * 17 in str(failed.value) and await store.load() == {}

    espo = FakeEspo(list(hidden))
    with_url = WebhookSecretRecovery(espo, store, {}, public_url=url)  # type: ignore[arg-type]
    await with_url.ensure()
    assert [h["url"] for h in espo.created] == [hook_url(url, e) for e in HookEvent]
    assert await store.load() == {h["id"]: h["secretKey"] for h in espo.created}
