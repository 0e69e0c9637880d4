"""Issue 17, item 5: a CLI command ends within its deadline with one line (exit code 4), even when
what it waits for swallows every cancel (redis-py does that for some calls: tests/swallow.py) and
even when its own stop would hang. Real processes: ``run_bounded`` is what every command runs in."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BODY = """
import asyncio, sys
from entrypoints import cli_deadline
cli_deadline.HARD_STOP_MARGIN_S = 1.0

async def main():
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            if {swallow}:
                continue  # the way redis-py's cleanup goes on after a cancel
            raise

sys.exit(cli_deadline.run_bounded(main, 0.5, "beteiligte-sync sync-check"))
"""


@pytest.mark.parametrize("swallow", [False, True], ids=["cancel_honoured", "cancel_swallowed"])
def test_a_command_past_its_deadline_ends_with_one_line_and_exit_code_4(swallow: bool) -> None:
    started = time.monotonic()
    answer = subprocess.run([sys.executable, "-c", BODY.format(swallow=swallow)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    took = time.monotonic() - started
    assert answer.returncode == 4, answer.stderr
    lines = answer.stderr.strip().splitlines()
    assert lines == ["beteiligte-sync sync-check: did not end within 0.5 s; stopped (exit code 4). Run it again, "
                     "or see 'beteiligte-sync status'"]
    assert took < 10
