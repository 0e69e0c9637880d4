"""``serve``'s dependency checks as a real process: ``/health`` stays the liveness answer and lists each
dependency, ``/ready`` answers 503 until EspoCRM, Advoware and Redis all answer, and the log says so
once per change, not once per check.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.embedded_redis import EmbeddedRedis
from installation.dependency_health import STATE_KEY
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import free_port
from tests.embedded_support import ESPO_API_KEY, Process, env_for, start_serve, state_root, wait_for
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CREDS = AdvowareSimulator().client_settings()
CHECK_EVERY_S = "0.5"


def systems_env(espo_url: str, advo_url: str, **creds: str) -> dict[str, str]:
    env = {"ESPOCRM_URL": espo_url, "ESPOCRM_API_KEY": ESPO_API_KEY, "ADVOWARE_URL": advo_url,
           "ADVOWARE_TOKEN_URL": advo_url, "HEALTH_CHECK_INTERVAL_SECONDS": CHECK_EVERY_S}
    env.update({f"ADVOWARE_{k.upper()}": v for k, v in {**CREDS, **creds}.items()})
    return env


def simulator_on(module: str, port: int, cwd: Path) -> Process:
    """A standalone simulator on a port chosen before (serve was pointed at it while it was not there)."""
    sim = Process([sys.executable, "-m", module, "--port", str(port)], dict(os.environ), cwd, f"{module}.log")
    wait_for(f"{module} on {port}", lambda: httpx.get(f"http://127.0.0.1:{port}/__sim/calls", timeout=5).is_success)
    return sim


def get(port: str, route: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{route}", timeout=10)


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as path:
        yield path


def test_ready_waits_for_both_systems_and_the_log_says_each_change_once(root: Path) -> None:
    espo_port, advo_port = free_port(), free_port()
    env = env_for(root / "state", free_port(),
                  **systems_env(f"http://127.0.0.1:{espo_port}/api/v1/", f"http://127.0.0.1:{advo_port}"))
    serve = start_serve(env, root)  # starts although neither system answers: /health is liveness
    sims: list[Process] = []
    try:
        def failing() -> dict[str, Any] | None:
            body = get(env["PORT"], "/ready").json()
            deps = body["dependencies"]
            both = deps["espocrm"]["status"] == deps["advoware"]["status"] == "failing"
            return body if both else None

        body = wait_for("both systems reported failing", failing)
        assert get(env["PORT"], "/ready").status_code == 503
        assert body["status"] == "not_ready" and body["dependencies"]["redis"]["status"] == "ok"
        assert "check ESPOCRM_URL" in body["dependencies"]["espocrm"]["last_error"]
        assert "check ADVOWARE_TOKEN_URL" in body["dependencies"]["advoware"]["last_error"]  # the token comes first
        health = get(env["PORT"], "/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"  # alive: Redis and workers
        assert health.json()["dependencies"]["espocrm"]["status"] == "failing"

        sims = [simulator_on("simulators.espocrm", espo_port, root),
                simulator_on("simulators.advoware", advo_port, root)]
        ready = wait_for("/ready to answer 200", lambda: get(env["PORT"], "/ready").status_code == 200 and
                         get(env["PORT"], "/ready").json())
        assert ready["status"] == "ready"
        assert {d["status"] for d in ready["dependencies"].values()} == {"ok"}
        with EmbeddedRedis(root / "state").sync_client() as client:  # for the status page of other processes
            assert set(client.hgetall(STATE_KEY)) == {b"espocrm", b"advoware", b"redis", b"webhooks"}
    finally:
        serve.stop()
        for sim in sims:
            sim.stop()
    log = serve.output()
    assert log.count("check ESPOCRM_URL") == 1 and log.count("EspoCRM ok again") == 1, log
    assert log.count("check ADVOWARE_TOKEN_URL") == 1 and log.count("Advoware ok again") == 1, log
    assert "Traceback" not in log


def test_a_wrong_advoware_password_keeps_serve_not_ready_and_names_the_setting(root: Path) -> None:
    espo = simulator_on("simulators.espocrm", espo_port := free_port(), root)
    advo = simulator_on("simulators.advoware", advo_port := free_port(), root)
    env = env_for(root / "state", free_port(), **systems_env(
        f"http://127.0.0.1:{espo_port}", f"http://127.0.0.1:{advo_port}", password="wrong"))
    serve = start_serve(env, root)
    try:
        def advoware_failing() -> dict[str, Any] | None:
            deps = get(env["PORT"], "/ready").json()["dependencies"]
            return deps if deps["advoware"]["status"] == "failing" and deps["espocrm"]["status"] == "ok" else None

        deps = wait_for("Advoware failing, EspoCRM ok", advoware_failing)
        assert "HTTP 401" in deps["advoware"]["last_error"] and "ADVOWARE_PASSWORD" in deps["advoware"]["last_error"]
        assert deps["advoware"]["since"] and deps["advoware"]["checked_at"]
        assert get(env["PORT"], "/ready").status_code == 503
        assert "wrong" not in serve.output()  # the password itself is never logged
    finally:
        serve.stop()
        espo.stop()
        advo.stop()


def test_redis_stopped_makes_serve_not_ready_and_it_is_ready_again_when_redis_answers(root: Path) -> None:
    espo = simulator_on("simulators.espocrm", espo_port := free_port(), root)
    advo = simulator_on("simulators.advoware", advo_port := free_port(), root)
    server = RedisServer()
    server.start()
    env = env_for(root / "state", free_port(), REDIS_URL=server.url,
                  **systems_env(f"http://127.0.0.1:{espo_port}", f"http://127.0.0.1:{advo_port}"))
    serve = start_serve(env, root)
    try:
        wait_for("ready", lambda: get(env["PORT"], "/ready").status_code == 200)
        server.stop()

        def not_ready() -> dict[str, Any] | None:
            answer = get(env["PORT"], "/ready")
            body = answer.json()
            down = answer.status_code == 503 and body["dependencies"]["redis"]["status"] == "failing"
            return body if down else None

        body = wait_for("not ready while Redis is stopped", not_ready)
        assert "check REDIS_URL" in body["dependencies"]["redis"]["last_error"]
        assert body["dependencies"]["espocrm"]["status"] == "ok"
        server.start()
        ready = wait_for("ready again", lambda: get(env["PORT"], "/ready").status_code == 200 and
                         get(env["PORT"], "/ready").json())
        assert ready["workers"] == "reading"
    finally:
        serve.stop()
        server.close()
        espo.stop()
        advo.stop()
    assert serve.output().count("check REDIS_URL") == 1 and "Redis ok again" in serve.output()
