"""Durable event bus on Redis Streams (needs a real Redis: uses Lua and XAUTOCLAIM).

Layout (``<p>`` = key prefix):

* ``<p>:bus:step:<step>`` - one stream per subscribing step (fan-out = one XADD per subscriber,
  all in one MULTI), consumer group ``workers``
* ``<p>:bus:retry``       - sorted set of deliveries waiting for their backoff (score = due time)
* ``<p>:bus:pending``     - counter of deliveries not yet finished (queued, waiting, in flight)

A worker XACKs + XDELs an entry only after the handler succeeded, moved it to the retry set, or
dead-lettered it (each in one MULTI). Entries whose worker died stay pending and are taken over
with XAUTOCLAIM after ``claimIdleSeconds``. Same retry / dead-letter semantics as the in-process bus.
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
from typing import Any

from redis.exceptions import ResponseError

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

log = logging.getLogger("stephost.bus")
GROUP = "workers"

# Move due retries back into their step streams, atomically.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local e = cjson.decode(member)
  redis.call('XADD', ARGV[2] .. e['step'], '*', 'topic', e['topic'], 'step', e['step'],
             'data', e['data'], 'trace_id', e['trace_id'], 'attempt', e['attempt'])
end
return #due
"""


def _s(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


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
        rng: random.Random | None = None,
    ) -> None:
        self._subscribers = subscribers_by_topic(steps)
        self._steps = {s.name: s for s in steps}
        self._runner = runner
        self._dead_letters = dead_letters
        self._cfg = queue
        self._redis = redis
        self._stream_prefix = f"{key_prefix}:bus:step:"
        self._retry_key = f"{key_prefix}:bus:retry"
        self._pending_key = f"{key_prefix}:bus:pending"
        names = sorted({s.name for subs in self._subscribers.values() for s in subs})
        self._streams = [self._stream_prefix + name for name in names]
        self._poll = poll_seconds
        self._rng = rng or random.Random()
        self._consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._depth = 0
        self._counters = BusCounters()

    # -- public API ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopped = False
        for stream in self._streams:
            try:
                await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        workers = self._cfg.workers if self._streams else 0
        self._tasks = [asyncio.create_task(self._work(i)) for i in range(workers)]
        self._tasks.append(asyncio.create_task(self._housekeeping()))

    async def publish(self, topic: str, data: Any, trace_id: str) -> int:
        subscribers = self._subscribers.get(topic, [])
        if self._stopped:
            raise QueueFullError("event bus is stopped")
        self._counters.published += 1
        if not subscribers:
            return 0
        payload = json.dumps(copy_data(data))
        depth = int(await self._redis.incrby(self._pending_key, len(subscribers)))
        if depth > self._cfg.max_size:
            await self._redis.decrby(self._pending_key, len(subscribers))
            raise QueueFullError(f"event queue full ({depth - len(subscribers)}/{self._cfg.max_size})")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for step in subscribers:
                    fields = {"topic": topic, "step": step.name, "data": payload, "trace_id": trace_id}
                    pipe.xadd(self._stream_prefix + step.name, {**fields, "attempt": 0})
                await pipe.execute()
        except Exception:
            await self._redis.decrby(self._pending_key, len(subscribers))
            raise
        self._depth = depth
        return len(subscribers)

    async def publish_many(self, topic: str, items: list[Any], trace_id: str) -> int:
        """One event per item, all or nothing, in two round trips (reserve, then one MULTI of XADDs)."""
        subscribers = self._subscribers.get(topic, [])
        if self._stopped:
            raise QueueFullError("event bus is stopped")
        self._counters.published += len(items)
        count = len(subscribers) * len(items)
        if not count:
            return 0
        payloads = [json.dumps(copy_data(data)) for data in items]
        depth = int(await self._redis.incrby(self._pending_key, count))
        if depth > self._cfg.max_size:
            await self._redis.decrby(self._pending_key, count)
            raise QueueFullError(f"event queue full ({depth - count}/{self._cfg.max_size})")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for payload in payloads:
                    for step in subscribers:
                        fields = {"topic": topic, "step": step.name, "data": payload, "trace_id": trace_id}
                        pipe.xadd(self._stream_prefix + step.name, {**fields, "attempt": 0})
                await pipe.execute()
        except Exception:
            await self._redis.decrby(self._pending_key, count)
            raise
        self._depth = depth
        return count

    def depth(self) -> int:
        """Pending deliveries as last seen (refreshed on every publish and poll)."""
        return self._depth

    def stats(self) -> dict[str, int]:
        return {**self._counters.as_dict(), "depth": self._depth}

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - contract's drain(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._depth = int(await self._redis.get(self._pending_key) or 0)
            if self._depth <= 0:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    async def stop(self, grace: float = 10.0) -> None:
        """Let in-flight handlers finish (up to ``grace`` s); unstarted entries stay in Redis."""
        self._stopped = True
        for task in self._tasks:
            if task not in self._busy:
                task.cancel()
        busy = [t for t in self._tasks if t in self._busy]
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- internals ------------------------------------------------------------------------------

    async def _work(self, index: int) -> None:
        me = asyncio.current_task()
        assert me is not None
        consumer = f"{self._consumer}-{index}"
        block_ms = max(1, int(self._poll * 1000))
        while not self._stopped:
            try:
                reply = await self._redis.xreadgroup(
                    GROUP, consumer, dict.fromkeys(self._streams, ">"), count=1, block=block_ms
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("event bus read failed: %s", describe_error(exc))
                await asyncio.sleep(self._poll)
                continue
            for stream, entries in reply or []:
                for entry_id, fields in entries:
                    self._busy.add(me)
                    try:
                        await self._process(_s(stream), entry_id, fields)
                    finally:
                        self._busy.discard(me)

    async def _process(self, stream: str, entry_id: Any, raw: dict[Any, Any]) -> None:
        fields = {_s(k): _s(v) for k, v in raw.items()}
        delivery = Delivery(
            topic=fields["topic"],
            step=fields["step"],
            data=json.loads(fields["data"]),
            trace_id=fields["trace_id"],
            attempt=int(fields.get("attempt", "0")) + 1,
        )
        step = self._steps.get(delivery.step)
        try:
            if step is None:
                raise LookupError(f"no event step named {delivery.step!r} in this host")
            await self._runner(step, copy_data(delivery.data), delivery.trace_id)
        except asyncio.CancelledError:
            raise  # stays pending in the stream; XAUTOCLAIM hands it to a live worker later
        except Exception as exc:
            self._counters.failed_attempts += 1
            await self._failed(stream, entry_id, delivery, describe_error(exc))
            return
        self._counters.delivered += 1
        await self._finish(stream, entry_id)

    async def _finish(self, stream: str, entry_id: Any, retry: tuple[str, float] | None = None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            if retry is not None:
                pipe.zadd(self._retry_key, {retry[0]: retry[1]})
            else:
                pipe.decr(self._pending_key)
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def _failed(self, stream: str, entry_id: Any, delivery: Delivery, error: str) -> None:
        delay = retry_delay(delivery, error, self._cfg, self._rng)
        if delay is None:
            self._counters.dead_lettered += 1
            await dead_letter(self._dead_letters, delivery, error)
            await self._finish(stream, entry_id)
            return
        member = json.dumps(
            {
                "id": uuid.uuid4().hex,
                "topic": delivery.topic,
                "step": delivery.step,
                "data": json.dumps(delivery.data),
                "trace_id": delivery.trace_id,
                "attempt": str(delivery.attempt),
            }
        )
        await self._finish(stream, entry_id, retry=(member, time.time() + delay))

    async def _housekeeping(self) -> None:
        """Move due retries back into their streams and take over entries of dead workers."""
        consumer = f"{self._consumer}-claim"
        idle_ms = int(self._cfg.claim_idle_seconds * 1000)
        while not self._stopped:
            try:
                await self._redis.eval(_MOVE_DUE, 1, self._retry_key, str(time.time()), self._stream_prefix)
                for stream in self._streams:
                    reply = await self._redis.xautoclaim(stream, GROUP, consumer, idle_ms, "0-0", count=10)
                    for entry_id, fields in reply[1]:
                        if fields is None:  # deleted meanwhile
                            continue
                        log.warning("taking over event %s on %s from a dead worker", _s(entry_id), stream)
                        await self._process(stream, entry_id, fields)
                self._depth = int(await self._redis.get(self._pending_key) or 0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("event bus housekeeping failed: %s", describe_error(exc))
            await asyncio.sleep(self._poll)
