"""Webhook secrets kept in the service's store, so ``ESPOCRM_WEBHOOK_SECRETS`` need not be copied by hand.

``beteiligte-sync webhooks register`` writes each webhook's secret to one Redis hash
(``bsync:webhook_secrets``: webhook id -> secret key), in the store every process shares (``REDIS_URL``
or the embedded store). The webhook intake checks signatures synchronously against a copy held in
memory, kept fresh like this:

- loaded on the first webhook a process receives;
- read again when the copy is older than ``max_age`` (30 s), so a secret removed from the store stops
  being accepted within that time;
- read again at once when a signature names a webhook id the copy does not know (a webhook registered
  while ``serve`` runs works with its first delivery), at most once per ``min_interval`` (1 s), so
  forged ids cannot turn every request into a Redis read.

A failed read keeps the last copy (the intake then answers as it would have before). Secrets from the
environment are merged over the stored ones by :meth:`entrypoints.bootstrap.Services.webhook_secrets`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from adapters.redis_ops import as_text

log = logging.getLogger(__name__)

SECRETS_KEY = "bsync:webhook_secrets"
MAX_AGE_S = 30.0
MIN_INTERVAL_S = 1.0


class WebhookSecretStore:
    def __init__(
        self,
        redis: Any,
        *,
        key: str = SECRETS_KEY,
        max_age: float = MAX_AGE_S,
        min_interval: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.key = key
        self.max_age = max_age
        self.min_interval = min_interval
        self._clock = clock
        self._cached: dict[str, str] = {}
        self._attempted_at: float | None = None  # last read attempt, successful or not
        self._lock = asyncio.Lock()

    # -- the store itself (used by ``webhooks register``, ``webhooks list`` and ``doctor``) -------
    async def save(self, webhook_id: str, secret: str) -> None:
        await self.redis.hset(self.key, webhook_id, secret)

    async def forget(self, *webhook_ids: str) -> None:
        if webhook_ids:
            await self.redis.hdel(self.key, *webhook_ids)

    async def load(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.key)
        return {str(as_text(k)): str(as_text(v)) for k, v in raw.items()}

    # -- the intake's copy -------------------------------------------------------------------------
    def cached(self) -> dict[str, str]:
        return self._cached

    async def refresh(self, *, unknown_id: bool = False, force: bool = False) -> bool:
        """Read the store if the copy is due: never read, older than ``max_age``, or (``unknown_id``) a
        signature named an id it lacks and the last read is ``min_interval`` ago; ``force``: now (secrets
        were just stored by :mod:`installation.webhook_recovery`). True if it was read."""
        async with self._lock:
            if not force and not self._due(unknown_id):
                return False
            self._attempted_at = self._clock()
            try:
                self._cached = await self.load()
            except Exception as exc:  # the store is down: keep the last copy; the intake answers alone
                log.warning("stored webhook secrets unreadable, keeping the last copy: %s", type(exc).__name__)
                return False
            return True

    def _due(self, unknown_id: bool) -> bool:
        if self._attempted_at is None:
            return True
        age = self._clock() - self._attempted_at
        return age >= (self.min_interval if unknown_id else self.max_age)
