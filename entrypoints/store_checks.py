"""What every command checks about its store before it uses it (issue 18):

- the Redis server's settings (:mod:`adapters.redis_settings`): an evicting ``maxmemory-policy`` is
  refused, missing persistence is a warning (logged by ``serve``; ``doctor`` shows it too);
- the state's format version (:mod:`adapters.state_format`): ``serve`` migrates an older one, every
  command refuses a newer one.

A Redis that does not answer yet is not refused here: ``serve`` starts anyway and reports it as a
failing dependency (docs/reliability.md, "Redis outages"); the checks then run at its next start.
"""

from __future__ import annotations

import logging

import redis

from adapters.embedded_redis import EmbeddedRedis, StartupError
from adapters.redis_settings import RedisSettingsRefused
from adapters.redis_settings import check as check_redis_settings
from adapters.state_format import StateFormatRefused, ensure_current
from config.settings import Settings
from config.version import package_version

log = logging.getLogger(__name__)
TIMEOUT_S = 5.0


class StoreUnfit(StartupError):
    """One line naming the fix."""


def _client(settings: Settings, embedded: EmbeddedRedis | None) -> redis.Redis:
    if embedded is not None:
        return embedded.sync_client()
    return redis.Redis.from_url(str(settings.redis_url), socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)


def check_store(settings: Settings, embedded: EmbeddedRedis | None, *, serve: bool) -> None:
    """Raise :class:`StoreUnfit` when this process must not use the store; ``serve`` migrates its state."""
    try:
        with _client(settings, embedded) as client:
            warning = check_redis_settings(client)
            if warning and serve:
                log.warning(warning)
            found = ensure_current(client, version=package_version(), migrate=serve)
    except (RedisSettingsRefused, StateFormatRefused) as exc:
        raise StoreUnfit(str(exc)) from None
    except redis.RedisError as exc:  # a command reports the unreachable store itself, in its one line
        log.log(logging.WARNING if serve else logging.DEBUG, "the store's settings and state format could not "
                "be checked (%s): checked at the next start", type(exc).__name__)
        return
    if found is None:
        log.debug("an empty store: labelled with this release's state format")
