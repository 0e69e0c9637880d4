"""Puts the pieces together for one process: services, the step host, /health and /metrics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config.version import package_version
from entrypoints.bootstrap import Services, is_real_redis, set_services
from entrypoints.log_setup import configure_logging  # noqa: F401 - imported from here by older code and tests
from entrypoints.status_page import status_routes
from stephost.config import HostConfig, load_host_config
from stephost.host import StepHost
from sync.advoware_feed import FEED_TOPIC
from sync.metrics import Stall

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = PROJECT_ROOT / "motia.config.json"
PACKAGED_CONFIG_FILE = PROJECT_ROOT / "config" / "motia.config.json"  # a link to CONFIG_FILE, resolved in a wheel
CRON_STEP = "beteiligte_sync_cron"
VERSION = package_version()
WORKERS_READING = "reading"
WORKERS_NOT_READING = "not_reading"  # e.g. during a Redis outage: webhooks may queue, nothing is handled


class Readiness(StrEnum):
    """``status`` of ``GET /ready``."""

    READY = "ready"
    NOT_READY = "not_ready"


def host_config(services: Services, *, cron: bool = True, workers: int | None = None) -> HostConfig:
    s = services.settings
    overrides: dict[str, Any] = {"http.host": s.host, "http.port": s.port, "cron.enabled": cron,
                                 "queue.workers": workers or s.sync_concurrency,
                                 "http.tls_cert_file": s.tls_cert_file, "http.tls_key_file": s.tls_key_file,
                                 # the change feed's, the sync check's and due retries' events wait while
                                 # a webhook's wait: staff's edits go first (issue 20)
                                 "queue.background_topics": [FEED_TOPIC]}
    return load_host_config(config_file(), overrides, base_dir=PROJECT_ROOT)


def config_file() -> Path:
    """``motia.config.json`` of the checkout (or of the app folder under Motia); an installed package,
    which has no project folder, reads the copy packaged with it (``config/motia.config.json``)."""
    return CONFIG_FILE if CONFIG_FILE.is_file() else PACKAGED_CONFIG_FILE


def health_routes(services: Services, host_ref: list[StepHost]) -> list[Route]:
    async def health(_request: Request) -> Response:
        host = host_ref[0]
        dead: int | None = None
        try:
            redis_ok = bool(await services.redis.ping())
            dead = await host.dead_letter_count()
        except Exception:  # any connection problem means "not ready"
            redis_ok = False
        workers_ok = host.workers_healthy()
        ready = redis_ok and workers_ok
        body = {
            "status": "ok" if ready else "unavailable",
            "redis": redis_ok,
            "workers": WORKERS_READING if workers_ok else WORKERS_NOT_READING,
            "queue_depth": host.queue_depth(),
            "dead_letters": dead,
            "mode": "sandbox" if services.settings.sandbox else "configured",
            "version": VERSION,
            "dependencies": dependencies(services),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def readiness(_request: Request) -> Response:
        """Ready to sync: every dependency's last check was ok and every worker is reading."""
        host = host_ref[0]
        workers_ok = host.workers_healthy()
        ready = workers_ok and services.dependencies.ready()
        body = {
            "status": Readiness.READY if ready else Readiness.NOT_READY,
            "workers": WORKERS_READING if workers_ok else WORKERS_NOT_READING,
            "dependencies": dependencies(services),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_request: Request) -> Response:
        host = host_ref[0]
        services.metrics.queue_depth.set(host.queue_depth())
        services.metrics.overdue.labels(Stall.EVENT).set(len(host.overdue_events()))
        services.metrics.overdue.labels(Stall.LEASE).set(len(services.sync.overdue_leases))
        try:
            services.metrics.dead_letters.set(await host.dead_letter_count())
        except Exception:  # metrics must render even when Redis is down
            logging.getLogger(__name__).warning("dead letters unavailable for /metrics")
        return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")

    return [Route("/health", health, methods=["GET"]), Route("/ready", readiness, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]), *status_routes(services, host_ref)]


def dependencies(services: Services) -> dict[str, dict[str, Any]]:
    """Per dependency: ``status`` (ok, failing, unknown before the first check), ``since``, ``checked_at``
    and ``last_error`` (one line naming the fix)."""
    out = {}
    for state in services.dependencies.snapshot():
        data = state.to_json()
        out[data.pop("name")] = data
    return out


def build_host(
    services: Services, *, cron: bool = True, workers: int | None = None, extra_routes: Sequence[Route] = (),
    own_queue: bool = False,
) -> StepHost:
    """The step host over the project's steps, with the service's extra routes. ``own_queue``: a CLI
    command working its own events: they are queued and worked in this process only, and serve's
    shared queue (Redis Streams) is never read, so none of serve's events runs with the command's
    settings (issue 17, item 4)."""
    set_services(services)
    ref: list[StepHost] = []
    host = StepHost(
        host_config(services, cron=cron, workers=workers),
        services.redis,
        extra_routes=[*health_routes(services, ref), *extra_routes],
        cron_overrides={CRON_STEP: services.settings.sync_check_cron},
        # On real Redis (REDIS_URL or the embedded store) the events live in Redis Streams: durable,
        # shared by every worker process; only fakeredis in tests keeps them in-process.
        durable_bus=is_real_redis(services.redis) and not own_queue,
    )
    ref.append(host)
    if services.feed is not None:
        services.feed.queue_depth = host.queue_depth  # the feed reads on only while the queue is short
    return host
