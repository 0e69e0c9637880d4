"""Hostile test of "a new operator can answer from the page and the commands alone: is it healthy"
(issue 9): ``status`` shows each dependency as serve's checks last found it, read from the store. Once
serve is gone those states are never refreshed, yet ``status`` still calls them ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.common import free_port
from tests.embedded_support import Process, cli, env_for, start_serve, state_root, wait_for
from tests.test_ops_health import get, simulator_on, systems_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as path:
        yield path


def test_hostile_status_does_not_call_a_dependency_ok_from_a_serve_that_is_gone(root: Path) -> None:
    espo_port, advo_port = free_port(), free_port()
    sims: list[Process] = [simulator_on("simulators.espocrm", espo_port, root),
                           simulator_on("simulators.advoware", advo_port, root)]
    env = env_for(root / "state", free_port(),
                  **systems_env(f"http://127.0.0.1:{espo_port}", f"http://127.0.0.1:{advo_port}"))
    try:
        serve = start_serve(env, root)
        try:
            wait_for("/ready to answer 200", lambda: get(env["PORT"], "/ready").status_code == 200)
        finally:
            serve.stop()
        sims[1].stop()  # Advoware goes away after serve has stopped checking
        status = cli(env, "status", cwd=root)
    finally:
        for sim in sims:
            sim.stop()
    assert "Traceback" not in status.stderr, status.stderr
    advoware = next(line for line in status.stdout.splitlines() if line.startswith("│ Advoware"))
    assert not advoware.split("│")[2].strip() == "ok", status.stdout
