"""What keeps the Redis bus's loops alive through outages: a supervisor, per-loop health, quiet logs.

:class:`LoopSupervisor` runs named loops (the workers, the housekeeping) until stopped: an error in a
round is logged, then the round is tried again after a capped exponential backoff, so no error ends
a loop. Each loop reports every successful round trip to Redis (:meth:`LoopHealth.ok`) and every
failure (:meth:`LoopHealth.failed`). The bus is *reading* while every loop is alive, its last round
trip succeeded, and that round trip is recent (or the loop is busy in a handler). :class:`QuietLog`
turns a flood of identical errors (four workers and the housekeeping failing at every backoff step
during an outage) into one line per error and interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from stephost.bus_common import describe_error
from stephost.stopping import stop_tasks

Clock = Callable[[], float]
Round = Callable[[str], Awaitable[None]]  # one round of a loop, given the loop's name


def reconnect_delay(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Wait after the ``failures``-th consecutive failure: doubling from ``base`` up to ``cap``, and
    a random half of it off, so loops (and processes) do not retry in lockstep."""
    step = min(cap, base * 2 ** max(0, failures - 1))
    return rng.uniform(step / 2, step)


@dataclass
class _Loop:
    task: asyncio.Task[Any] | None = None
    last_ok: float | None = None
    failing_since: float | None = None
    failures: int = 0
    busy: bool = False


class LoopHealth:
    """Health of a bus's loops. ``stale_after``: a loop that is neither busy nor failing but has not
    reached Redis for this many seconds counts as not reading (a hung connection)."""

    def __init__(self, stale_after: float, clock: Clock = time.monotonic) -> None:
        self._stale_after = stale_after
        self._clock = clock
        self._loops: dict[str, _Loop] = {}
        self._outage_since: float | None = None

    def register(self, name: str, task: asyncio.Task[Any] | None = None) -> None:
        self._loops[name] = _Loop(task=task)

    def clear(self) -> None:
        self._loops.clear()
        self._outage_since = None

    def failures(self, name: str) -> int:
        """Consecutive failures of ``name`` since its last success (drives its backoff)."""
        return self._loops[name].failures

    def failed(self, name: str) -> None:
        loop = self._loops[name]
        now = self._clock()
        loop.failures += 1
        if loop.failing_since is None:
            loop.failing_since = now
        if self._outage_since is None:
            self._outage_since = now

    def ok(self, name: str) -> bool:
        """Record a successful round trip. True when ``name`` was failing until now: Redis answers
        again, so the other loops' backoff shrinks to its first step."""
        loop = self._loops[name]
        loop.last_ok = self._clock()
        if loop.failing_since is None:
            return False
        loop.failing_since = None
        for other in self._loops.values():
            other.failures = min(other.failures, 1)
        loop.failures = 0
        return True

    def end_outage(self) -> float | None:
        """The outage's length in seconds if it is over now (every loop reading again), else None."""
        if self._outage_since is None or any(loop.failing_since is not None for loop in self._loops.values()):
            return None
        outage, self._outage_since = self._clock() - self._outage_since, None
        return outage

    @contextlib.contextmanager
    def busy(self, name: str) -> Iterator[None]:
        """Around a handler call: a long handler is not a stalled loop."""
        loop = self._loops[name]
        loop.busy = True
        try:
            yield
        finally:
            loop.busy = False

    def is_busy(self, name: str) -> bool:
        return self._loops[name].busy

    def reading(self, name: str) -> bool:
        loop = self._loops[name]
        if loop.task is not None and loop.task.done():
            return False
        if loop.failing_since is not None or loop.last_ok is None:
            return False
        return loop.busy or self._clock() - loop.last_ok <= self._stale_after

    def healthy(self) -> bool:
        return bool(self._loops) and all(self.reading(name) for name in self._loops)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per loop: ``reading``, seconds since its last successful round trip, consecutive failures."""
        now = self._clock()
        return {
            name: {
                "reading": self.reading(name),
                "last_ok_seconds_ago": None if loop.last_ok is None else round(now - loop.last_ok, 3),
                "failures": loop.failures,
            }
            for name, loop in self._loops.items()
        }


class QuietLog:
    """Logs an error once per ``every`` seconds per (where, error text); counts the repeats and
    says how many there were with the next line. No tracebacks: the error text is the news."""

    def __init__(self, logger: logging.Logger, every: float, clock: Clock = time.monotonic) -> None:
        self._log = logger
        self._every = every
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # -> (logged at, repeats since)

    def error(self, where: str, exc: BaseException) -> None:
        key = (where, describe_error(exc))
        now = self._clock()
        self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._every or k == key}
        logged_at, repeats = self._seen.get(key, (None, 0))
        if logged_at is not None and now - logged_at < self._every:
            self._seen[key] = (logged_at, repeats + 1)
            return
        more = f" (and {repeats} times more in the last {self._every:.0f}s)" if repeats else ""
        self._log.error("event bus %s failed, retrying with backoff: %s%s", where, key[1], more)
        self._seen[key] = (now, 0)

    def reset(self) -> None:
        """After a recovery, so the next outage's first error is logged at once."""
        self._seen.clear()


