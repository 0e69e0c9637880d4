"""The pieces that keep the Redis bus's loops alive: health, quiet logs, backoff, the supervisor."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from stephost.bus_recovery import LoopHealth, LoopSupervisor, QuietLog, reconnect_delay

LOGGER = "test.bus_recovery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_quiet_log_says_an_identical_error_once_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    quiet = QuietLog(logging.getLogger(LOGGER), every=30.0, clock=clock)
    with caplog.at_level(logging.ERROR, LOGGER):
        for _ in range(5):
            quiet.error("worker", ConnectionError("Connection refused"))
        quiet.error("worker", ConnectionError("NOGROUP"))  # another error: its own line
        clock.now += 30.0
        quiet.error("worker", ConnectionError("Connection refused"))
        quiet.reset()  # Redis answered again: the next outage's first error is news
        quiet.error("worker", ConnectionError("Connection refused"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "event bus worker failed, retrying with backoff: ConnectionError: Connection refused",
        "event bus worker failed, retrying with backoff: ConnectionError: NOGROUP",
        "event bus worker failed, retrying with backoff: ConnectionError: Connection refused"
        " (and 4 times more in the last 30s)",
        "event bus worker failed, retrying with backoff: ConnectionError: Connection refused",
    ]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback spam


def test_loop_health_follows_failures_recoveries_and_stalls() -> None:
    clock = Clock()
    health = LoopHealth(stale_after=10.0, clock=clock)
    health.register("worker-0")
    health.register("housekeeping")
    assert not health.healthy()  # nothing read yet
    assert health.ok("worker-0") is False and health.ok("housekeeping") is False
    assert health.healthy()

    for _ in range(6):
        health.failed("worker-0")
        health.failed("housekeeping")
    assert not health.healthy() and health.failures("worker-0") == 6
    clock.now += 4.0
    assert health.ok("housekeeping") is True  # Redis answers again
    assert health.failures("worker-0") == 1  # so the others' backoff restarts at its first step
    assert health.end_outage() is None  # worker-0 has not read yet
    assert health.ok("worker-0") is True and health.end_outage() == 4.0
    assert health.healthy()

    clock.now += 11.0  # a loop that has not reached Redis for longer than stale_after is stuck ...
    assert health.ok("housekeeping") is False
    assert not health.reading("worker-0") and not health.healthy()
    with health.busy("worker-0"):  # ... unless it is running a handler
        assert health.healthy()
    assert health.status()["worker-0"] == {"reading": False, "last_ok_seconds_ago": 11.0, "failures": 0}


def test_reconnect_delay_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    for failures, step in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 2.0), (50, 2.0)]:
        delays = [reconnect_delay(failures, 0.1, 2.0, rng) for _ in range(200)]
        assert step / 2 <= min(delays) and max(delays) <= step


async def test_supervisor_keeps_a_failing_loop_alive_and_reports_it(caplog: pytest.LogCaptureFixture) -> None:
    errors: list[str] = []
    rounds = 0
    read_again = asyncio.Event()
    supervisor: LoopSupervisor

    async def flaky_round(name: str) -> None:
        nonlocal rounds
        rounds += 1
        if rounds <= 5:
            raise ConnectionError("Connection refused")
        supervisor.reached(name)
        read_again.set()
        await asyncio.sleep(0.001)

    supervisor = LoopSupervisor(
        logging.getLogger(LOGGER), base=0.001, cap=0.002, stale_after=10.0, log_every=30.0,
        on_error=lambda name, exc: errors.append(f"{name}: {exc}"),
    )
    with caplog.at_level(logging.WARNING, LOGGER):
        supervisor.start({"worker-0": ("worker", flaky_round)})
        await asyncio.wait_for(read_again.wait(), 10)
        assert supervisor.health.healthy()
        await supervisor.stop(grace=1.0)
    assert errors == ["worker-0: Connection refused"] * 5
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "event bus worker failed, retrying with backoff: ConnectionError: Connection refused"
    assert messages[1].startswith("event bus reading again after") and len(messages) == 2
