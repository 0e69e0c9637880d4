"""In-process event bus: an asyncio queue, N worker tasks, retry with backoff, dead letters.

Every event step subscribed to a topic gets its own delivery. A failing handler is retried after
an exponential backoff with jitter (the wait does not block a worker) up to ``maxAttempts``
calls; then the delivery becomes a dead letter. Not durable: events still queued when the process
stops are logged at error level (the periodic sync check is the safety net).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from stephost.bus_common import (
    BusCounters,
    Delivery,
    DeliveryRunner,
    QueueFullError,
    copy_data,
    dead_letter,
    describe_error,
    retry_delay,
    subscribers_by_topic,
)
from stephost.config import QueueConfig
from stephost.discovery import Step
from stephost.state import DeadLetterStore
from stephost.stopping import stop_tasks

log = logging.getLogger("stephost.bus")


class InProcessBus:
    def __init__(
        self,
        steps: list[Step],
        runner: DeliveryRunner,
        dead_letters: DeadLetterStore,
        queue: QueueConfig,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._subscribers = subscribers_by_topic(steps)
        self._steps = {s.name: s for s in steps}
        self._runner = runner
        self._dead_letters = dead_letters
        self._cfg = queue
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._retry_timers: dict[asyncio.TimerHandle, Delivery] = {}
        self._pending = 0  # queued + waiting for retry + in flight
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = False
        self._counters = BusCounters()

    # -- public API ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._workers:
            return
        self._stopped = False
        self._workers = [
            asyncio.create_task(self._work(), name=f"stephost-worker-{i}") for i in range(self._cfg.workers)
        ]

    async def publish(self, topic: str, data: Any, trace_id: str) -> int:
        """Queue one delivery per subscriber (all or nothing); returns how many were queued."""
        subscribers = self._subscribers.get(topic, [])
        if self._stopped:
            raise QueueFullError("event bus is stopped")
        if self._pending + len(subscribers) > self._cfg.max_size:
            raise QueueFullError(f"event queue full ({self._pending}/{self._cfg.max_size})")
        deliveries = [Delivery(topic, s.name, copy_data(data), trace_id) for s in subscribers]
        self._counters.published += 1
        if not deliveries:
            log.debug("[trace=%s] no subscriber for topic %s", trace_id, topic)
        for delivery in deliveries:
            self._enqueue(delivery)
        return len(deliveries)

    async def publish_many(self, topic: str, items: list[Any], trace_id: str) -> int:
        """Queue one event per item (all or nothing); returns how many deliveries were queued."""
        subscribers = self._subscribers.get(topic, [])
        if self._stopped:
            raise QueueFullError("event bus is stopped")
        if self._pending + len(subscribers) * len(items) > self._cfg.max_size:
            raise QueueFullError(f"event queue full ({self._pending}/{self._cfg.max_size})")
        deliveries = [Delivery(topic, s.name, copy_data(data), trace_id) for data in items for s in subscribers]
        self._counters.published += len(items)
        for delivery in deliveries:
            self._enqueue(delivery)
        return len(deliveries)

    def depth(self) -> int:
        """Deliveries queued, waiting for a retry, or in flight."""
        return self._pending

    def stats(self) -> dict[str, int]:
        return {**self._counters.as_dict(), "depth": self._pending}

    def workers_healthy(self) -> bool:
        """True while the workers run (the in-process queue has nothing else to fail)."""
        return bool(self._workers) and not any(worker.done() for worker in self._workers)

    def overdue(self) -> list[dict[str, Any]]:
        """Nothing: an in-process delivery has no entry another worker could take over."""
        return []

    def worker_status(self) -> dict[str, dict[str, Any]]:
        return {worker.get_name(): {"reading": not worker.done()} for worker in self._workers}

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract's drain(timeout)
        """Wait until nothing is queued, waiting or in flight (including events emitted by the
        handlers that ran meanwhile). True when idle, False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, grace: float = 10.0) -> None:
        """Let in-flight handlers finish (up to ``grace`` seconds), then stop the workers. Deliveries
        that never started are logged as undelivered; later publishes raise QueueFullError."""
        self._stopped = True
        idle = [w for w in self._workers if w not in self._busy]  # waiting on the queue: safe to cancel
        late = await stop_tasks(self._workers, None, grace, cancel_at_once=idle)
        if late:  # a handler that swallowed the cancel too: left behind, it ends after its current call
            log.error("%d event handlers still running %.1fs after shutdown began; left behind", len(late), 2 * grace)
        self._workers = []
        self._discard_leftovers()

    # -- internals ------------------------------------------------------------------------------

    def _enqueue(self, delivery: Delivery) -> None:
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(delivery)

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._stopped:
            delivery = await self._queue.get()
            self._busy.add(me)
            try:
                await self._deliver(delivery)
            finally:
                self._busy.discard(me)

    async def _deliver(self, delivery: Delivery) -> None:
        step = self._steps[delivery.step]
        delivery.attempt += 1
        try:
            await self._runner(step, copy_data(delivery.data), delivery.trace_id)
        except asyncio.CancelledError:
            log.error("[step=%s trace=%s] handler cancelled at shutdown", delivery.step, delivery.trace_id)
            self._done()
            raise
        except Exception as exc:
            self._counters.failed_attempts += 1
            await self._failed(delivery, exc)
            return
        self._counters.delivered += 1
        self._done()

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        error = describe_error(exc)
        delay = None if self._stopped else retry_delay(delivery, error, self._cfg, self._rng, exc)
        if delay is None:
            self._counters.dead_lettered += 1
            await dead_letter(self._dead_letters, delivery, error)
            self._done()
            return
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def requeue() -> None:
            assert timer is not None
            self._retry_timers.pop(timer, None)
            self._queue.put_nowait(delivery)  # still counted in _pending

        timer = loop.call_later(delay, requeue)
        self._retry_timers[timer] = delivery

    def _discard_leftovers(self) -> None:
        leftovers: list[Delivery] = []
        for timer, delivery in list(self._retry_timers.items()):
            timer.cancel()
            leftovers.append(delivery)
        self._retry_timers.clear()
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for delivery in leftovers:
            log.error(
                "[step=%s trace=%s] event %s not delivered: host stopped (in-process bus is not durable)",
                delivery.step,
                delivery.trace_id,
                delivery.topic,
            )
            self._done()
