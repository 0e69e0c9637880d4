"""Discovery by Kanzlei as a person meets it (issue 21, item 1): the sandbox ``serve`` (a real process)
finds its Advoware simulator through the simulator's configurator and syncs through the discovered
addresses; ``doctor``, ``status`` and the status page name them, ``serve`` says it in one INFO line;
a ``serve`` whose configurator cannot be reached and that has no cached answer stops with one line."""

from __future__ import annotations

import re

import httpx
import pytest

from adapters.advoware_discovery import FIX
from simulators.advoware.configurator import PATH
from simulators.common import free_port
from tests.embedded_support import ESPO_API_KEY, cli, env_for, state_root
from tests.ops_support import TOKEN, sandbox_serve

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_the_sandbox_syncs_through_discovered_addresses_and_every_view_names_them() -> None:
    with sandbox_serve() as box:  # its three samples are synced when it yields
        calls = httpx.get(f"{box.advo}/__sim/calls", timeout=10).json()
        assert calls[f"GET {PATH}"] == 1, calls
        assert calls["POST /gateway/api/v1/Token"] >= 1 and "POST /api/v1/Token" not in calls, calls
        assert calls["POST /api/v1/advonet/Beteiligte"] == 3, calls  # the creates, on the connector
        found = rf"Kanzlei sandbox: API {re.escape(box.advo)} \(connectorUrl\), token gateway " \
                rf"{re.escape(box.advo)}/gateway \(securityGateway\)"
        started = [line for line in box.serve.output().splitlines() if "Advoware discovered:" in line]
        assert len(started) == 1 and " INFO " in started[0], started
        assert re.search(found + "; fresh from the configurator", started[0]), started

        doctor = box.run("doctor")
        line = next(x for x in doctor.stdout.splitlines() if x.startswith("✓ Advoware discovery: "))
        assert re.search(found + "; fresh from the configurator", line), doctor.stdout
        assert "✓ Advoware read" in doctor.stdout and "sandbox: the simulators of the running serve" in doctor.stdout

        status = box.run("status")
        assert re.search("Advoware addresses: discovered: " + found + "; from the store's cache", status.stdout), \
            status.stdout
        page = httpx.get(f"{box.url}/status", auth=("ops", TOKEN), timeout=30).text
        assert "Advoware addresses" in page and re.search("discovered: " + found, page)


def test_serve_without_a_reachable_configurator_or_a_cache_stops_with_one_line() -> None:
    with state_root() as root:
        env = env_for(root / "state", free_port(), ESPOCRM_URL="http://127.0.0.1:9", ESPOCRM_API_KEY=ESPO_API_KEY,
                      ADVOWARE_KANZLEI="kanzlei-x", ADVOWARE_APP_ID="a", ADVOWARE_API_KEY="a2V5",
                      ADVOWARE_DATABASE="d", ADVOWARE_USER="u", ADVOWARE_PASSWORD="p",
                      ADVOWARE_CONFIGURATOR_URL=f"http://127.0.0.1:{free_port()}{PATH}")
        done = cli(env, "serve", cwd=root)
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert "configurator" in last and "Kanzlei 'kanzlei-x'" in last and "not reachable" in last, done.stderr
    assert last.endswith(FIX), last
