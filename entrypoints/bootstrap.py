"""The composition root: builds the real services from settings, once per process.

Steps call :func:`get_services`; the ``beteiligte-sync`` command (and tests) install a ready set
with :func:`set_services` first. Under Motia every handler call is a new process, which builds the
services from the environment (and configures logging) on its first :func:`get_services`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from adapters.advoware_api import AdvowareAPI
from adapters.advoware_endpoints import DiscoveredEndpoints
from adapters.advoware_token_cache import AdvowareTokenCache
from adapters.embedded_redis import EmbeddedRedis
from adapters.espocrm_api import EspoCRMAPI
from adapters.match_index import MatchKeyIndex
from adapters.sync_state_store import SyncStateStore
from adapters.webhook_secrets import WebhookSecretStore
from config.settings import Settings, get_settings
from domain.beteiligte_mapper import configure_value_maps
from domain.conflict_policy import ConflictPolicy, load_policy
from domain.decision import configure_fingerprint_key
from entrypoints.fingerprint_secret import fingerprint_key
from entrypoints.log_setup import configure_logging
from installation.dependency_health import (
    EMBEDDED_FIX,
    REDIS_URL_FIX,
    Dependency,
    DependencyHealth,
    MemoryTokens,
    standard_probes,
)
from installation.webhook_recovery import WebhookSecretRecovery
from onboarding.hold_recheck import HoldRecheck
from sync.advoware_feed import AdvowareFeed
from sync.beteiligte_sync import BeteiligteSync
from sync.create_match import OnCreateMatch
from sync.metrics import SyncMetrics
from sync.sync_check import SyncChecker


@dataclass
class Services:
    settings: Settings
    redis: Redis
    espo: EspoCRMAPI
    advo: AdvowareAPI
    store: SyncStateStore
    sync: BeteiligteSync
    checker: SyncChecker
    metrics: SyncMetrics
    policy: ConflictPolicy
    stored_secrets: WebhookSecretStore
    dependencies: DependencyHealth  # EspoCRM, Advoware, Redis: checked by serve, shown by /health and /ready
    secret_recovery: WebhookSecretRecovery  # the stored secrets read back from EspoCRM when the store lost them
    feed: AdvowareFeed | None = None  # Advoware's changes within seconds (ADVOWARE_POLL_SECONDS)
    advoware_endpoints: DiscoveredEndpoints | None = None  # discovery by Kanzlei (None: ADVOWARE_URL/_TOKEN_URL)

    def webhook_secrets(self) -> dict[str, str]:
        """Secrets the intake accepts: those ``webhooks register`` stored, and ``ESPOCRM_WEBHOOK_SECRETS``
        over them (the in-memory copy: call :meth:`refresh_webhook_secrets` first)."""
        return {**self.stored_secrets.cached(), **self.settings.webhook_secrets()}

    async def refresh_webhook_secrets(self, *, unknown_id: bool = False) -> bool:
        """Re-read the stored secrets when due (see :mod:`adapters.webhook_secrets`); True if read."""
        return await self.stored_secrets.refresh(unknown_id=unknown_id)

    async def recover_webhook_secret(self, webhook_id: str) -> bool:
        """A delivery names a webhook without a known secret: read EspoCRM's webhooks back (rate-limited,
        :mod:`installation.webhook_recovery`); True when its secret is known now (the copy is read again)."""
        if not await self.secret_recovery.recover_for(webhook_id):
            return False
        await self.stored_secrets.refresh(force=True)
        await self.dependencies.recheck(Dependency.WEBHOOKS)
        return True

    def webhook_secrets_pending(self) -> bool:
        """The stored secrets are lost and not recovered yet: a delivery cannot be verified now (503)."""
        return self.secret_recovery.pending()

    async def aclose(self) -> None:
        await self.espo.aclose()
        await self.advo.aclose()
        await self.dependencies.aclose()


_current: Services | None = None
FAKE_REDIS_MODULE = "fakeredis"
# A frozen Redis (or a half-open connection) fails a command after this long instead of hanging a
# handler forever; idle pooled connections are checked before reuse. The bus's blocking reads block
# for 0.1 s (its poll interval), far below the timeout.
REDIS_SOCKET_TIMEOUT_S = 5.0
REDIS_CONNECT_TIMEOUT_S = 5.0
REDIS_HEALTH_CHECK_INTERVAL_S = 30
REDIS_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
    "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL_S,
}


def make_redis(settings: Settings) -> Redis:
    """Always a real Redis: REDIS_URL when set, otherwise the embedded redis-server of STATE_DIR
    (started on first use, shared by ``serve`` and every CLI command). Tests inject fakeredis themselves."""
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, **REDIS_CLIENT_OPTIONS)
    store = EmbeddedRedis.for_settings(settings)
    store.ensure_running()
    return store.client(**REDIS_CLIENT_OPTIONS)


def is_real_redis(client: Any) -> bool:
    """False for fakeredis (tests only): it lives in one process and cannot carry the durable bus."""
    return not type(client).__module__.startswith(FAKE_REDIS_MODULE)


def _secret(v: Any) -> str:
    return v.get_secret_value() if v is not None else ""


def build_services(
    settings: Settings,
    *,
    redis: Redis | None = None,
    clock: Any = time.time,
    policy: ConflictPolicy | None = None,
    espo: EspoCRMAPI | None = None,
    advo: AdvowareAPI | None = None,
) -> Services:
    """Everything one process needs. Tests pass their own Redis, clock, policy or clients (e.g. the
    in-memory fakes of ``tests/fakes``); everything not given is built from ``settings``."""
    settings.require_production()
    configure_value_maps(settings.value_maps_file)
    configure_fingerprint_key(fingerprint_key(settings))
    redis = redis if redis is not None else make_redis(settings)
    espo = espo or espo_client(settings)
    secrets = WebhookSecretStore(redis)
    recovery = WebhookSecretRecovery(espo, secrets, settings.webhook_secrets(), public_url=settings.public_url)
    endpoints = advoware_endpoints(settings, redis)  # one per process: the sync's client and the check's
    dependencies = dependency_health(settings, redis, espo, advo, recovery, endpoints)
    advo = advo or advoware_client(settings, redis, endpoints=endpoints)
    store = SyncStateStore(redis)
    metrics = SyncMetrics()
    policy = policy or load_policy(settings.conflict_policy_file)
    sync = BeteiligteSync(
        espo, advo, store, policy=policy, metrics=metrics, timezone=settings.advoware_timezone,
        delete_policy=settings.delete_policy, clock=clock,
    )
    sync.creates.on_match = OnCreateMatch(settings.on_create_match)
    checker = SyncChecker(espo, advo, store, policy=policy, clock=clock, timezone=settings.advoware_timezone,
                          recheck=HoldRecheck(sync.creates.matcher).released)
    feed = AdvowareFeed(advo, store, MatchKeyIndex(redis), timezone=settings.advoware_timezone,
                        poll_seconds=settings.advoware_poll_seconds, clock=clock)
    return Services(settings, redis, espo, advo, store, sync, checker, metrics, policy, secrets, dependencies,
                    recovery, feed, endpoints)


def dependency_health(settings: Settings, redis: Redis, espo: EspoCRMAPI, advo: AdvowareAPI | None,
                      recovery: WebhookSecretRecovery,
                      endpoints: DiscoveredEndpoints | None = None) -> DependencyHealth:
    """The checks of EspoCRM (the service's client), Advoware, Redis and the webhook secrets (read back
    from EspoCRM when the store lost them). Unless a test passed its own Advoware client, the check has
    one of its own with the token in memory (see ``MemoryTokens``)."""
    closers: tuple[Any, ...] = ()
    tokens = None
    if advo is None:
        tokens = MemoryTokens()
        advo = advoware_client(settings, None, tokens=tokens, endpoints=endpoints)
        closers = (advo.aclose,)
    probes = {**standard_probes(espo, advo, redis, tokens), Dependency.WEBHOOKS: recovery.ensure}
    return DependencyHealth(probes, store=redis,
                            timeout=settings.http_timeout_seconds,
                            redis_fix=REDIS_URL_FIX if settings.redis_url else EMBEDDED_FIX, closers=closers)


def espo_client(settings: Settings, *, timeout: float | None = None) -> EspoCRMAPI:
    """The EspoCRM client of these settings (``timeout`` defaults to ``HTTP_TIMEOUT_SECONDS``)."""
    return EspoCRMAPI(
        str(settings.espocrm_url),
        _secret(settings.espocrm_api_key),
        hmac_secret=_secret(settings.espocrm_hmac_secret) or None,
        timeout=timeout or settings.http_timeout_seconds,
        max_inflight=settings.espocrm_max_inflight,
    )


def advoware_endpoints(settings: Settings, store: Any, *, timeout: float | None = None) -> DiscoveredEndpoints | None:
    """Discovery by ``ADVOWARE_KANZLEI`` (its answer cached in ``store``) when ``ADVOWARE_URL`` or
    ``ADVOWARE_TOKEN_URL`` is unset; None when both are set."""
    if not settings.advoware_discovery:
        return None
    return DiscoveredEndpoints(settings.configurator_url, str(settings.advoware_kanzlei), store,
                               api_url=settings.advoware_url, token_url=settings.advoware_token_url,
                               timeout=timeout or settings.http_timeout_seconds)


def advoware_client(
    settings: Settings, redis: Any, *, tokens: AdvowareTokenCache | None = None, timeout: float | None = None,
    endpoints: DiscoveredEndpoints | None = None,
) -> AdvowareAPI:
    """The Advoware client of these settings; its token cache lives in ``redis`` unless ``tokens`` is given.
    Its addresses: ``endpoints``, or discovery with ``redis`` as the cache, or the configured URLs."""
    endpoints = endpoints or advoware_endpoints(settings, redis, timeout=timeout)
    return AdvowareAPI(
        str(settings.advoware_url or ""),
        str(settings.advoware_token_url or ""),
        app_id=str(settings.advoware_app_id),
        api_key=_secret(settings.advoware_api_key),
        kanzlei=str(settings.advoware_kanzlei),
        database=str(settings.advoware_database),
        user=str(settings.advoware_user),
        password=_secret(settings.advoware_password),
        redis=redis,
        tokens=tokens,
        timeout=timeout or settings.http_timeout_seconds,
        timezone=settings.advoware_timezone,
        max_inflight=settings.advoware_max_inflight,
        endpoints=endpoints,
        profile=settings.wire_profile(),
    )


def advoware_feed_schedule() -> str:
    """The feed step's schedule: every ``ADVOWARE_POLL_SECONDS`` (0: never, the step stays idle)."""
    seconds = get_settings().advoware_poll_seconds
    if seconds == 0:
        return "0 0 1 1 *"  # once a year; the step itself does nothing while the feed is off
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{seconds // 60} * * * *"


def sync_check_schedule() -> str:
    """The cron schedule of the sync check (``SYNC_CHECK_CRON``), for the cron step's config. Read
    through the settings like everything else, so the environment and ``.env`` agree."""
    return get_settings().sync_check_cron


def get_services() -> Services:
    """The process's services; built from the environment on the first call when no command installed
    them (under Motia: in every handler process), with logging set up as ``serve`` has it."""
    global _current
    if _current is None:
        settings = get_settings()
        configure_logging(settings.log_level or "INFO", settings.log_format)
        _current = build_services(settings)
    return _current


def set_services(services: Services | None) -> None:
    global _current
    _current = services
