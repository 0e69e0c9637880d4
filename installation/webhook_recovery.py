"""Webhook secrets lost with the store (Redis came back empty): read back from EspoCRM, without a person.

``webhooks register`` keeps each webhook's secret only in the store (:mod:`adapters.webhook_secrets`).
When the store comes back empty (no persistence, a reset of the embedded store, a failover to an
empty replica) every delivery would be refused until someone registers again. EspoCRM still has the
webhooks, and ``secretKey`` is a readable field of the Webhook entity for the API user who owns
them, so the service reads its own webhooks back (``GET /Webhook``: EspoCRM shows an API user only
the webhooks it created) and stores the secret of each one that sends a ``CBeteiligte`` event to a
``/vmh/webhook/beteiligte/<event>`` URL of the same event.

When:

- at the start of ``serve`` and at every dependency check (:meth:`WebhookSecretRecovery.ensure`, the
  ``webhooks`` entry of ``/ready``): only when no secret is stored and ``ESPOCRM_WEBHOOK_SECRETS``
  is empty, otherwise it costs one ``EXISTS``;
- when a delivery names a webhook id without a known secret (:meth:`WebhookSecretRecovery.recover_for`):
  at most one EspoCRM read per :data:`MIN_INTERVAL_S`, shared by every delivery arriving meanwhile, so
  unsigned or forged requests cannot make the service hammer EspoCRM. A delivery within that time on
  a store without secrets is answered 503 (retried), not 401.

When EspoCRM shows a webhook of ours without its secret, and ``PUBLIC_URL`` is set, the three webhooks
are registered again as ``webhooks register`` does (:func:`installation.webhook_setup.register`). Until the
secrets are back, ``ensure`` fails with one line naming the fix (``/ready`` red, logged once) and
:meth:`WebhookSecretRecovery.pending` tells the intake to answer ``503`` (EspoCRM retries the batch)
rather than ``401``: the signature cannot be checked yet, which is not the same as a wrong one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from adapters.errors import ApiError
from adapters.webhook_secrets import WebhookSecretStore
from installation.dependency_health import NamedFix
from installation.webhook_setup import HookEvent, Webhook, list_webhooks, register

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 10.0  # at most one EspoCRM read per this many seconds from deliveries
REGISTER = "beteiligte-sync webhooks register --public-url <the URL EspoCRM reaches this service by>"


class SecretsState(StrEnum):
    UNKNOWN = "unknown"  # not looked yet
    OK = "ok"  # stored, given in the environment, or nothing of ours to recover
    PENDING = "pending"  # lost with the store; EspoCRM could not be asked yet
    UNRECOVERABLE = "unrecoverable"  # EspoCRM has webhooks of ours but does not show their secrets


class SecretsNotRecovered(NamedFix):
    """The webhook secrets are gone and not back yet; the message is the operator's one line."""


def is_ours(hook: Webhook) -> bool:
    """A webhook that sends one of our events to our receiver of that same event."""
    return any(hook.event == e.espo_event and hook.url.rstrip("/").endswith(f"/vmh/webhook/beteiligte/{e.value}")
               for e in HookEvent)


class WebhookSecretRecovery:
    def __init__(self, espo: EspoCRMAPI, store: WebhookSecretStore, env: Mapping[str, str], *,
                 public_url: str | None = None, min_interval: float = MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.espo = espo
        self.store = store
        self.env = dict(env)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.min_interval = min_interval
        self.clock = clock
        self._lock = asyncio.Lock()
        self._last_try: float | None = None
        self.state = SecretsState.UNKNOWN
        self._problem = ""

    def pending(self) -> bool:
        """The secrets are lost and EspoCRM could not be asked yet: a signature cannot be checked now."""
        return self.state == SecretsState.PENDING

    async def ensure(self) -> None:
        """The readiness check: returns when deliveries can be verified; else :class:`SecretsNotRecovered`."""
        try:
            present = bool(self.env) or bool(await self.store.redis.exists(self.store.key))
        except (RedisError, OSError):
            present = True  # the store is away: the Redis check says so; the secrets are judged when it is back
        if present:
            if self.state != SecretsState.UNRECOVERABLE:
                self.state = SecretsState.OK
        else:
            async with self._lock:
                await self._recover()
        if self.state in (SecretsState.PENDING, SecretsState.UNRECOVERABLE):
            raise SecretsNotRecovered(self._problem)

    async def recover_for(self, webhook_id: str) -> bool:
        """A delivery names ``webhook_id`` without a known secret: read EspoCRM's webhooks back unless
        that was done less than ``min_interval`` ago. True when its secret is stored now."""
        try:
            async with self._lock:
                if self._last_try is not None and self.clock() - self._last_try < self.min_interval:
                    if not self.env and not await self.store.redis.exists(self.store.key):
                        self._lost("the last read of EspoCRM's webhooks was moments ago", anything_known=False)
                    return False
                self._last_try = self.clock()
                await self._recover()
            return webhook_id in await self.store.load()
        except (RedisError, OSError):  # the store is away: nothing can be queued either (503 follows)
            return False

    async def _recover(self) -> None:
        stored = await self.store.load()
        known = {**stored, **self.env}
        try:
            listing = await list_webhooks(self.espo)
            ours = [h for h in listing.hooks if h.active and is_ours(h)]
            saved = [h.id for h in ours if h.secret and stored.get(h.id) != h.secret]
            for hook in ours:
                if hook.secret and hook.id in saved:
                    await self.store.save(hook.id, hook.secret)
            hidden = [h.id for h in ours if not h.secret and h.id not in known]
            if hidden and self.public_url:
                await register(self.espo, self.store, self.public_url, self.env)
                log.warning("webhook secrets: registered the webhooks again (EspoCRM did not show the secrets of %s)",
                            ", ".join(hidden))
                hidden = []
        except ApiError as exc:
            self._lost(f"EspoCRM could not be asked ({_short(exc)})", anything_known=bool(known))
            return
        if saved:
            log.warning("webhook secrets: read %d back from EspoCRM (%s); deliveries are verified again",
                        len(saved), ", ".join(saved))
        if hidden:
            self.state = SecretsState.UNRECOVERABLE
            self._problem = (f"Webhook secrets: EspoCRM does not show the secret of webhook {', '.join(hidden)} and "
                             f"the store has none: its deliveries are refused → run {REGISTER} (or set PUBLIC_URL: "
                             "serve then registers them itself)")
            return
        self.state = SecretsState.OK

    def _lost(self, why: str, *, anything_known: bool) -> None:
        """Could not look; only a problem when no secret at all is known (the store came back empty)."""
        if anything_known:
            if self.state != SecretsState.UNRECOVERABLE:
                self.state = SecretsState.OK
            return
        self.state = SecretsState.PENDING
        self._problem = (f"Webhook secrets: not in the store (emptied?) and not recovered yet: {why}; deliveries "
                         f"are answered 503 (EspoCRM retries) until EspoCRM answers; if this lasts, run {REGISTER}")


def _short(exc: ApiError) -> str:
    return f"HTTP {exc.status}" if exc.status else type(exc).__name__
