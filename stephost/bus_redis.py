"""Durable event bus on Redis Streams (needs a real Redis: uses Lua and XAUTOCLAIM).

Fan-out is one stream per subscribing step (key layout in :mod:`stephost.bus_redis_scripts`). A
worker acknowledges and deletes an entry only after the handler succeeded, the entry moved to the
retry set, or it was dead-lettered (each one Lua script). While a handler runs, its worker touches the
entry every third of ``claimIdleSeconds`` (its idle time starts again), so entries whose worker died,
and only those, are taken over with XAUTOCLAIM once idle for ``claimIdleSeconds`` (default 10 s).
Same retry / dead-letter semantics as the in-process bus.

Outages: every loop (the workers and the housekeeping) survives any error. It logs it (quietly, see
:class:`~stephost.bus_recovery.QuietLog`), waits a capped exponential backoff
(``reconnectBaseSeconds`` .. ``reconnectMaxSeconds``) and tries again; redis-py reconnects. After an
error a worker first re-reads the entries it still holds (handled again: at least once), so nothing
waits for ``claimIdleSeconds``. A Redis that comes back empty answers NOGROUP: the groups are then
recreated (``XGROUP CREATE ... MKSTREAM``). :meth:`RedisStreamBus.workers_healthy` says whether every
loop is reading.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
import uuid
from functools import partial
from typing import Any

from stephost.bus_common import (
    BusCounters,
    Delivery,
    DeliveryRunner,
    QueueFullError,
    copy_data,
    dead_letter_json,
    describe_error,
    log_dead_letter,
    retry_delay,
    subscribers_by_topic,
)
from stephost.bus_recovery import LoopSupervisor, Round
from stephost.bus_redis_reader import Entry, StreamReader, as_str
from stephost.bus_redis_scripts import (
    BACKGROUND,
    GROUP,
    NEW_ENTRIES,
    OWN_PENDING,
    BusKeys,
    BusScripts,
    Outcome,
    entry_delivery,
    retry_member,
)
from stephost.bus_watchdog import EntryWatch, kept_claimed
from stephost.config import QueueConfig
from stephost.discovery import Step
from stephost.state import DeadLetterStore

log = logging.getLogger("stephost.bus")

HOUSEKEEPING = "housekeeping"
WORKER = "worker"
TOUCHES_PER_CLAIM_IDLE = 3  # a running handler's entry is touched this often per claimIdleSeconds
ERROR_LOG_INTERVAL_SECONDS = 30.0  # one log line per identical error and interval
_s = as_str


class RedisStreamBus:
    def __init__(
        self,
        steps: list[Step],
        runner: DeliveryRunner,
        dead_letters: DeadLetterStore,
        queue: QueueConfig,
        redis: Any,
        key_prefix: str,
        *,
        poll_seconds: float = 0.1,
        block_seconds: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self._subscribers = subscribers_by_topic(steps)
        self._steps = {s.name: s for s in steps}
        self._runner = runner
        self._cfg = queue
        self._redis = redis
        self._keys = BusKeys(key_prefix)
        self._scripts = BusScripts(redis, self._keys, dead_letters.key)
        names = sorted({s.name for subs in self._subscribers.values() for s in subs})
        self._background = set(queue.background_topics)
        background = sorted({s.name for t in self._background for s in self._subscribers.get(t, [])})
        self._poll = poll_seconds  # housekeeping: due retries and dead workers' entries
        self._rng = rng or random.Random()
        consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._reader = StreamReader(
            redis,
            [self._keys.stream(name) for name in names],  # read before the background lane
            [self._keys.stream(name, BACKGROUND) for name in background],
            consumer,
            block_seconds=block_seconds,
            reached=lambda loop: self._loops.reached(loop),
        )
        self._streams = self._reader.streams
        self._loops = LoopSupervisor(
            log,
            base=queue.reconnect_base_seconds,
            cap=queue.reconnect_max_seconds,
            stale_after=2 * self._reader.read_timeout,
            log_every=ERROR_LOG_INTERVAL_SECONDS,
            on_error=self._on_error,
            rng=self._rng,
        )
        self._backlog: set[str] = set()  # loops that must re-read the entries they still hold
        self._stopped = False
        self._depth = 0
        self._counters = BusCounters()
        self._watch = EntryWatch(queue.max_handler_seconds, self._counters)

    # -- public API ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the consumer groups and start the loops. Redis being down is no error here: the
        loops keep trying, and :meth:`workers_healthy` is False until they read."""
        if self._loops.running:
            return
        self._stopped = False
        try:
            await self._reader.ensure_groups()
        except Exception as exc:  # the loops recreate them when Redis answers NOGROUP
            self._loops.error("start", exc)
        loops: dict[str, tuple[str, Round]] = {
            f"{WORKER}-{i}": (WORKER, self._worker_round) for i in range(self._cfg.workers if self._streams else 0)
        }
        loops[HOUSEKEEPING] = (HOUSEKEEPING, self._housekeeping_round)
        self._backlog = set(loops)
        self._loops.start(loops)

    async def publish(self, topic: str, data: Any, trace_id: str) -> int:
        subscribers = self._subscribers.get(topic, [])
        if self._stopped:
            raise QueueFullError("event bus is stopped")
        self._counters.published += 1
        if not subscribers:
            return 0
        payload = json.dumps(copy_data(data))
        steps = [step.name for step in subscribers]
        accepted, depth = await self._scripts.publish(self._cfg.max_size, topic, payload, trace_id, steps,
                                                      self._lane(topic))
        if not accepted:
            raise QueueFullError(f"event queue full ({depth}/{self._cfg.max_size})")
        self._depth = depth
        return len(subscribers)

    async def publish_many(self, topic: str, items: list[Any], trace_id: str) -> int:
        """One event per item, all or nothing, in one round trip."""
        subscribers = self._subscribers.get(topic, [])
        if self._stopped:
            raise QueueFullError("event bus is stopped")
        self._counters.published += len(items)
        if not subscribers or not items:
            return 0
        payloads = [json.dumps(copy_data(data)) for data in items]
        steps = [step.name for step in subscribers]
        accepted, depth = await self._scripts.publish_many(self._cfg.max_size, topic, payloads, trace_id, steps,
                                                           self._lane(topic))
        if not accepted:
            raise QueueFullError(f"event queue full ({depth}/{self._cfg.max_size})")
        self._depth = depth
        return len(subscribers) * len(items)

    def _lane(self, topic: str) -> str:
        return BACKGROUND if topic in self._background else ""

    def depth(self) -> int:
        """Pending deliveries as last seen (refreshed on every publish and housekeeping round)."""
        return self._depth

    def stats(self) -> dict[str, int]:
        return {**self._counters.as_dict(), "depth": self._depth}

    def workers_healthy(self) -> bool:
        """True while every worker and the housekeeping are reading from Redis."""
        return self._loops.health.healthy()

    def worker_status(self) -> dict[str, dict[str, Any]]:
        return self._loops.health.status()

    def overdue(self) -> list[dict[str, Any]]:
        """Entries whose handler in this process has run longer than ``maxHandlerSeconds`` and still
        runs (no longer touched: a live worker takes them over). Each: entry, stream, step, since."""
        return self._watch.overdue()

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - contract's drain(timeout)
        """Wait until nothing is pending; keeps waiting through a Redis outage (up to ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._depth = int(await self._redis.get(self._keys.pending) or 0)
                if self._depth <= 0:
                    return True
            except Exception as exc:
                self._loops.error("drain", exc)
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    async def stop(self, grace: float = 10.0) -> None:
        """Let in-flight handlers finish (up to ``grace`` s); unstarted entries stay in Redis."""
        self._stopped = True
        await self._loops.stop(grace)

    # -- loops (run by the supervisor: an error is logged, backed off and the round tried again) ----

    def _on_error(self, name: str, _exc: Exception) -> None:
        self._backlog.add(name)  # it may hold entries it did not finish: read them again first

    async def _worker_round(self, name: str) -> None:
        backlog = name in self._backlog
        entries = await self._reader.read(name, OWN_PENDING if backlog else NEW_ENTRIES)
        if backlog and not entries:
            self._backlog.discard(name)
        await self._process_all(name, entries)

    async def _housekeeping_round(self, name: str) -> None:
        """Move due retries back into their streams and take over entries of dead workers."""
        if name in self._backlog:  # entries it took over and did not finish before an error
            entries = await self._reader.read(name, OWN_PENDING)
            await self._process_all(name, entries)
            if not entries:
                self._backlog.discard(name)
        await self._scripts.move_due(time.time())
        self._loops.reached(name)
        idle_ms = int(self._cfg.claim_idle_seconds * 1000)
        consumer = self._reader.consumer_name(name)
        for stream in self._streams:
            claim = partial(self._redis.xautoclaim, stream, GROUP, consumer, idle_ms, "0-0", count=10)
            reply = await self._reader.in_group(claim)
            for entry_id, _ in reply[1]:
                log.warning("taking over event %s on %s from a dead worker", _s(entry_id), stream)
            await self._process_all(name, [(stream, entry_id, fields) for entry_id, fields in reply[1]])
        self._depth = int(await self._redis.get(self._keys.pending) or 0)
        await asyncio.sleep(self._poll)

    # -- one entry ------------------------------------------------------------------------------

    async def _process_all(self, name: str, entries: list[Entry]) -> None:
        for stream, entry_id, fields in entries:
            if not self._loops.running:  # stopping: the entry stays pending, a live worker takes it over
                return
            with self._loops.busy(name):
                if fields is None:  # deleted while pending: nothing left to run
                    await self._redis.xack(stream, GROUP, entry_id)
                    continue
                await self._process(stream, entry_id, fields, self._reader.consumer_name(name))

    async def _process(self, stream: str, entry_id: Any, raw: dict[Any, Any], consumer: str) -> None:
        fields = {_s(k): _s(v) for k, v in raw.items()}
        try:
            delivery = entry_delivery(fields)
        except (KeyError, ValueError) as exc:  # not written by this bus: keep it for a person
            unreadable = Delivery(fields.get("topic", ""), fields.get("step", ""), fields, fields.get("trace_id", ""))
            await self._dead_letter(stream, entry_id, unreadable, f"unreadable entry: {describe_error(exc)}")
            return
        step = self._steps.get(delivery.step)
        try:
            if step is None:
                raise LookupError(f"no event step named {delivery.step!r} in this host")
            touch = partial(self._scripts.touch, stream, consumer, entry_id)
            every = self._cfg.claim_idle_seconds / TOUCHES_PER_CLAIM_IDLE
            async with kept_claimed(touch, every, partial(self._loops.error, "touch"),
                                    self._watch.watchdog(stream, _s(entry_id), delivery)):
                await self._runner(step, copy_data(delivery.data), delivery.trace_id)
        except asyncio.CancelledError:
            raise  # stays pending in the stream; XAUTOCLAIM hands it to a live worker later
        except Exception as exc:
            self._counters.failed_attempts += 1
            await self._failed(stream, entry_id, delivery, describe_error(exc))
            return
        finally:
            self._watch.done(_s(entry_id))
        self._counters.delivered += 1
        await self._scripts.finish(stream, entry_id, Outcome.DONE)

    async def _failed(self, stream: str, entry_id: Any, delivery: Delivery, error: str) -> None:
        delay = retry_delay(delivery, error, self._cfg, self._rng)
        if delay is None:
            await self._dead_letter(stream, entry_id, delivery, error)
            return
        member = retry_member(delivery, BACKGROUND if stream.endswith(BACKGROUND) else "")
        await self._scripts.finish(stream, entry_id, Outcome.RETRY, member, time.time() + delay)

    async def _dead_letter(self, stream: str, entry_id: Any, delivery: Delivery, error: str) -> None:
        if await self._scripts.finish(stream, entry_id, Outcome.DEAD, dead_letter_json(delivery, error)):
            self._counters.dead_lettered += 1
            log_dead_letter(delivery, error)
