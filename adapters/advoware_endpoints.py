"""Where the Advoware client sends its calls when they are discovered by Kanzlei (docs/advoware.md).

:class:`DiscoveredEndpoints` asks Advoware's configurator (:mod:`adapters.advoware_discovery`) once
and keeps the answer in the store (``bsync:advoware_discovery:<digest of configurator URL and
Kanzlei>``: the three URLs, when they were read and which API base is in use; no TTL, nothing
personal), so a restart, another process and every CLI command start from it without asking again.
``ADVOWARE_URL`` or ``ADVOWARE_TOKEN_URL``, when set, replace their part of the answer.

A call that cannot connect (connection refused, connect timeout, DNS) asks :meth:`connect_failed`:
the configurator is read again (at most once per ``reread_every`` seconds across every process: a
``SET NX`` slot in the store); a changed answer is used as it is, otherwise the API switches between
``connectorUrl`` and ``relayUrl`` (at most once per ``reread_every`` s: both down is no flapping).
The configurator unreachable then: the cached answer stays, and a warning says so. The client
repeats the call once on the new address. On the relay although the answer
names a connector, a call goes to the connector again once ``return_after`` seconds have passed since
the move (in each process, and after a restart): back when it is back, else one refused connect and
the relay again, so a connector's short outage does not leave the firm on the relay for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from adapters.advoware_discovery import (
    FIX,
    SYSTEM,
    ConfiguratorAnswer,
    ConfiguratorGarbage,
    DiscoveryFailed,
    ask_configurator,
)
from adapters.errors import RetryableError

log = logging.getLogger(__name__)

CACHE_KEY = "bsync:advoware_discovery"
REREAD_EVERY_S = 60.0
RETURN_AFTER_S = 900.0  # on the relay: how long before the connector is tried again
TOKEN_PATH = "/api/v1/Token"
Urls = tuple[str, str]  # (API base, token gateway base)


class ConnectFailed(RetryableError):
    """A call that could not connect (nothing was sent): the client may repeat it on another address."""

    def __init__(self, message: str, url: str, reason: str = "") -> None:
        super().__init__(message, system=SYSTEM)
        self.url = url
        self.reason = reason  # what the connect met: refused, a certificate, a name not found


class ApiBase(StrEnum):
    CONNECTOR = "connector"
    RELAY = "relay"


class Source(StrEnum):
    FRESH = "fresh from the configurator"
    CACHE = "from the store's cache"
    CACHE_CONFIGURATOR_DOWN = "from the store's cache: the configurator gave no usable answer"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class DiscoveredEndpoints:
    def __init__(self, configurator_url: str, kanzlei: str, store: Any, *, api_url: str | None = None,
                 token_url: str | None = None, timeout: float = 10.0, reread_every: float = REREAD_EVERY_S,
                 clock: Callable[[], float] = time.time, return_after: float = RETURN_AFTER_S) -> None:
        self.configurator_url = configurator_url
        self.kanzlei = kanzlei
        self._store = store  # a redis.asyncio client, or None: no cache (then re-reads are limited in memory)
        self._api_override = api_url
        self._token_override = token_url
        self.timeout = timeout
        self.reread_every = reread_every
        self.clock = clock
        self.return_after = return_after
        self._relay_since: float | None = None  # clock time of the move to the relay
        digest = hashlib.sha256(f"{configurator_url}\0{kanzlei}".encode()).hexdigest()[:16]
        self.key = f"{CACHE_KEY}:{digest}"
        self.identity = f"discovery:{configurator_url}:{kanzlei}:{api_url or ''}:{token_url or ''}"
        self.answer: ConfiguratorAnswer | None = None
        self.use = ApiBase.CONNECTOR
        self.source: Source | None = None
        self._lock = asyncio.Lock()
        self._last_reread = float("-inf")
        self._last_flip = float("-inf")  # monotonic: one move between connector and relay per reread_every

    # -- what the client uses -------------------------------------------------------------------
    def urls(self) -> Urls:
        a = self.answer
        if a is None:
            raise RuntimeError("resolve() first")
        api = a.relay_url if self.use == ApiBase.RELAY or not a.connector_url else a.connector_url
        return self._api_override or api, self._token_override or a.security_gateway

    async def resolve(self, client: httpx.AsyncClient | None = None) -> Urls:
        """The addresses: the store's cached answer, else the configurator's (then cached)."""
        if self.answer is None:
            async with self._lock:
                if self.answer is None:
                    cached = await self._cached()
                    if cached is not None:
                        self._adopt(*cached[:2], Source.CACHE, since=cached[2])
                    else:
                        self._adopt(await self._ask(client), ApiBase.CONNECTOR, Source.FRESH)
                        await self._save()
        if self._relay_since is not None and self.clock() - self._relay_since >= self.return_after:
            async with self._lock:
                await self._try_connector_again()
        return self.urls()

    async def _try_connector_again(self) -> None:
        if self.use != ApiBase.RELAY or self._relay_since is None or self.answer is None:
            return
        log.info("Advoware: on the relay since %s; trying connectorUrl %s again", _iso(self._relay_since),
                 self.answer.connector_url)
        self.use, self._relay_since = ApiBase.CONNECTOR, None
        self._last_flip = float("-inf")  # the connector still down: back to the relay at once
        await self._save()  # a connect failure moves every process back to the relay, for another period

    async def announce(self) -> str:
        """:meth:`resolve`, and the one INFO line naming what was discovered (``serve`` at start)."""
        await self.resolve()
        line = self.describe()
        log.info("Advoware discovered: %s", line)
        return line

    async def refresh(self, client: httpx.AsyncClient | None = None) -> DiscoveryFailed | None:
        """Ask the configurator now (``doctor``). When it fails and an answer is cached, that one is used
        and the failure returned; without one the failure is raised."""
        async with self._lock:
            try:
                fresh = await self._ask(client)
            except DiscoveryFailed as exc:
                cached = None if self.answer is not None else await self._cached()
                if self.answer is None and cached is None:
                    raise
                if cached is not None:
                    self._adopt(*cached[:2], Source.CACHE, since=cached[2])
                self.source = Source.CACHE_CONFIGURATOR_DOWN
                return exc
            known, use, since = self.answer, self.use, self._relay_since
            if known is None and (cached := await self._cached()) is not None:
                known, use, since = cached  # a fresh process (doctor): keep what the others learnt
            same = known is not None and fresh.same_urls(known)
            self._adopt(fresh, use if same else ApiBase.CONNECTOR, Source.FRESH, since=since if same else None)
            await self._save()
            return None

    async def connect_failed(self, client: httpx.AsyncClient, url: str, reason: str = "") -> Urls | None:
        """A call to ``url`` could not connect: the addresses to repeat it on, or None (nothing else to try)."""
        async with self._lock:
            if self.answer is None:
                return None
            before = self.urls()
            token = url.split("?", 1)[0].endswith(TOKEN_PATH)
            if not url.startswith((before[1] if token else before[0]) + "/"):
                return before  # another call moved on meanwhile: repeat on the current address
            if (self._token_override if token else self._api_override) is not None:
                return None  # a configured address: nothing discovered to switch to
            await self._move(client, token)
            after = self.urls()
        if after == before:
            return None
        log.warning("Advoware: %s cannot be reached%s: now %s", url.split("?", 1)[0],
                    f" ({reason})" if reason else "", self.describe())
        return after

    def describe(self) -> str:
        """One line: Kanzlei, the API base in use and why, the token gateway, where the answer came from."""
        if self.answer is None:
            return f"Kanzlei {self.kanzlei}: not discovered yet (configurator {self.configurator_url})"
        api, token = self.urls()
        a = self.answer
        if self._api_override:
            how = "ADVOWARE_URL"
        elif not a.connector_url:
            how = "relayUrl; the configurator names no connectorUrl"
        elif self.use == ApiBase.RELAY:
            how = f"relayUrl; connectorUrl {a.connector_url} was not reachable"
        else:
            how = "connectorUrl"
        gateway = "ADVOWARE_TOKEN_URL" if self._token_override else "securityGateway"
        return (f"Kanzlei {self.kanzlei}: API {api} ({how}), token gateway {token} ({gateway}); "
                f"{self.source}, read {_iso(a.read_at)}")

    # -- plumbing -------------------------------------------------------------------------------
    async def _move(self, client: httpx.AsyncClient, token: bool) -> None:
        """After a connect failure: a changed answer if the configurator has one, else the other API base."""
        assert self.answer is not None
        fresh = await self._reread(client)
        if fresh is None and (shared := await self._cached()) is not None:
            if not shared[0].same_urls(self.answer) or shared[1] != self.use:  # another process moved on
                self._adopt(shared[0], shared[1], self.source or Source.CACHE, since=shared[2])
                self._last_flip = time.monotonic()  # a move all the same: no flapping back at once
                return
        if fresh is not None and not fresh.same_urls(self.answer):
            self._adopt(fresh, ApiBase.CONNECTOR, Source.FRESH)
        else:
            if fresh is not None:
                self._adopt(fresh, self.use, Source.FRESH)
            if (not token and self.answer.connector_url and self.answer.relay_url
                    and time.monotonic() - self._last_flip >= self.reread_every):  # both down: no flapping
                self.use = ApiBase.RELAY if self.use == ApiBase.CONNECTOR else ApiBase.CONNECTOR
                self._relay_since = self.clock() if self.use == ApiBase.RELAY else None
                self._last_flip = time.monotonic()
        await self._save()

    async def _reread(self, client: httpx.AsyncClient) -> ConfiguratorAnswer | None:
        """The configurator's answer, when a re-read is due (one per ``reread_every`` s) and it answers."""
        if not await self._take_slot():
            return None
        try:
            return await self._ask(client)
        except DiscoveryFailed as exc:
            assert self.answer is not None
            log.warning("Advoware discovery: %s; keeping the answer read at %s", exc.message, _iso(self.answer.read_at))
            self.source = Source.CACHE_CONFIGURATOR_DOWN
            return None

    async def _take_slot(self) -> bool:
        now = time.monotonic()
        if now - self._last_reread < self.reread_every:
            return False
        if self._store is not None:
            try:
                taken = await self._store.set(f"{self.key}:reread", "1", nx=True,
                                              px=max(1, int(self.reread_every * 1000)))
                if not taken:
                    return False
            except Exception as exc:  # the store away: limited in this process only
                log.debug("discovery re-read slot not taken: %s", type(exc).__name__)
        self._last_reread = now
        return True

    async def _ask(self, client: httpx.AsyncClient | None) -> ConfiguratorAnswer:
        if client is None:
            async with httpx.AsyncClient(timeout=self.timeout) as own:
                answer = await ask_configurator(own, self.configurator_url, self.kanzlei, self.clock(), self.timeout)
        else:
            answer = await ask_configurator(client, self.configurator_url, self.kanzlei, self.clock(), self.timeout)
        if not self._token_override and not answer.security_gateway:
            raise ConfiguratorGarbage(f"Advoware's configurator {self.configurator_url} for Kanzlei "
                                      f"{self.kanzlei!r}: the answer names no securityGateway: {FIX}", system=SYSTEM)
        return answer

    def _adopt(self, answer: ConfiguratorAnswer, use: ApiBase, source: Source, since: float | None = None) -> None:
        self.answer = answer
        self.use = use if answer.connector_url and answer.relay_url else (
            ApiBase.CONNECTOR if answer.connector_url else ApiBase.RELAY)
        self.source = source
        moved = self.use == ApiBase.RELAY and bool(answer.connector_url)  # not when the relay is all there is
        self._relay_since = (since if since is not None else self._relay_since or self.clock()) if moved else None

    async def _cached(self) -> tuple[ConfiguratorAnswer, ApiBase, float | None] | None:
        if self._store is None:
            return None
        try:
            raw = await self._store.get(self.key)
            data = json.loads(raw) if raw else None
        except Exception as exc:  # the store away or garbage: ask the configurator instead
            log.debug("discovery cache unreadable: %s", type(exc).__name__)
            return None
        answer = ConfiguratorAnswer.from_json(data) if isinstance(data, dict) else None
        if answer is None or answer.kanzlei != self.kanzlei or not isinstance(data, dict):
            return None
        use = ApiBase.RELAY if data.get("use") == ApiBase.RELAY else ApiBase.CONNECTOR
        since = data.get("relay_since")
        return answer, use, float(since) if isinstance(since, int | float) else None

    async def _save(self) -> None:
        if self._store is None or self.answer is None:
            return
        try:
            await self._store.set(self.key, json.dumps({**self.answer.to_json(), "use": str(self.use),
                                                        "relay_since": self._relay_since}))
        except Exception as exc:  # the store away: the answer lives in this process
            log.debug("discovery cache not written: %s", type(exc).__name__)
