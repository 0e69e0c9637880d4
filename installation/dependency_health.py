"""Are EspoCRM, Advoware and Redis usable right now? Checked at start and every N seconds by ``serve``.

Each check is what the sync itself needs: EspoCRM accepts the API key and lets it read ``CBeteiligte``
(one list read of one record), Advoware issues a token and answers one read, Redis answers ``PING``.
A check that raises, or gives no answer within its timeout, makes that dependency ``failing`` with one
line naming the setting to fix (:func:`explain`); the state changes are logged once each (not every
round). The latest states are kept in memory (:meth:`DependencyHealth.snapshot`, for ``/health`` and
``/ready``) and in the store (``bsync:dependencies``, :func:`read_stored`), so other processes (the
status page, ``status``) see what ``serve`` found.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis.exceptions
from redis.asyncio import Redis

from adapters.advoware_api import AdvowareAPI
from adapters.advoware_discovery import DiscoveryFailed
from adapters.advoware_token_cache import AdvowareTokenCache, TokenFetcher
from adapters.background import bounded, pause
from adapters.errors import (
    ApiError,
    AuthenticationError,
    DeferredError,
    ForbiddenError,
    NotFoundError,
    RetryableError,
)
from adapters.espocrm_api import EspoCRMAPI
from domain.sync_status import ENTITY

log = logging.getLogger(__name__)

STATE_KEY = "bsync:dependencies"
PROBE_BETNR = 1
ADVO_CREDENTIALS = ("ADVOWARE_APP_ID, ADVOWARE_API_KEY, ADVOWARE_KANZLEI, ADVOWARE_DATABASE, ADVOWARE_USER and "
                    "ADVOWARE_PASSWORD")
REDIS_URL_FIX = "check REDIS_URL and that its Redis is running"
EMBEDDED_FIX = "serve starts the embedded store again by itself; if it does not, see STATE_DIR/redis.log"


class Dependency(StrEnum):
    ESPOCRM = "espocrm"
    ADVOWARE = "advoware"
    REDIS = "redis"
    WEBHOOKS = "webhooks"  # the webhook secrets: verifiable deliveries (installation.webhook_recovery)


LABELS = {Dependency.ESPOCRM: "EspoCRM", Dependency.ADVOWARE: "Advoware", Dependency.REDIS: "Redis",
          Dependency.WEBHOOKS: "Webhook secrets"}


class NamedFix(Exception):
    """A failed check whose message is already the operator's one line (what is wrong, and the fix)."""


class DependencyStatus(StrEnum):
    UNKNOWN = "unknown"  # not checked yet
    OK = "ok"
    FAILING = "failing"


@dataclass(frozen=True)
class DependencyState:
    name: Dependency
    status: DependencyStatus = DependencyStatus.UNKNOWN
    since: float | None = None  # when the current status began (epoch seconds)
    checked_at: float | None = None
    last_error: str | None = None  # one line naming the fix; kept after recovery for the record

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "since": _iso(self.since), "checked_at": _iso(self.checked_at)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DependencyState:
        return cls(Dependency(data["name"]), DependencyStatus(data["status"]), _epoch(data.get("since")),
                   _epoch(data.get("checked_at")), data.get("last_error"))


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") if t is not None else None


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


Probe = Callable[[], Awaitable[object]]


def explain(exc: BaseException, dependency: Dependency | None = None, *, redis_fix: str = REDIS_URL_FIX) -> str:
    """One line for an operator: which system, what happened, which setting to check."""
    if isinstance(exc, NamedFix | DiscoveryFailed):  # its message names the fix already
        return str(exc)
    if isinstance(exc, redis.exceptions.RedisError) or dependency == Dependency.REDIS:
        return f"Redis: {_text(exc)}: {redis_fix}"
    if isinstance(exc, ApiError):
        system = Dependency(exc.system) if exc.system in tuple(Dependency) else dependency
        message = exc.message.split(": check ")[0]  # our fix replaces the adapter's hint
        what = f"HTTP {exc.status}: {message}" if exc.status else message
        fix = _espo_fix(exc) if system == Dependency.ESPOCRM else _advo_fix(exc)
        return f"{LABELS.get(system, 'API') if system else 'API'}: {what}: {fix}"
    label = LABELS[dependency] if dependency else "error"
    return f"{label}: {_text(exc)}: run beteiligte-sync doctor for details"


def _text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {str(exc).rstrip('.')}" if str(exc) else type(exc).__name__


def _espo_fix(exc: ApiError) -> str:
    if isinstance(exc, AuthenticationError):
        return "check ESPOCRM_API_KEY (and ESPOCRM_HMAC_SECRET when set)"
    if isinstance(exc, ForbiddenError):
        return f"give the API user's role read access to {ENTITY} (docs/espocrm.md, step 5)"
    if isinstance(exc, NotFoundError):
        return f"check ESPOCRM_URL (the address EspoCRM is opened at) and that the entity {ENTITY} exists"
    if isinstance(exc, RetryableError | DeferredError):
        return "check ESPOCRM_URL and that EspoCRM is running and reachable from here"
    return "run beteiligte-sync doctor for details"


def _advo_fix(exc: ApiError) -> str:
    if isinstance(exc, AuthenticationError):
        return f"check {ADVO_CREDENTIALS}"
    if isinstance(exc, ForbiddenError):
        return "give the Advoware user read access to Beteiligte"
    if isinstance(exc, RetryableError | DeferredError) and "Token" in exc.message:
        return "check ADVOWARE_TOKEN_URL and that Advoware's token gateway is reachable from here"
    if isinstance(exc, RetryableError | DeferredError | NotFoundError):
        return "check ADVOWARE_URL and that Advoware is reachable from here"
    return "run beteiligte-sync doctor for details"


