"""The step host: wires discovered steps to HTTP, the event bus, cron, state and dead letters."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from stephost.bus_common import EventBus
from stephost.bus_memory import InProcessBus
from stephost.bus_redis import RedisStreamBus
from stephost.config import HostConfig
from stephost.context import StepContext
from stephost.cron import CronScheduler
from stephost.discovery import Step, discover_steps
from stephost.http_app import build_http_app
from stephost.state import DeadLetterStore, RedisState

log = logging.getLogger("stephost.host")
CRON_SLOT_TTL_S = 3600  # a slot's claim is kept this long: far beyond any clock skew between processes


class StepHost:
    """Hosts Motia-shaped steps.

    ``redis`` is a ``redis.asyncio`` client (fakeredis for the embedded mode) used for step state
    and dead letters; with ``durable_bus`` (real Redis only) also for the event bus (Redis
    Streams) instead of the in-process queue. ``steps`` defaults to discovering
    ``config.steps.dirs``. ``cron_overrides`` maps cron step names to replacement expressions
    (e.g. from ``SYNC_CHECK_CRON``).
    """

    def __init__(
        self,
        config: HostConfig,
        redis: Any,
        *,
        steps: list[Step] | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        cron_overrides: dict[str, str] | None = None,
        bus: EventBus | None = None,
        durable_bus: bool = False,
    ) -> None:
        self.config = config
        self.redis = redis
        self.steps: list[Step] = list(steps) if steps is not None else discover_steps(config.step_dirs)
        self.extra_routes: list[BaseRoute] = list(extra_routes)
        prefix = config.redis.key_prefix
        self.state = RedisState(redis, prefix)
        self.dead_letter_store = DeadLetterStore(redis, prefix)
        self.bus: EventBus = bus or self._make_bus(durable_bus)
        self.cron = CronScheduler(self.steps, self._run_cron_step, cron_overrides, claim=self._claim_cron_slot)
        self._owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._by_name = {s.name: s for s in self.steps}
        self._http_app: Starlette | None = None
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start event workers and (if ``cron.enabled``) the cron scheduler. Idempotent."""
        if self._started:
            return
        self._started = True
        await self.bus.start()
        if self.config.cron.enabled:
            self.cron.start()
        log.info(
            "step host started: %d steps, %d workers, cron %s",
            len(self.steps),
            self.config.queue.workers,
            "on" if self.config.cron.enabled else "off",
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Graceful stop: no new cron runs, running handlers finish (up to ``grace`` seconds), workers end."""
        if not self._started:
            return
        self._started = False
        await self.cron.stop(grace)
        await self.bus.stop(grace)
        log.info("step host stopped")

    async def __aenter__(self) -> StepHost:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- public API ---------------------------------------------------------------------------

    @property
    def http_app(self) -> Starlette:
        if self._http_app is None:
            self._http_app = build_http_app(self)
        return self._http_app

    def step(self, name: str) -> Step:
        return self._by_name[name]

    def make_context(self, step: Step, trace_id: str | None = None) -> StepContext:
        return StepContext(
            step=step.name,
            emits=step.emits,
            trace_id=trace_id or str(uuid.uuid4()),
            state=self.state,
            publish=self.bus.publish,
            publish_many=self.bus.publish_many,
        )

    async def emit(self, topic: str, data: Any, trace_id: str | None = None) -> str:
        """Publish an event as if a step emitted it (no ``emits`` check). Returns the trace id.
        Raises QueueFullError when the bus cannot take it."""
        trace_id = trace_id or str(uuid.uuid4())
        await self.bus.publish(topic, data, trace_id)
        return trace_id

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract's drain(timeout)
        """Wait until no event is queued or in flight. False if ``timeout`` passed first."""
        return await self.bus.drain(timeout)

    def queue_depth(self) -> int:
        return self.bus.depth()

    def overdue_events(self) -> list[dict[str, Any]]:
        """Events whose handler in this process runs past ``maxHandlerSeconds`` (the bus's watchdog)."""
        return self.bus.overdue()

    def bus_stats(self) -> dict[str, int]:
        return self.bus.stats()

    def workers_healthy(self) -> bool:
        """Whether every event worker is reading now (False during a Redis outage, True again once
        they read). What ``/health`` reports as readiness."""
        return self.bus.workers_healthy()

    def worker_status(self) -> dict[str, dict[str, Any]]:
        """Per worker loop: ``reading`` and, on the Redis bus, seconds since its last successful
        read and its consecutive failures."""
        return self.bus.worker_status()

    async def dead_letters(self) -> list[dict[str, Any]]:
        return await self.dead_letter_store.read_all()

    async def dead_letter_count(self) -> int:
        """How many dead letters there are, in one cheap call (``LLEN``): for /health and /metrics."""
        return await self.dead_letter_store.count()

    async def run_cron(self, step_name: str) -> None:
        """Run one cron step now (waits for a scheduled run of it to finish first)."""
        await self.cron.run_now(step_name)

    def _make_bus(self, durable: bool) -> EventBus:
        if durable:  # needs a real Redis server (Streams, Lua, XAUTOCLAIM)
            return RedisStreamBus(
                self.steps,
                self._run_event_step,
                self.dead_letter_store,
                self.config.queue,
                self.redis,
                self.config.redis.key_prefix,
            )
        return InProcessBus(self.steps, self._run_event_step, self.dead_letter_store, self.config.queue)

    # -- runners ------------------------------------------------------------------------------

    async def _run_event_step(self, step: Step, data: Any, trace_id: str) -> None:
        await step.handler(data, self.make_context(step, trace_id))

    async def _claim_cron_slot(self, name: str, fire_at: datetime) -> bool:
        """One scheduled run per slot across every process on this Redis: the first to ``SET NX`` the
        slot's key runs it. The key outlives any clock difference between the processes."""
        key = f"{self.config.redis.key_prefix}:cron:{name}:{fire_at.isoformat()}"
        if await self.redis.set(key, self._owner, nx=True, ex=CRON_SLOT_TTL_S):
            log.debug("[step=%s] scheduled run of %s claimed by %s", name, fire_at.isoformat(), self._owner)
            return True
        log.debug("[step=%s] scheduled run of %s taken by another process", name, fire_at.isoformat())
        return False

    async def _run_cron_step(self, step: Step) -> None:
        context = self.make_context(step)
        log.debug("[step=%s trace=%s] cron run", step.name, context.trace_id)
        try:
            await step.handler(context)
        except Exception:
            log.exception("[step=%s trace=%s] cron handler failed", step.name, context.trace_id)
            raise


async def serve(
    host: StepHost,
    *,
    http_host: str | None = None,
    port: int | None = None,
    shutdown: asyncio.Event | None = None,
) -> None:
    """Run uvicorn with the host's app and the edge's limits (:func:`stephost.http_server.server_config`);
    the app's lifespan starts and stops the host.
    Returns after SIGINT/SIGTERM, or once ``shutdown`` is set."""
    import uvicorn

    from stephost.http_server import server_config

    app = build_http_app(host, manage_host=True)
    server = uvicorn.Server(server_config(app, host.config.http, host=http_host, port=port, lifespan="on"))
    quiet_orphaned_lookups(asyncio.get_running_loop())

    async def watch() -> None:
        assert shutdown is not None
        await shutdown.wait()
        server.should_exit = True

    watcher = asyncio.create_task(watch()) if shutdown is not None else None
    try:
        await server.serve()
    finally:
        if watcher is not None:
            watcher.cancel()


def quiet_orphaned_lookups(loop: asyncio.AbstractEventLoop) -> None:
    """A connect that timed out leaves its name lookup's future behind; when the lookup fails later (an
    unresolvable host), asyncio logs "Future exception was never retrieved" with a traceback at ERROR.
    The connect's own error is already reported (health checks, the bus's retries): that one goes to
    DEBUG; every other unhandled error keeps asyncio's default handling."""
    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        orphan = str(context.get("message", "")).startswith("Future exception was never retrieved")
        if orphan and isinstance(context.get("exception"), OSError):
            log.debug("a timed-out connect's name lookup failed later: %s", context.get("exception"))
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (not on Windows): the same asyncio API with less CPU
    per socket event, which is most of what a sync costs the process; otherwise asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_serve(host: StepHost) -> None:
    """Blocking variant of :func:`serve` for a CLI entry point."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(host))
