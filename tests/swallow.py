"""A call that swallows cancels the way redis-py does (issue 17, item 5).

redis-py catches a ``CancelledError`` that lands during some calls (a script call's connection
cleanup) and goes on: measured with redis-py 8.2 against a real redis-server, 25 of 100 cancels of a
loop of script calls were swallowed. :class:`SwallowingCall` makes that deterministic: it does the
real call, then stays in flight until the test releases it, catching every cancel meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class SwallowingCall:
    """Wraps ``real``. Calls hold (in flight) while ``hold`` is set, swallowing cancels; ``in_flight``
    is set once a call holds. ``calls`` counts calls started, ``swallowed`` the cancels caught."""

    def __init__(self, real: Callable[..., Awaitable[Any]], *, hold: bool = True) -> None:
        self.real = real
        self.in_flight = asyncio.Event()
        self.released = asyncio.Event()
        if not hold:
            self.released.set()
        self.calls = 0
        self.swallowed = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        result = await self.real(*args, **kwargs)
        while not self.released.is_set():
            self.in_flight.set()
            try:
                await self.released.wait()
            except asyncio.CancelledError:  # what redis-py does in its cleanup: go on
                self.swallowed += 1
        return result

    def release(self) -> None:
        self.released.set()


async def cancel_is_swallowed(call: SwallowingCall) -> bool:
    """Reproduces the swallow: a task in ``call`` cancelled once goes on running."""
    task = asyncio.create_task(call())
    await call.in_flight.wait()
    task.cancel()
    await asyncio.sleep(0.05)
    swallowed = not task.done()
    call.release()
    await task
    return swallowed
