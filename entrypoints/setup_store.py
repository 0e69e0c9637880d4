"""The store for ``doctor`` and ``webhooks``: the one ``serve`` uses (``REDIS_URL`` or the embedded store)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.asyncio import Redis

from adapters.embedded_redis import EmbeddedRedis
from config.settings import Settings
from entrypoints.store_guard import refuse_unshared


@dataclass
class OpenStore:
    redis: Redis
    description: str  # for output: never a password

    async def aclose(self) -> None:
        await self.redis.aclose()


def redacted(url: str) -> str:
    """A Redis URL without user and password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def open_store(settings: Settings, *, timeout: float) -> OpenStore:
    """Connect as every command does; raises :class:`adapters.embedded_redis.StartupError` (one line) when the
    embedded store cannot start or would not be the one ``serve`` uses. Blocking: run it in a thread."""
    if settings.redis_url:
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return OpenStore(client, f"Redis at {redacted(settings.redis_url)}")
    embedded = EmbeddedRedis.for_settings(settings)
    refuse_unshared(settings, embedded)
    embedded.ensure_running()
    return OpenStore(embedded.client(), embedded.describe())