class MemoryTokens(AdvowareTokenCache):
    """The check's own Advoware token, in memory: it asks the token gateway itself (a cached token in
    Redis would hide wrong credentials) and works while Redis is down."""

    def __init__(self) -> None:
        super().__init__(redis=None)
        self.token: str | None = None

    async def get_or_fetch(self, fetch: TokenFetcher) -> str:
        if self.token is None:
            self.token, _ = await fetch()
        return self.token

    async def invalidate(self, token: str) -> bool:
        if self.token != token:
            return False
        self.token = None
        return True

    def forget(self) -> None:
        """Ask the gateway again next time: a token still valid would hide credentials revoked since."""
        self.token = None


def standard_probes(espo: EspoCRMAPI, advo: AdvowareAPI, store: Redis,
                    tokens: MemoryTokens | None = None) -> dict[Dependency, Probe]:
    """The three checks. ``advo`` should use :class:`MemoryTokens` (see there), given as ``tokens`` too:
    every Advoware check then asks the token gateway afresh."""

    async def espocrm() -> None:
        await espo.list(ENTITY, select=["id"], max_size=1)

    async def advoware() -> None:
        if tokens is not None:
            tokens.forget()
        try:
            await advo.list_beteiligte(take=1)
        except NotFoundError:  # no list endpoint: one record read; its 404 still proves token and read
            try:
                await advo.get_beteiligter(PROBE_BETNR)
            except NotFoundError:
                pass

    async def ping() -> None:
        await store.ping()

    return {Dependency.ESPOCRM: espocrm, Dependency.ADVOWARE: advoware, Dependency.REDIS: ping}


class DependencyHealth:
    def __init__(self, probes: Mapping[Dependency, Probe], *, store: Redis | None = None, timeout: float = 10.0,
                 redis_fix: str = REDIS_URL_FIX, clock: Callable[[], float] = time.time,
                 closers: tuple[Callable[[], Awaitable[None]], ...] = ()) -> None:
        self._probes = dict(probes)
        self._store = store
        self._timeout = timeout
        self._redis_fix = redis_fix
        self._clock = clock
        self._closers = closers
        self._states = {name: DependencyState(name) for name in self._probes}
        self._every = "at the next check"

    def snapshot(self) -> list[DependencyState]:
        """The latest state of every dependency (``unknown`` before the first check)."""
        return list(self._states.values())

    def ready(self) -> bool:
        return all(s.status == DependencyStatus.OK for s in self._states.values())

    async def check(self) -> list[DependencyState]:
        """One round: every check at once, each within the timeout; logs changes, stores the states."""
        names = list(self._probes)
        outcomes = await asyncio.gather(*(self._probe(n) for n in names))
        for name, error in zip(names, outcomes, strict=True):
            self._record(name, error)
        await self._save()
        return self.snapshot()

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Check now and every ``interval`` seconds until ``stop`` is set (checked after every round:
        a cancel landing in a probe's Redis call can be swallowed; see :mod:`adapters.background`)."""
        self._every = f"every {interval:g} s"
        while not stop.is_set():
            try:
                await self.check()
            except Exception:  # a bug here must not end the checks; the next round tries again
                log.exception("dependency check failed")
            if await pause(stop, interval):
                return

    async def aclose(self) -> None:
        for close in self._closers:
            await close()

    async def recheck(self, name: Dependency) -> DependencyState:
        """One dependency again, now (e.g. right after the webhook secrets were recovered)."""
        self._record(name, await self._probe(name))
        await self._save()
        return self._states[name]

    async def _probe(self, name: Dependency) -> str | None:
        try:
            await bounded(self._probes[name](), self._timeout)  # bounded even if a cancel is swallowed
        except TimeoutError:
            return explain(TimeoutError(), name, redis_fix=self._redis_fix).replace(
                "no answer in time", f"no answer within {self._timeout:g} s")
        except Exception as exc:
            return explain(exc, name, redis_fix=self._redis_fix)
        return None

    def _record(self, name: Dependency, error: str | None) -> None:
        now = self._clock()
        old = self._states[name]
        status = DependencyStatus.FAILING if error else DependencyStatus.OK
        label = LABELS[name]
        if status != old.status:
            if error:
                log.warning("%s (failing; checked again %s, serve keeps running)", error, self._every)
            elif old.status == DependencyStatus.FAILING:
                log.warning("%s ok again (failing since %s)", label, _iso(old.since))
            else:
                log.info("%s ok", label)
        since = old.since if status == old.status else now
        self._states[name] = replace(old, status=status, since=since, checked_at=now,
                                     last_error=error or old.last_error)

    async def _save(self) -> None:
        if self._store is None:
            return
        mapping: Mapping[Any, Any] = {s.name.value: json.dumps(s.to_json()) for s in self._states.values()}
        try:
            await self._store.hset(STATE_KEY, mapping=mapping)
        except (redis.exceptions.RedisError, OSError):
            pass  # Redis is failing: that is in the states already


async def read_stored(store: Redis) -> list[DependencyState]:
    """What the last ``serve`` found (empty when no serve has checked yet)."""
    raw = await store.hgetall(STATE_KEY)
    states = []
    for value in raw.values():
        try:
            states.append(DependencyState.from_json(json.loads(value)))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(states, key=lambda s: list(Dependency).index(s.name))
