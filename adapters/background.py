"""A background loop of ours (the lease heartbeat, the dependency checks) stopped in a way no library
can swallow: it checks a flag between its calls, and stopping waits a bounded time.

The same mechanism as :mod:`stephost.stopping`, which the host (importing nothing of ours) keeps for
itself; the layers (tests/test_layers.py) do not let sync/ import the host. Why not ``task.cancel()``
alone: redis-py catches a cancel that lands during some calls and goes on, so the loop never ends and
whoever awaits it waits forever (issue 17, item 5; 25 of 100 cancels during a script call).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile. True when the loop must stop."""
    if not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class Background:
    """``body(stop)`` in its own task. :meth:`stop` sets the flag, waits up to ``grace`` s, cancels
    only then (a last resort) and waits ``grace`` s more: never longer, whatever the task does."""

    def __init__(self, body: Callable[[asyncio.Event], Awaitable[Any]], name: str) -> None:
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[Any] = asyncio.create_task(_call(body, self.stopping), name=name)

    async def stop(self, grace: float) -> bool:
        """True when the task ended; False when it is left behind (it ends after its current call)."""
        self.stopping.set()
        for last_resort in (False, True):
            if self.task.done():
                break
            if last_resort:
                self.task.cancel()
            await asyncio.wait({self.task}, timeout=grace)
        if self.task.done() and not self.task.cancelled():
            self.task.exception()  # retrieved: the loop reports its own errors
        return self.task.done()


async def _call(body: Callable[[asyncio.Event], Awaitable[Any]], stop: asyncio.Event) -> None:
    await body(stop)


async def bounded(call: Awaitable[T], seconds: float) -> T:
    """``call``'s result, or TimeoutError after ``seconds`` even when the call swallows the cancel
    (``asyncio.wait_for`` would wait for such a call to end). A call still running then is cancelled
    and left behind; its outcome is retrieved (never reported as unhandled)."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise TimeoutError(f"no answer within {seconds:g} s")
    return task.result()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
