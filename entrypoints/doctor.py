"""``beteiligte-sync doctor``: checks the configured systems, one line per check (✓ / ⚠ / ✗ and the fix).

Order: configuration, EspoCRM (access, entity and fields, enum options, optimistic concurrency, the
API user's rights on a throwaway record, webhooks), Advoware (token, one read), the store. Every
check has a timeout and any exception becomes its ✗ line; with ``debug`` the traceback goes to stderr.
Every line is scrubbed of every secret the doctor knows before it is returned.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from adapters.advoware_discovery import FIX as DISCOVERY_FIX
from adapters.advoware_discovery import DiscoveryFailed
from adapters.advoware_endpoints import DiscoveredEndpoints
from adapters.embedded_redis import StartupError
from adapters.errors import ApiError, AuthenticationError, ForbiddenError, NotFoundError, RetryableError
from adapters.redis_settings import read_facts_async
from adapters.webhook_secrets import WebhookSecretStore
from config.settings import Settings
from entrypoints import doctor_espocrm as espocrm
from entrypoints.bootstrap import advoware_client, advoware_endpoints, espo_client
from entrypoints.doctor_advoware import SINCE_IGNORED, list_read, probe_advoware
from entrypoints.setup_store import OpenStore, open_store
from entrypoints.store_guard import serve_url
from installation.dependency_health import MemoryTokens
from installation.setup_report import Line, Status, fail, ok, skip, warn
from installation.webhook_setup import Expected

DEFAULT_TIMEOUT_S = 20.0
PROBE_BETNR = 1
CONFIG = "configuration"
DISCOVERY = "Advoware discovery"
TOKEN = "Advoware token"
READ = "Advoware read"
STORE = "store"
REDIS_SETTINGS = "store settings"
ESPO_SETTINGS = ("ESPOCRM_URL", "ESPOCRM_API_KEY")
ADVO_CREDENTIALS = ("ADVOWARE_APP_ID, ADVOWARE_API_KEY, ADVOWARE_KANZLEI, ADVOWARE_DATABASE, ADVOWARE_USER and "
                    "ADVOWARE_PASSWORD")
MASK = "***"
# The lines carry no secret by construction; scrubbing is the safety net. Shorter values (a sandbox
# password like "sync") would blank ordinary words of the output.
MIN_SCRUB_LENGTH = 8


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Doctor:
    def __init__(self, settings: Settings, *, public_url: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 debug: bool = False) -> None:
        self.settings = settings
        self.timeout = timeout
        self.debug = debug
        given = public_url or settings.public_url
        self.expected = Expected(given or serve_url(settings), derived=not given)
        self._secrets: set[str] = set()

    async def run(self) -> list[Line]:
        missing = self.settings.missing_for_production()
        lines = [self._config_line(missing)]
        if self.settings.sandbox and not self.settings.espocrm_url:  # no sandbox serve runs: nothing to check
            return lines
        store_line, store, stored = await self._store()
        espo_ready = not any(name in missing for name in ESPO_SETTINGS)
        lines += await self._espocrm(stored) if espo_ready else [skip("EspoCRM", "not configured")]
        advo_ready = not any(name.startswith("ADVOWARE_") for name in missing)
        lines += await self._advoware(store) if advo_ready else [skip("Advoware", "not configured")]
        lines.append(store_line)
        if store is not None:
            lines += await self._guard(REDIS_SETTINGS, lambda: redis_settings(store))
            await store.aclose()
        return [self._scrubbed(line) for line in lines]

    # -- plumbing ------------------------------------------------------------------------------
    async def _guard(self, check: str, work: Callable[[], Awaitable[list[Line]]]) -> list[Line]:
        """``work`` within the timeout; a timeout or any exception is its ✗ line."""
        try:
            return await asyncio.wait_for(work(), self.timeout)
        except TimeoutError:
            return [fail(check, f"no answer within {self.timeout:g} s", "check the address and the network "
                                                                          "(or pass a longer --timeout)")]
        except Exception as exc:
            if self.debug:
                traceback.print_exception(exc, file=sys.stderr)
            return [fail(check, f"could not check: {describe(exc)}", "run with --debug for the traceback")]

    def _scrubbed(self, line: Line) -> Line:
        secrets = self._secrets | set(self.settings.webhook_secrets().values()) | {
            s.get_secret_value() for s in (self.settings.espocrm_api_key, self.settings.espocrm_hmac_secret,
                                           self.settings.advoware_api_key, self.settings.advoware_password) if s}

        def clean(text: str) -> str:
            for secret in sorted((s for s in secrets if len(s) >= MIN_SCRUB_LENGTH), key=len, reverse=True):
                text = text.replace(secret, MASK)
            return text

        return replace(line, text=clean(line.text), fix=clean(line.fix), details=tuple(map(clean, line.details)))

    def _config_line(self, missing: Iterable[str]) -> Line:
        names = list(missing)
        s = self.settings
        if s.sandbox and not s.espocrm_url:
            return fail(CONFIG, "sandbox mode (neither ESPOCRM_URL nor ADVOWARE_URL is set) and no sandbox serve "
                        "runs on this STATE_DIR", "start ./dev serve (doctor then checks its simulators), or set "
                        "the variables of docs/configuration.md in the environment or in .env")
        advo = (f"by discovery of Kanzlei {s.advoware_kanzlei} at {s.configurator_url}" if s.advoware_discovery
                else s.advoware_url)
        if s.sandbox:
            return ok(CONFIG, f"sandbox: the simulators of the running serve: EspoCRM {s.espocrm_url}, Advoware {advo}")
        if names:
            return fail(CONFIG, f"missing {', '.join(names)}",
                        "set them in the environment or in .env (docs/configuration.md)")
        return ok(CONFIG, f"EspoCRM {s.espocrm_url}, Advoware {advo}")

    # -- the checks ------------------------------------------------------------------------------
    async def _espocrm(self, stored: dict[str, str] | None) -> list[Line]:
        s = self.settings
        async with espo_client(s, timeout=self.timeout) as espo:
            url = str(s.espocrm_url).rstrip("/")
            lines = await self._guard(espocrm.ACCESS, lambda: espocrm.access(espo, url, bool(s.espocrm_hmac_secret)))
            if any(line.status == Status.FAIL for line in lines):
                return lines + [skip("EspoCRM setup", "no access to EspoCRM")]
            lines += await self._guard(espocrm.METADATA, lambda: espocrm.metadata(espo, s.value_maps_file))
            lines += await self._guard(espocrm.RIGHTS, lambda: espocrm.rights(espo))
            lines += await self._guard(espocrm.WEBHOOKS, lambda: espocrm.webhooks(
                espo, self.expected, stored, s.webhook_secrets()))
        return lines

    async def _advoware(self, store: OpenStore | None) -> list[Line]:
        tokens = MemoryTokens()
        endpoints, found, failed = await self._discovery(store)
        if failed:
            return [*failed, skip(TOKEN, "no Advoware address"), skip(READ, "no Advoware address")]

        async def check() -> list[Line]:
            async with advoware_client(self.settings, None, tokens=tokens, timeout=self.timeout,
                                       endpoints=endpoints) as advo:
                try:
                    how = await _one_read(advo, ZoneInfo(self.settings.advoware_timezone))
                except Exception as exc:
                    if tokens.token is None:
                        return [_token_failed(exc, self.settings), skip(READ, "no token")]
                    return [ok(TOKEN, "token issued"), _read_failed(exc, self.settings)]
            return [ok(TOKEN, "token issued"), (warn if how.startswith(SINCE_IGNORED) else ok)(READ, how)]

        lines = await self._guard("Advoware", check)
        if tokens.token:
            self._secrets.add(tokens.token)
        if endpoints is not None:  # after the calls: it names the address they used (connector or relay)
            lines.insert(0, _discovered(endpoints, found[0] if found else None))
        return lines

    async def _discovery(
        self, store: OpenStore | None
    ) -> tuple[DiscoveredEndpoints | None, list[DiscoveryFailed | None], list[Line]]:
        """The discovered addresses (None: both URLs set), what asking the configurator found, and the
        failure lines when there is no address at all."""
        endpoints = advoware_endpoints(self.settings, store.redis if store else None, timeout=self.timeout)
        found: list[DiscoveryFailed | None] = []
        if endpoints is None:
            return None, found, []
        return endpoints, found, await self._guard(DISCOVERY, lambda: _discover(endpoints, found))

    async def run_advoware(self, betnr: int | None) -> list[Line]:
        """``doctor --advoware``: the configuration, a token, and the wire profile probed by reads only."""
        s = self.settings
        missing = [name for name in s.missing_for_production() if name.startswith("ADVOWARE_")]
        if missing:
            return [fail(CONFIG, f"missing {', '.join(missing)}",
                         "set them in the environment or in .env (docs/configuration.md)")]
        where = s.advoware_url or f"discovered for Kanzlei {s.advoware_kanzlei}"
        lines = [ok(CONFIG, f"Advoware {where}, ADVOWARE_PROFILE {s.wire_profile().source}, "
                            f"zone {s.advoware_timezone}")]
        endpoints, found, failed = await self._discovery(None)
        if failed:
            return [*lines, *failed]
        tokens = MemoryTokens()

        async def check() -> list[Line]:
            async with advoware_client(self.settings, None, tokens=tokens, timeout=self.timeout,
                                       endpoints=endpoints) as advo:
                try:
                    found_lines = await probe_advoware(advo, self.settings.wire_profile(),
                                                       ZoneInfo(self.settings.advoware_timezone), betnr)
                except Exception as exc:
                    if tokens.token is None:
                        return [_token_failed(exc, self.settings)]
                    raise
            return [ok(TOKEN, "token issued"), *found_lines]

        lines += await self._guard("Advoware", check)
        if endpoints is not None:
            lines.insert(1, _discovered(endpoints, found[0] if found else None))
        if tokens.token:
            self._secrets.add(tokens.token)
        return [self._scrubbed(line) for line in lines]

    async def _store(self) -> tuple[Line, OpenStore | None, dict[str, str] | None]:
        """The store line, the open store and the webhook secrets stored in it (None when unreachable)."""
        fix = ("check REDIS_URL and that its Redis runs (serve needs it too)" if self.settings.redis_url
               else "docs/reliability.md: the embedded store")
        try:
            store = await asyncio.wait_for(asyncio.to_thread(open_store, self.settings, timeout=self.timeout),
                                           self.timeout)
        except (StartupError, TimeoutError) as exc:
            return fail(STORE, describe(exc) or "no answer", fix), None, None
        try:
            stored = await asyncio.wait_for(WebhookSecretStore(store.redis).load(), self.timeout)
        except Exception as exc:
            await store.aclose()
            return fail(STORE, f"{store.description} unreachable: {describe(exc)}", fix), None, None
        self._secrets |= set(stored.values())
        return ok(STORE, f"{store.description} reachable, {len(stored)} webhook secrets stored"), store, stored


async def redis_settings(store: OpenStore) -> list[Line]:
    """The store's eviction policy and persistence (:mod:`adapters.redis_settings`), one line."""
    facts = await read_facts_async(store.redis)
    refusal, warning = facts.refusal(), facts.warning()
    if refusal:
        text, _, fix = refusal.rpartition(": ")
        return [fail(REDIS_SETTINGS, text, fix)]
    if warning:
        text, _, fix = warning.rpartition(": ")
        return [warn(REDIS_SETTINGS, text, fix)]
    return [ok(REDIS_SETTINGS, facts.describe())]


