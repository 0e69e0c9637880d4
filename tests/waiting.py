"""Waiting for an observable condition instead of sleeping a guessed margin."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable

DEADLINE_S = 10.0  # generous: only a broken test or a wedged machine takes this long
POLL_S = 0.005


async def until(condition: Callable[[], object], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Return as soon as ``condition()`` is truthy (awaited when it returns an awaitable); fail naming
    ``what`` after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while not await _value(condition):
        if time.monotonic() > end:
            raise AssertionError(f"waited {deadline_s:.0f} s for: {what}")
        await asyncio.sleep(POLL_S)


async def _value(condition: Callable[[], object]) -> object:
    value = condition()
    return await value if inspect.isawaitable(value) else value
