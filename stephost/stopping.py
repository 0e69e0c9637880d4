"""Stopping a background loop in a way no library can swallow.

A loop that calls Redis or HTTP must not rely on ``task.cancel()`` to end: redis-py catches a cancel
that lands during some calls (a script call's connection cleanup) and goes on, so the loop would run
forever and whoever awaits it would wait forever. Instead:

- the loop checks a :class:`asyncio.Event` between its calls and sleeps with :func:`pause` (which
  returns at once when the event is set);
- :func:`stop_task` sets the event and waits a bounded time for the task to end. Only a task still
  running after that is cancelled (a last resort), and waited for once more, again bounded. A task
  that survives that too is left behind: it ends at its next look at the event, and the caller is told
  (``False``) so it can report it. The caller never waits longer than twice ``grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile. True when the loop must stop."""
    if not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def stop_task(task: asyncio.Task[Any], stop: asyncio.Event, grace: float) -> bool:
    """Set ``stop`` and let ``task`` end (bounded, see the module text). True when it ended."""
    return not await stop_tasks([task], stop, grace)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], stop: asyncio.Event | None, grace: float,
                     *, cancel_at_once: Iterable[asyncio.Task[Any]] = ()) -> set[asyncio.Task[Any]]:
    """Set ``stop`` (when given) and let ``tasks`` end: up to ``grace`` s, then the late ones are
    cancelled and waited for up to ``grace`` s more. ``cancel_at_once``: tasks (among ``tasks``) safe to
    cancel at once (a blocking read whose entries stay in Redis). Returns the tasks still running."""
    if stop is not None:
        stop.set()
    running = {task for task in tasks if not task.done()}
    for task in cancel_at_once:
        task.cancel()
    for last_resort in (False, True):
        if not running:
            break
        if last_resort:
            for task in running:
                task.cancel()
        await asyncio.wait(running, timeout=grace)  # returns after ``grace`` whatever the tasks do
        running = {task for task in running if not task.done()}
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the loop reported its own errors (or it had none)
    return running


class StoppableLoop:
    """``body(stop)`` in its own task, stopped with :meth:`stop` (see :func:`stop_task`)."""

    def __init__(self, body: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] = asyncio.create_task(_run(body, self.stopping), name=name)

    async def stop(self, grace: float) -> bool:
        return await stop_task(self.task, self.stopping, grace)


async def _run(body: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event) -> None:
    await body(stop)
