"""How many requests one process has in flight to one system: a cap that backs off by itself (AIMD).

Each API client holds one :class:`InflightLimit`. A request waits for a free slot, so a burst of
syncs never floods a firm's EspoCRM or Advoware beyond ``maximum`` requests at once. When the system
answers ``429`` or ``503`` (it is overloaded), the cap halves (not below 1); after as many successful
answers in a row as the cap allows at once (one "window"), it grows by one, back up to ``maximum``.
Like TCP's congestion window: only answers to requests sent *after* the last cut can cut again, so a
burst of ``429`` from requests already in flight counts as one overload, not as ten.

No asyncio primitive is kept between calls (futures are made per wait), so one limit can serve clients
used from several event loops one after the other (the CLI runs ``asyncio.run`` more than once).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)
OVERLOAD_STATUSES = frozenset({429, 503})


@dataclass
class Slot:
    """One request's place; ``epoch`` is the cap's generation when it was sent."""

    epoch: int


class InflightLimit:
    def __init__(self, system: str, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"{system}: the cap of requests in flight must be at least 1, not {maximum}")
        self.system = system
        self.maximum = maximum
        self.limit = maximum
        self.inflight = 0
        self._epoch = 0
        self._successes = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Hold one of the ``limit`` places for the duration of one request."""
        await self._acquire()
        try:
            yield Slot(self._epoch)
        finally:
            self.inflight -= 1
            self._wake()

    def answered(self, slot: Slot, status: int | None) -> None:
        """Feed the answer's status back (``None``: no answer, e.g. a timeout: neither way)."""
        if status in OVERLOAD_STATUSES:
            self._overloaded(slot, status)
        elif status is not None and status < 500:
            self._succeeded()

    def _overloaded(self, slot: Slot, status: int) -> None:
        if slot.epoch != self._epoch:
            return  # sent before the last cut: the same overload, already answered
        self._epoch += 1
        self._successes = 0
        before, self.limit = self.limit, max(1, self.limit // 2)
        log.warning("%s answered %d: requests in flight capped at %d (was %d, setting %d); it grows back "
                    "by itself", self.system, status, self.limit, before, self.maximum)

    def _succeeded(self) -> None:
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes < self.limit:
            return
        self._successes = 0
        self.limit += 1
        if self.limit == self.maximum:
            log.info("%s: requests in flight back at the setting (%d)", self.system, self.maximum)
        self._wake()

    async def _acquire(self) -> None:
        while self.inflight >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # it was woken for a slot it will not take: pass the slot on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.inflight += 1

    def _wake(self) -> None:
        free = self.limit - self.inflight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
