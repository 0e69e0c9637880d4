"""Two ``serve`` processes on one Redis run the scheduled sync check once per schedule slot, not once
per process (issue 10): real processes, a real redis-server, a schedule firing every second."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx
import pytest

from simulators.common import free_port
from tests.crash_support import Installation
from tests.embedded_support import Process, start_serve, state_root, wait_for
from tests.redis_server import redis_server_available

pytestmark = pytest.mark.skipif(not redis_server_available(), reason="needs redis-server")

EVERY_SECOND = "* * * * * *"
SLOTS = 4
CLAIMED = re.compile(r"\[step=beteiligte_sync_cron\] scheduled run of (\S+) claimed by")
ESPO_LIST = "GET /api/v1/CBeteiligte"


def claimed_slots(logs: list[Path]) -> Counter[str]:
    return Counter(m.group(1) for log in logs for m in CLAIMED.finditer(log.read_text(errors="replace")))


def test_two_processes_run_each_scheduled_sync_check_once() -> None:
    with state_root() as root:
        inst = Installation(root, redis=True, profile="9")
        serves: list[Process] = []
        try:
            inst.env["SYNC_CHECK_CRON"] = EVERY_SECOND
            inst.env["LOG_LEVEL"] = "DEBUG"  # a claimed slot is logged at DEBUG (an idle serve is quiet at INFO)
            inst.env["HEALTH_CHECK_INTERVAL_SECONDS"] = "3600"  # one dependency check per serve, at start
            serves.append(start_serve(inst.env, root))
            serves.append(start_serve({**inst.env, "PORT": str(free_port())}, root))
            logs = [s.log for s in serves]

            wait_for(f"{SLOTS} scheduled sync checks", lambda: len(claimed_slots(logs)) >= SLOTS, every=0.5)
            for serve in serves:
                serve.stop()
            slots = claimed_slots(logs)
            per_process = [len(claimed_slots([log])) for log in logs]

            assert slots and max(slots.values()) == 1, f"a slot ran more than once: {slots}"
            assert sum(per_process) == len(slots)
            # Each check lists EspoCRM once (one page: no records): as many lists as slots, not twice as
            # many; each serve's dependency check at start reads the entity once more.
            lists = httpx.get(f"{inst.espo}/__sim/calls", timeout=10).json().get(ESPO_LIST, 0)
            assert lists == len(slots) + len(serves), f"{lists} EspoCRM lists for {len(slots)} slots"
        finally:
            for serve in serves:
                serve.stop()
            inst.close()
