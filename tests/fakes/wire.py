"""What the HTTP boundary adds that the fakes keep: JSON on the wire, call counters, injected faults.

A fake serves a call straight from its simulator's state, but first counts it in the simulator's
:class:`~simulators.common.CallCounter` under the same ``METHOD /normalized/path`` key and consults its
:class:`~simulators.common.FaultInjector` with the same method and path: a test that injects a fault
or counts calls reads the same numbers whichever client it runs with. Supported fault fields:
``status`` (+ ``retry_after``, ``body``), ``delay`` (a delay at or over the client's timeout is a
timeout; the write still lands after ``delay``, as with a slow server), ``lose_answer``,
``before``/``after``, ``latency``; ``times``/``skip``/``probability`` work as the injector picks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.common import CallCounter, normalize_path
from simulators.faults import FaultInjector

Serve = Callable[[], Any]


def wire(value: Any) -> Any:
    """``value`` after a trip through JSON, as the other side of an HTTP call would see it."""
    return json.loads(json.dumps(value))


@dataclass
class FaultAnswer(Exception):
    """An injected answer instead of the served one: ``status`` with the raw ``body`` (``None``: none)."""

    status: int
    body: str | None
    retry_after: int | None


@dataclass
class CallTimedOut(Exception):
    """The client gave up waiting (the request may still be applied later, or already was)."""


@dataclass
class Boundary:
    """Counts, faults and the client's timeout for one fake client over one simulator."""

    calls: CallCounter
    faults: FaultInjector
    timeout: float
    _late: set[asyncio.Task[Any]] = field(default_factory=set)

    async def call(self, method: str, path: str, serve: Serve) -> Any:
        """``serve()`` as the simulator's middleware would run it for ``method path``; raises
        :class:`FaultAnswer` or :class:`CallTimedOut` where the HTTP client would see those."""
        self.calls.hit(f"{method} {normalize_path(path)}")
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        rule = self.faults.pick(method, path)
        if rule is None:
            return wire(serve())
        if rule.before is not None:
            rule.before()
        if rule.lose_answer:
            result = wire(serve())  # applied; the answer is held back for ``delay``
            await self._wait(rule.delay)
            return result
        if rule.delay:
            await self._wait(rule.delay, later=None if rule.status else serve)
        if rule.status:
            raise FaultAnswer(rule.status, rule.body, rule.retry_after)
        result = wire(serve())
        if rule.after is not None:
            rule.after()
        return result

    async def _wait(self, delay: float, later: Serve | None = None) -> None:
        """Wait ``delay``; past the client's timeout give up, leaving ``later`` to run at ``delay``."""
        if delay < self.timeout:
            await asyncio.sleep(delay)
            return
        if later is not None:
            task = asyncio.create_task(_run_at(delay, later))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        await asyncio.sleep(self.timeout)
        raise CallTimedOut()

    async def aclose(self) -> None:
        for task in list(self._late):
            await task


async def _run_at(delay: float, serve: Serve) -> None:
    await asyncio.sleep(delay)
    try:
        serve()
    except Exception:  # nobody waits for this answer any more, as with a slow server
        return


def fault_json(body: str | None) -> Any:
    """The injected body parsed as JSON, or ``None`` (empty or not JSON)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None