async def _one_read(advo: Any, zone: ZoneInfo) -> str:
    """The list endpoint with ``take=1`` and the changes since now (whether it honours its since parameter);
    without it, ``GET Beteiligte/1`` (a 404 still proves the read)."""
    try:
        return await list_read(advo, zone)
    except NotFoundError:
        pass
    try:
        await advo.get_beteiligter(PROBE_BETNR)
    except NotFoundError:
        return (f"no list endpoint (the change feed is off: Advoware's changes arrive at the sync check only); "
                f"GET Beteiligte/{PROBE_BETNR} answered 404 (no such Beteiligter: reads work)")
    return (f"no list endpoint (the change feed is off: Advoware's changes arrive at the sync check only); "
            f"GET Beteiligte/{PROBE_BETNR} answered")


async def _discover(endpoints: DiscoveredEndpoints, found: list[DiscoveryFailed | None]) -> list[Line]:
    """Ask the configurator now; no line when it answered or a cached answer stands in (``found``)."""
    try:
        found.append(await endpoints.refresh())
    except DiscoveryFailed as exc:
        return [fail(DISCOVERY, exc.message.removesuffix(f": {DISCOVERY_FIX}"), DISCOVERY_FIX)]
    return []


def _discovered(endpoints: DiscoveredEndpoints, failure: DiscoveryFailed | None) -> Line:
    if failure is None:
        return ok(DISCOVERY, endpoints.describe())
    return warn(DISCOVERY, f"{endpoints.describe()} ({failure.message.removesuffix(f': {DISCOVERY_FIX}')})",
                "check ADVOWARE_CONFIGURATOR_URL and that the configurator is reachable from here (the cached "
                "answer is used meanwhile)")


