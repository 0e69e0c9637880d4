"""Facts about a system that every process shares through Redis for a while (``bsync:espocrm_facts``).

Under Motia each handler call is a new process: without this, each would ask EspoCRM for ``App/user``
and ``Metadata`` again (6 EspoCRM calls per create instead of 4). The facts are configuration (a user
id, enum options, a flag), never client data. A Redis that fails makes this a miss, not an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import redis
from redis.asyncio import Redis

log = logging.getLogger(__name__)
ESPOCRM_FACTS_KEY = "bsync:espocrm_facts"


class FactsCache:
    def __init__(self, client: Redis, key: str = ESPOCRM_FACTS_KEY) -> None:
        self.client = client
        self.key = key

    @classmethod
    def for_system(cls, client: Redis, base_url: str) -> FactsCache:
        """One entry per system address: a store reused with another EspoCRM never gets the old one's facts."""
        return cls(client, f"{ESPOCRM_FACTS_KEY}:{hashlib.sha256(base_url.encode()).hexdigest()[:16]}")

    async def get(self) -> dict[str, Any] | None:
        try:
            raw = await self.client.get(self.key)
            data = json.loads(raw) if raw else None
        except (redis.RedisError, ValueError) as exc:
            log.debug("facts cache unreadable: %s", type(exc).__name__)
            return None
        return data if isinstance(data, dict) else None

    async def put(self, facts: dict[str, Any], max_age_s: float) -> None:
        try:
            await self.client.set(self.key, json.dumps(facts), px=max(1, int(max_age_s * 1000)))
        except redis.RedisError as exc:
            log.debug("facts cache not written: %s", type(exc).__name__)
