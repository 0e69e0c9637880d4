"""What the Redis server is set to, and whether the sync may keep its state there.

The sync keeps leases, link state (bases), queued events, dead letters, webhook secrets and history in
Redis. Two settings decide whether that survives:

- ``maxmemory-policy``: anything but ``noeviction`` lets Redis delete keys when memory is full (the
  ``volatile-*`` policies delete exactly the keys with a TTL, such as leases): refused.
- persistence (``appendonly``, ``save``): without it a Redis restart loses everything above: a warning.

Read with ``CONFIG GET``; where ``CONFIG`` is disabled or renamed (managed Redis), from ``INFO memory``
and ``INFO persistence`` (which show the policy and whether AOF is on, not the RDB schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

NO_EVICTION = "noeviction"
LOST_ON_RESTART = ("the links and bases of every record, queued events, dead letters, the webhook secrets "
                   "and the sync history")
POLICY_FIX = ("set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction; "
              "docs/install.md → Redis)")
PERSISTENCE_FIX = "set appendonly yes and appendfsync everysec (docs/install.md → Redis)"


class Source(StrEnum):
    CONFIG = "CONFIG GET"
    INFO = "INFO"


class RedisSettingsRefused(Exception):
    """The Redis would drop the sync's state; the message is one line naming the fix."""


@dataclass(frozen=True)
class RedisFacts:
    policy: str
    aof: bool
    rdb: bool | None  # None: not readable (CONFIG disabled)
    source: Source

    def refusal(self) -> str | None:
        if self.policy == NO_EVICTION:
            return None
        return (f"Redis maxmemory-policy is {self.policy}: when memory is full it deletes keys the sync needs "
                f"(leases, bases, queued events): {POLICY_FIX}")

    def warning(self) -> str | None:
        if self.aof:
            return None
        if self.rdb:
            return (f"Redis has no append-only file, only RDB snapshots: a Redis crash loses what changed since "
                    f"the last snapshot ({LOST_ON_RESTART}): {PERSISTENCE_FIX}")
        what = "no persistence" if self.rdb is False else "no append-only file (RDB schedule unreadable, CONFIG is off)"
        return f"Redis has {what}: a Redis restart loses {LOST_ON_RESTART}: {PERSISTENCE_FIX}"

    def describe(self) -> str:
        persistence = "AOF" if self.aof else ("RDB only" if self.rdb else "no AOF")
        return f"maxmemory-policy {self.policy}, {persistence} (read with {self.source})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_config(config: dict[Any, Any]) -> RedisFacts:
    values = {_text(k): _text(v) for k, v in config.items()}
    return RedisFacts(values.get("maxmemory-policy", NO_EVICTION), values.get("appendonly", "no") == "yes",
                      bool(values.get("save", "").strip()), Source.CONFIG)


def _from_info(memory: dict[str, Any], persistence: dict[str, Any]) -> RedisFacts:
    return RedisFacts(_text(memory.get("maxmemory_policy", NO_EVICTION)), str(persistence.get("aof_enabled")) == "1",
                      None, Source.INFO)


PARAMETERS = ("maxmemory-policy", "appendonly", "save")


def read_facts(client: redis.Redis) -> RedisFacts:
    try:
        config: dict[Any, Any] = {}
        for name in PARAMETERS:  # one at a time: several names in one CONFIG GET need Redis 7
            config.update(client.config_get(name))
        return _from_config(config)
    except redis.ResponseError:  # CONFIG disabled or renamed
        return _from_info(client.info("memory"), client.info("persistence"))


async def read_facts_async(client: AsyncRedis) -> RedisFacts:
    try:
        config: dict[Any, Any] = {}
        for name in PARAMETERS:
            config.update(await client.config_get(name))
        return _from_config(config)
    except redis.ResponseError:
        return _from_info(await client.info("memory"), await client.info("persistence"))


def check(client: redis.Redis) -> str | None:
    """Raise :class:`RedisSettingsRefused` for an evicting policy; the persistence warning, if any."""
    facts = read_facts(client)
    refusal = facts.refusal()
    if refusal:
        raise RedisSettingsRefused(refusal)
    return facts.warning()
