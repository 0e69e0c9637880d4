"""``webhooks register`` in-process on both profiles: idempotent, secrets stored, and the running service
accepts deliveries signed with a stored secret (loaded on first use, re-read for an unknown id)."""

from __future__ import annotations

from typing import Any

import fakeredis

from adapters.webhook_secrets import WebhookSecretStore
from installation.webhook_setup import HookEvent, Outcome, hook_url, register
from tests.conftest import SAMPLE
from tests.testbed import Testbed


class StoreDown:
    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        raise ConnectionError("store down")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drop_all_webhooks(tb: Testbed) -> None:
    """EspoCRM without the testbed's webhooks (whose secrets the service has from its settings)."""
    for hook in tb.espo.webhooks:
        tb.espo.remove_webhook(hook["id"])


async def test_register_twice_gives_three_webhooks_with_stored_secrets(tb: Testbed) -> None:
    drop_all_webhooks(tb)
    store = tb.services.stored_secrets
    first, _ = await register(tb.services.espo, store, tb.url, {})
    second, _ = await register(tb.services.espo, store, tb.url, {})
    assert [r.outcome for r in first] == [Outcome.CREATED] * 3
    assert [r.outcome for r in second] == [Outcome.REUSED] * 3
    hooks = tb.espo.webhooks
    assert len(hooks) == 3 and {h["id"] for h in hooks} == {r.webhook_id for r in first}
    assert {h["url"] for h in hooks} == {hook_url(tb.url, e) for e in HookEvent}
    assert await store.load() == {h["id"]: h["secretKey"] for h in hooks}


async def test_a_running_service_accepts_stored_secrets_and_rereads_for_an_unknown_id(tb: Testbed) -> None:
    clock = Clock()
    tb.services.stored_secrets = WebhookSecretStore(tb.services.redis, clock=clock)
    drop_all_webhooks(tb)
    await register(tb.services.espo, tb.services.stored_secrets, tb.url, {})
    first = tb.espo.seed(**SAMPLE)["id"]
    await tb.flush()  # the first webhook loads the stored secrets
    assert tb.espo_record(first)["syncStatus"] == "clean"

    drop_all_webhooks(tb)  # registered anew while the service runs: ids it has not seen
    await register(tb.services.espo, tb.services.stored_secrets, tb.url, {})
    second = tb.espo.seed(**{**SAMPLE, "lastName": "Zweite"})["id"]
    results = await tb.flush()
    # The copy was read less than a second ago, so it is not read again for the unknown id; the secret
    # recovery (installation.webhook_recovery, at most once per 10 s) asks EspoCRM and the store, finds it.
    assert {r.status for r in results} == {200}
    assert tb.espo_record(second)["syncStatus"] == "clean"


class FakeEspo:
    """GET /Webhook without secretKey (EspoCRM may hide it), and the calls register makes."""

    def __init__(self, hooks: list[dict[str, Any]]) -> None:
        self.hooks = hooks
        self.deleted: list[str] = []
        self.created: list[dict[str, Any]] = []

    async def list(self, entity: str, **_: Any) -> dict[str, Any]:
        return {"total": len(self.hooks), "list": self.hooks}

    async def delete(self, entity: str, webhook_id: str) -> None:
        self.deleted.append(webhook_id)

    async def register_webhook(self, event: str, url: str, skip_own: bool = True) -> dict[str, Any]:
        hook = {"id": f"new{len(self.created):014d}", "event": event, "url": url, "skipOwn": skip_own,
                "secretKey": f"{len(self.created):032d}"}
        self.created.append(hook)
        return hook


async def test_register_replaces_unknown_secrets_and_skip_own_off_and_removes_duplicates() -> None:
    url = "https://sync.example"
    create, update, delete = (hook_url(url, e) for e in HookEvent)
    espo = FakeEspo([
        {"id": "a" * 17, "event": "CBeteiligte.create", "url": create, "isActive": True},  # secret unknown
        {"id": "b" * 17, "event": "CBeteiligte.update", "url": update, "isActive": True, "skipOwn": False},
        {"id": "c" * 17, "event": "CBeteiligte.delete", "url": delete, "isActive": True},
        {"id": "d" * 17, "event": "CBeteiligte.delete", "url": delete, "isActive": True},  # duplicate
    ])
    store = WebhookSecretStore(fakeredis.FakeAsyncRedis())
    await store.save("e" * 17, "f" * 32)  # a webhook EspoCRM no longer has
    known = {"b" * 17: "1" * 32, "c" * 17: "2" * 32}
    done, forgotten = await register(espo, store, url, known)  # type: ignore[arg-type]
    assert [r.outcome for r in done] == [Outcome.REPLACED, Outcome.REPLACED, Outcome.REUSED]
    assert espo.deleted == ["a" * 17, "b" * 17, "d" * 17] and forgotten == ["e" * 17]
    assert await store.load() == {"new00000000000000": "0" * 32, "new00000000000001": "1".zfill(32),
                                  "c" * 17: "2" * 32}


async def test_secret_copy_ages_out_and_survives_a_store_outage() -> None:
    clock = Clock()
    redis = fakeredis.FakeAsyncRedis()
    store = WebhookSecretStore(redis, clock=clock)
    await store.save("h1", "s1")
    assert await store.refresh() and store.cached() == {"h1": "s1"}
    await store.save("h2", "s2")
    clock.now += 29.0
    assert not await store.refresh() and "h2" not in store.cached()
    clock.now += 1.0
    assert await store.refresh() and store.cached() == {"h1": "s1", "h2": "s2"}
    store.redis = StoreDown()
    clock.now += 30.0
    assert not await store.refresh() and store.cached() == {"h1": "s1", "h2": "s2"}
