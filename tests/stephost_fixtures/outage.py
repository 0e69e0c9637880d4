"""What the outage tests' fixture step records in this process (Redis may lose its own copy)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

OUTAGE_STEPS = Path(__file__).parent / "outage_steps"
TOPIC = "fx.record"
STATE_GROUP = "record"

HANDLED: Counter[str] = Counter()  # event id -> completed handler runs
HANDLED_AT: list[float] = []  # time.monotonic() of every completed handler run
FAILED: Counter[str] = Counter()  # event id -> runs that failed on purpose (``failTimes`` in the data)


class PlannedFailureError(RuntimeError):
    pass


def fail_if_planned(event_id: str, fail_times: int) -> None:
    if FAILED[event_id] < fail_times:
        FAILED[event_id] += 1
        raise PlannedFailureError(f"planned failure {FAILED[event_id]}/{fail_times} of {event_id}")


def record(event_id: str) -> None:
    HANDLED[event_id] += 1
    HANDLED_AT.append(time.monotonic())


def reset() -> None:
    HANDLED.clear()
    HANDLED_AT.clear()
    FAILED.clear()
