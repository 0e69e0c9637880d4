"""The Advoware access token, shared by every process through Redis, kept in memory between calls.

One key holds the token, with a TTL that ends ``margin`` seconds before the token expires, so no
process uses a token about to run out. When the key is empty, one process takes a short lock
(``SET NX PX``) and fetches a new token; the others wait for it to appear instead of all asking the
gateway at once. Works with ``redis.asyncio`` and ``fakeredis.aioredis`` clients (no Lua needed).

Each process keeps the token it read or fetched in memory until the key's TTL (read with it) runs
out, so an Advoware call costs no Redis round trip; a ``401`` drops it (:meth:`invalidate`) and the
next call reads Redis again, where another process may have stored a renewed token already.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.redis_ops import as_text as _text
from adapters.redis_ops import delete_if_equals

log = logging.getLogger(__name__)

DEFAULT_KEY = "beteiligte-sync:advoware:token"


def credentials_key(base: str, *inputs: str) -> str:
    """The cache key of the token these request inputs get: a token fetched with other settings (a
    corrected or a wrong ADVOWARE_PASSWORD, another user or Kanzlei) is never used for them, so changed
    settings are checked by Advoware at the next request. The inputs are one-way digested: nothing
    in Redis tells a password, and with the API key among the inputs nothing can be guessed either."""
    return f"{base}:{hashlib.sha256(chr(0).join(inputs).encode()).hexdigest()[:16]}"
TokenFetcher = Callable[[], Awaitable[tuple[str, float]]]
"""Fetches a fresh token from the gateway: returns ``(access_token, expires_in_seconds)``."""


class AdvowareTokenCache:
    def __init__(
        self,
        redis: Any,
        *,
        key: str = DEFAULT_KEY,
        margin: float = 60.0,
        lock_ttl_ms: int = 10_000,
        wait_timeout: float = 15.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.redis = redis
        self.key = key
        self.lock_key = key + ":lock"
        self.margin = margin
        self.lock_ttl_ms = lock_ttl_ms
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self._held: tuple[str, float] | None = None  # (token, monotonic time the key's TTL ends)

    async def get(self) -> str | None:
        """The token in Redis (not the one held in memory)."""
        return _text(await self.redis.get(self.key))

    def _hold(self, token: str, ttl_ms: int) -> None:
        self._held = (token, time.monotonic() + ttl_ms / 1000)

    def _held_token(self) -> str | None:
        if self._held is not None and time.monotonic() < self._held[1]:
            return self._held[0]
        self._held = None
        return None

    async def _read_shared(self) -> str | None:
        """The token in Redis, held in memory for what is left of its TTL (one round trip)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.key)
            pipe.pttl(self.key)
            raw, ttl_ms = await pipe.execute()
        token = _text(raw)
        if token and isinstance(ttl_ms, int) and ttl_ms > 0:
            self._hold(token, ttl_ms)
        return token

    async def store(self, token: str, expires_in: float) -> None:
        """Keep ``token`` until ``margin`` seconds before it expires.

        A token living less than twice the margin is kept for half its life instead.
        """
        ttl_ms = max(1, int(max(expires_in - self.margin, expires_in / 2) * 1000))
        await self.redis.set(self.key, token, px=ttl_ms)
        self._hold(token, ttl_ms)

    async def invalidate(self, token: str) -> bool:
        """Forget ``token`` here, and remove it from Redis only if it is still there (another process
        may have renewed it)."""
        if self._held is not None and self._held[0] == token:
            self._held = None
        return await self._delete_if(self.key, token)

    async def get_or_fetch(self, fetch: TokenFetcher) -> str:
        """The cached token, or a new one from ``fetch`` (one fetcher at a time across processes)."""
        held = self._held_token()
        if held:
            return held
        deadline = time.monotonic() + self.wait_timeout
        while True:
            token = await self._read_shared()
            if token:
                return token
            owner = secrets.token_hex(16)
            if await self.redis.set(self.lock_key, owner, nx=True, px=self.lock_ttl_ms):
                try:
                    token = await self._read_shared()  # someone may have stored one meanwhile
                    if token:
                        return token
                    token, expires_in = await fetch()
                    await self.store(token, expires_in)
                    log.debug("advoware token renewed", extra={"expires_in": expires_in})
                    return token
                finally:
                    await self._delete_if(self.lock_key, owner)
            if time.monotonic() >= deadline:
                # The lock holder is stuck or slow: fetch without it rather than fail.
                token, expires_in = await fetch()
                await self.store(token, expires_in)
                return token
            await asyncio.sleep(self.poll_interval)

    async def _delete_if(self, key: str, expected: str) -> bool:
        return await delete_if_equals(self.redis, key, expected)
