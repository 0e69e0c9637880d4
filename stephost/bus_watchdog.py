"""The Redis bus's watch over entries in flight: a running handler's entry is kept claimed (touched)
up to ``maxHandlerSeconds``; past that it is reported and let go, so a live worker takes it over.

The touch loop is stopped by a flag it checks after every touch, with a bounded wait
(:mod:`stephost.stopping`): a cancel that lands in a touch (a Lua script call) can be swallowed by
redis-py, and a touch loop that never ended kept its worker, and so its entry, forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from stephost.bus_common import BusCounters, Delivery
from stephost.stopping import StoppableLoop, pause

log = logging.getLogger("stephost.bus")

Clock = Callable[[], float]
Touch = Callable[[], Awaitable[bool]]  # keeps an entry claimed; False when it is no longer ours
TOUCH_STOP_GRACE_SECONDS = 2.0  # a handler's touch loop gets this long (twice) to stop when it ends
OVERDUE, LEFT = "overdue", "touch_loops_left"  # the bus counters of this watch


@dataclass(frozen=True)
class Watchdog:
    """What :func:`kept_claimed` does with an entry whose handler runs longer than ``bound`` seconds:
    ``overdue(seconds)`` reports it, and the entry is no longer touched, so a live worker takes it over
    after ``claimIdleSeconds``. ``stuck()``: the touch loop did not end within twice ``grace``."""

    bound: float
    grace: float
    overdue: Callable[[float], None]
    stuck: Callable[[], None]


@contextlib.asynccontextmanager
async def kept_claimed(touch: Touch, every: float, on_error: Callable[[Exception], None],
                       watchdog: Watchdog, clock: Clock = time.monotonic) -> AsyncIterator[None]:
    """Around a handler call: ``touch`` the entry every ``every`` seconds (its idle time starts
    again), so a handler running longer than ``claimIdleSeconds`` keeps its entry and only a dead
    worker's entries are taken over. Stops touching once the entry is no longer ours, or once the
    handler has run ``watchdog.bound`` seconds (reported); an error (Redis away) is reported and the
    next touch tried as usual. When the handler ends the loop is stopped with a flag it checks after
    every touch (a cancel landing in a touch can be swallowed by redis-py), waiting a bounded time."""
    started = clock()

    async def keep(stop: asyncio.Event) -> None:
        while not await pause(stop, every):
            if clock() - started >= watchdog.bound:
                watchdog.overdue(clock() - started)
                return
            try:
                if not await touch():
                    return
            except Exception as exc:
                on_error(exc)

    loop = StoppableLoop(keep, "stephost-bus-touch")
    try:
        yield
    finally:
        if not await loop.stop(watchdog.grace):
            watchdog.stuck()


class EntryWatch:
    """The entries of this process whose handler runs past ``bound`` seconds (:meth:`overdue`), and
    the counters ``overdue`` (reported so far) and ``touch_loops_left`` (touch loops that did not stop
    in time) in the bus's counters."""

    def __init__(self, bound: float, counters: BusCounters) -> None:
        self.bound = bound
        self._counters = counters
        counters.extra.setdefault(OVERDUE, 0)
        counters.extra.setdefault(LEFT, 0)
        self._overdue: dict[str, dict[str, Any]] = {}  # entry id -> what was reported

    def overdue(self) -> list[dict[str, Any]]:
        """Each: entry, stream, step, trace_id, since (epoch seconds the handler started)."""
        return list(self._overdue.values())

    def done(self, entry_id: str) -> None:
        """The entry's handler ended (however late)."""
        self._overdue.pop(entry_id, None)

    def watchdog(self, stream: str, entry_id: str, delivery: Delivery) -> Watchdog:
        """For :func:`kept_claimed` around this entry's handler."""

        def overdue(seconds: float) -> None:
            self._counters.extra[OVERDUE] += 1
            self._overdue[entry_id] = {"entry": entry_id, "stream": stream, "step": delivery.step,
                                       "trace_id": delivery.trace_id, "since": time.time() - seconds}
            log.error("[step=%s trace=%s] event %s in flight for %.0fs (maxHandlerSeconds %.0f): no longer "
                      "kept, a live worker takes it over after claimIdleSeconds", delivery.step,
                      delivery.trace_id, entry_id, seconds, self.bound)

        def stuck() -> None:
            self._counters.extra[LEFT] += 1
            log.error("[step=%s trace=%s] the touch loop of event %s did not stop within %.0fs; left behind "
                      "(it ends after its current call)", delivery.step, delivery.trace_id, entry_id,
                      2 * TOUCH_STOP_GRACE_SECONDS)

        return Watchdog(self.bound, TOUCH_STOP_GRACE_SECONDS, overdue, stuck)
