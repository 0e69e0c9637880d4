"""Key layout and Lua scripts of the Redis Streams bus: each change of bus state is one script, so a
connection lost half-way leaves either all of it or nothing (and an AOF holds whole steps only).

Layout (``<p>`` = key prefix):

* ``<p>:bus:step:<step>`` - one stream per subscribing step, consumer group ``workers``
* ``<p>:bus:step:<step>:background`` - the step's events of background topics (read after the others)
* ``<p>:bus:retry``       - sorted set of deliveries waiting for their backoff (score = due time)
* ``<p>:bus:pending``     - counter of deliveries not yet finished (queued, waiting, in flight)
* ``<p>:deadletters``     - the dead-letter list (:class:`stephost.state.DeadLetterStore`)
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stephost.bus_common import Delivery

GROUP = "workers"
NEW_ENTRIES = ">"  # XREADGROUP: entries never delivered to this group
OWN_PENDING = "0"  # XREADGROUP: entries delivered to this consumer and not yet acknowledged
GROUP_START = "0"  # a (re)created group delivers every entry still in its stream
NOGROUP = "NOGROUP"
BUSYGROUP = "BUSYGROUP"


class Outcome(StrEnum):
    """How a worker finishes an entry."""

    DONE = "done"  # handled: acknowledged, deleted, no longer pending
    RETRY = "retry"  # acknowledged, deleted, waits in the retry set (still pending)
    DEAD = "dead"  # acknowledged, deleted, appended to the dead letters, no longer pending


@dataclass(frozen=True)
class BusKeys:
    prefix: str

    @property
    def stream_prefix(self) -> str:
        return f"{self.prefix}:bus:step:"

    @property
    def retry(self) -> str:
        return f"{self.prefix}:bus:retry"

    @property
    def pending(self) -> str:
        return f"{self.prefix}:bus:pending"

    def stream(self, step: str, lane: str = "") -> str:
        """``lane``: "" or :data:`BACKGROUND` (the stream's suffix)."""
        return self.stream_prefix + step + lane


BACKGROUND = ":background"  # the lane of background topics: a suffix of the step's stream


def entry_delivery(fields: dict[str, str]) -> Delivery:
    """The delivery a stream entry stands for (its next attempt). KeyError/ValueError: not ours."""
    return Delivery(
        topic=fields["topic"],
        step=fields["step"],
        data=json.loads(fields["data"]),
        trace_id=fields["trace_id"],
        attempt=int(fields.get("attempt", "0")) + 1,
    )


def retry_member(delivery: Delivery, lane: str = "") -> str:
    """The retry-set member of a delivery whose ``attempt``-th run failed (read by ``_MOVE_DUE``, which
    puts it back into its lane's stream)."""
    fields = {
        "lane": lane,
        "id": uuid.uuid4().hex,  # two identical retries stay two members
        "topic": delivery.topic,
        "step": delivery.step,
        "data": json.dumps(delivery.data),
        "trace_id": delivery.trace_id,
        "attempt": str(delivery.attempt),
    }
    return json.dumps(fields)


# KEYS: pending counter, then one stream per subscribing step.
# ARGV: max size, topic, data, trace id, then the step names in the order of the streams.
# Returns {1, new depth} or, when the deliveries do not fit, {0, depth}: nothing is written.
_PUBLISH = """
local n = #KEYS - 1
local depth = tonumber(redis.call('GET', KEYS[1]) or '0')
if depth + n > tonumber(ARGV[1]) then
  return {0, depth}
end
for i = 2, #KEYS do
  redis.call('XADD', KEYS[i], '*', 'topic', ARGV[2], 'step', ARGV[i + 3], 'data', ARGV[3],
             'trace_id', ARGV[4], 'attempt', '0')
end
return {1, redis.call('INCRBY', KEYS[1], n)}
"""

# KEYS: pending counter, then one stream per subscribing step.
# ARGV: max size, topic, trace id, number of steps, the step names, then one data payload per event.
# All events or none: {1, new depth} or {0, depth}.
_PUBLISH_MANY = """
local steps = tonumber(ARGV[4])
local first_data = 5 + steps
local n = steps * (#ARGV - first_data + 1)
local depth = tonumber(redis.call('GET', KEYS[1]) or '0')
if depth + n > tonumber(ARGV[1]) then
  return {0, depth}
end
for d = first_data, #ARGV do
  for i = 1, steps do
    redis.call('XADD', KEYS[i + 1], '*', 'topic', ARGV[2], 'step', ARGV[4 + i], 'data', ARGV[d],
               'trace_id', ARGV[3], 'attempt', '0')
  end
end
return {1, redis.call('INCRBY', KEYS[1], n)}
"""

# KEYS: stream, pending counter, retry set, dead letters.
# ARGV: group, entry id, outcome, retry member or dead-letter record, due time of a retry.
# Acts only when this call acknowledged the entry: an entry finished by another worker, or lost with
# an emptied Redis, is not counted twice.
_FINISH = f"""
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] == '{Outcome.RETRY}' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
  return 1
end
if ARGV[3] == '{Outcome.DEAD}' then
  redis.call('RPUSH', KEYS[4], ARGV[4])
end
redis.call('DECR', KEYS[2])
return 1
"""

# KEYS: retry set. ARGV: now, stream prefix. Moves due retries back into their step streams.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local e = cjson.decode(member)
  redis.call('XADD', ARGV[2] .. e['step'] .. (e['lane'] or ''), '*', 'topic', e['topic'], 'step', e['step'],
             'data', e['data'], 'trace_id', e['trace_id'], 'attempt', e['attempt'])
end
return #due
"""


# KEYS: stream. ARGV: group, consumer, entry id.
# Resets the entry's idle time (no delivery counted) while it is still this consumer's: a live worker
# keeps its entry, so XAUTOCLAIM takes over only a dead worker's. Returns 0 when it is no longer ours.
_TOUCH = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""


class BusScripts:
    """The scripts registered on one client (EVALSHA, reloaded by redis-py after an emptied Redis
    answers NOSCRIPT)."""

    def __init__(self, redis: Any, keys: BusKeys, dead_letters_key: str) -> None:
        self._keys = keys
        self._dead_letters_key = dead_letters_key
        self._publish = redis.register_script(_PUBLISH)
        self._publish_many = redis.register_script(_PUBLISH_MANY)
        self._finish = redis.register_script(_FINISH)
        self._move_due = redis.register_script(_MOVE_DUE)
        self._touch = redis.register_script(_TOUCH)

    async def publish(self, max_size: int, topic: str, data: str, trace_id: str, steps: list[str],
                      lane: str = "") -> tuple[bool, int]:
        keys = [self._keys.pending, *(self._keys.stream(step, lane) for step in steps)]
        accepted, depth = await self._publish(keys=keys, args=[max_size, topic, data, trace_id, *steps])
        return bool(accepted), int(depth)

    async def publish_many(self, max_size: int, topic: str, payloads: list[str], trace_id: str,
                           steps: list[str], lane: str = "") -> tuple[bool, int]:
        keys = [self._keys.pending, *(self._keys.stream(step, lane) for step in steps)]
        args = [max_size, topic, trace_id, len(steps), *steps, *payloads]
        accepted, depth = await self._publish_many(keys=keys, args=args)
        return bool(accepted), int(depth)

    async def finish(self, stream: str, entry_id: Any, outcome: Outcome, payload: str = "", due: float = 0.0) -> bool:
        keys = [stream, self._keys.pending, self._keys.retry, self._dead_letters_key]
        return bool(await self._finish(keys=keys, args=[GROUP, entry_id, str(outcome), payload, due]))

    async def touch(self, stream: str, consumer: str, entry_id: Any) -> bool:
        return bool(await self._touch(keys=[stream], args=[GROUP, consumer, entry_id]))

    async def move_due(self, now: float) -> int:
        return int(await self._move_due(keys=[self._keys.retry], args=[now, self._keys.stream_prefix]))