def _names(settings: Settings) -> tuple[str, str]:
    """What to check for the API and for the token gateway: the URL setting, or what discovery found."""
    found = "the address discovered for ADVOWARE_KANZLEI (ADVOWARE_CONFIGURATOR_URL; or set {})"
    api = "ADVOWARE_URL" if settings.advoware_url else found.format("ADVOWARE_URL")
    gateway = "ADVOWARE_TOKEN_URL" if settings.advoware_token_url else found.format("ADVOWARE_TOKEN_URL")
    return api, gateway


def _token_failed(exc: Exception, settings: Settings) -> Line:
    gateway = _names(settings)[1]
    if isinstance(exc, AuthenticationError):
        return fail(TOKEN, "the token request was refused (401)", f"check {ADVO_CREDENTIALS}")
    if isinstance(exc, RetryableError):
        return fail(TOKEN, f"the token gateway is not reachable ({exc})", f"check {gateway}")
    return fail(TOKEN, f"the token request failed: {describe(exc)}", f"check {gateway} and {ADVO_CREDENTIALS}")


def _read_failed(exc: Exception, settings: Settings) -> Line:
    api = _names(settings)[0]
    if isinstance(exc, AuthenticationError):
        return fail(READ, "the API refused the token just issued (401)",
                    "the API address and the token gateway must belong to the same Advoware "
                    "(ADVOWARE_URL, ADVOWARE_TOKEN_URL, or both discovered)")
    if isinstance(exc, ForbiddenError):
        return fail(READ, f"the Advoware user may not read Beteiligte ({exc})", "grant ADVOWARE_USER read rights")
    if isinstance(exc, RetryableError):
        return fail(READ, f"the API is not reachable ({exc})", f"check {api}")
    return fail(READ, f"reading Beteiligte failed: {describe(exc)}", f"check {api}")
