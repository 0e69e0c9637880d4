"""Every CLI command ends within a deadline, with one line when it hits it (issue 17, item 5)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import click

from entrypoints.check_report import ExitCode

COMMAND_DEADLINE_S = 900.0  # a command without its own --timeout ends within this
DEADLINE_MARGIN_S = 60.0  # a command with --timeout: that, plus this for its scan and its stop
HARD_STOP_MARGIN_S = 30.0  # after the deadline, the stop gets this long before the process is ended

T = TypeVar("T")


def run_bounded(main: Callable[[], Awaitable[T]], deadline: float, command: str) -> T:
    """``asyncio.run(main())``, ended within ``deadline`` seconds: then one line on stderr and exit code
    :data:`ExitCode.TIMED_OUT` (``SystemExit``). Bounded whatever the calls in flight do: the body is
    waited for without relying on a cancel, and should even the stop hang (a call that swallows every
    cancel), a timer thread ends the process ``HARD_STOP_MARGIN_S`` later with the same line."""
    line = (f"{command}: did not end within {deadline:g} s; stopped (exit code {int(ExitCode.TIMED_OUT)}). "
            "Run it again, or see 'beteiligte-sync status'")
    said = threading.Event()

    def hard_stop() -> None:
        if not said.is_set():
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        os._exit(ExitCode.TIMED_OUT)

    async def within() -> tuple[bool, T | None]:
        task = asyncio.ensure_future(main())
        done, _ = await asyncio.wait({task}, timeout=deadline)  # returns in time whatever the body does
        if done:
            return True, task.result()
        task.cancel()  # asyncio.run's cleanup waits for it; the timer ends a wait that never ends
        click.echo(line, err=True)
        said.set()
        return False, None

    timer = threading.Timer(deadline + HARD_STOP_MARGIN_S, hard_stop)
    timer.daemon = True
    timer.start()
    try:
        finished, result = asyncio.run(within())
    finally:
        timer.cancel()
    if not finished:
        sys.exit(ExitCode.TIMED_OUT)
    return cast(T, result)