class LoopSupervisor:
    """Runs named loops (``name -> (kind, round)``) until :meth:`stop`. A failed round is reported
    to ``on_error(name, exc)``, logged once per kind and error text and interval, and tried again
    after :func:`reconnect_delay` (or as soon as another loop reaches Redis again). Rounds call
    :meth:`reached` after each successful round trip to Redis and wrap handler calls in :meth:`busy`."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        base: float,
        cap: float,
        stale_after: float,
        log_every: float,
        on_error: Callable[[str, Exception], None],
        rng: random.Random | None = None,
    ) -> None:
        self._log = logger
        self._base, self._cap = base, cap
        self._rng = rng or random.Random()
        self._on_error = on_error
        self.health = LoopHealth(stale_after)
        self._errors = QuietLog(logger, log_every)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self.running = False

    def start(self, loops: dict[str, tuple[str, Round]]) -> None:
        self.running = True
        self.health.clear()
        for name, (kind, round_) in loops.items():
            self._tasks[name] = asyncio.create_task(self._run(name, kind, round_), name=f"stephost-bus-{name}")
            self.health.register(name, self._tasks[name])

    async def stop(self, grace: float) -> list[str]:
        """Stop the loops: none starts another round or handler; idle loops (blocked in a read) are
        cancelled at once, loops busy in a handler may finish it (``grace`` s), and whatever still runs
        then is cancelled and waited for ``grace`` s more (a cancel can be swallowed: never waits
        longer). Returns the names of loops that did not end (left behind, logged)."""
        self.running = False
        self._wake.set()  # loops waiting out a backoff look at ``running`` now
        idle = [task for name, task in self._tasks.items() if not self.health.is_busy(name)]
        late = await stop_tasks(self._tasks.values(), None, grace, cancel_at_once=idle)
        names = [name for name, task in self._tasks.items() if task in late]
        if names:
            self._log.error("event bus loops %s did not stop within %.0fs; left behind (they end after "
                            "their current call)", ", ".join(names), 2 * grace)
        self._tasks = {}
        return names

    def error(self, where: str, exc: BaseException) -> None:
        """Log an error outside the loops (start, drain) the same quiet way."""
        self._errors.error(where, exc)

    def reached(self, name: str) -> None:
        """``name`` just completed a round trip to Redis."""
        if not self.health.ok(name):
            return
        self._wake.set()  # Redis answers again: loops waiting out a long backoff try now
        self._wake = asyncio.Event()
        outage = self.health.end_outage()
        if outage is not None:
            self._log.warning("event bus reading again after %.1fs of errors", outage)
            self._errors.reset()

    def busy(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self.health.busy(name)

    async def _run(self, name: str, kind: str, round_: Round) -> None:
        while self.running:
            try:
                await round_(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.failed(name)
                self._on_error(name, exc)
                self._errors.error(kind, exc)
                await self._pause(reconnect_delay(self.health.failures(name), self._base, self._cap, self._rng))

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or until another loop finds Redis answering again."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
