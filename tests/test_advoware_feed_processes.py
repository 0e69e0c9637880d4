"""Issue 20: two ``serve`` processes on one Redis poll Advoware's changes once per interval between
them, not once each (the feed's cron slot is claimed by one). Real processes, a real redis-server,
the feed every second."""

from __future__ import annotations

import time

import httpx
import pytest

from simulators.common import free_port
from tests.crash_support import Installation
from tests.embedded_support import Process, start_serve, state_root
from tests.redis_server import redis_server_available

pytestmark = [pytest.mark.skipif(not redis_server_available(), reason="needs redis-server"), pytest.mark.slow]

LIST = "GET /api/v1/advonet/Beteiligte"
WINDOW_S = 10.0


def list_reads(advo: str) -> int:
    return int(httpx.get(f"{advo}/__sim/calls", timeout=10).json().get(LIST, 0))


@pytest.mark.parametrize(("profile", "occ"), [("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
def test_two_serve_processes_poll_once_per_interval(profile: str, occ: bool) -> None:
    with state_root() as root:
        inst = Installation(root, redis=True, profile=profile, occ=occ)
        serves: list[Process] = []
        try:
            inst.env["ADVOWARE_POLL_SECONDS"] = "1"
            inst.env["HEALTH_CHECK_INTERVAL_SECONDS"] = "3600"  # one dependency check per serve, at start
            serves.append(start_serve(inst.env, root))
            serves.append(start_serve({**inst.env, "PORT": str(free_port())}, root))
            time.sleep(2)  # both running, each past its start-up reads
            before = list_reads(inst.advo)
            time.sleep(WINDOW_S)
            polls = list_reads(inst.advo) - before
            # one per second between them (each process also probes the list endpoint once, when its
            # first slot comes): about 10, where two pollers would make about 20
            assert WINDOW_S - 2 <= polls <= WINDOW_S + 2, f"{polls} list reads in {WINDOW_S} s by two processes"
        finally:
            for serve in serves:
                serve.stop()
            inst.close()
