"""Real processes around the embedded store: ``beteiligte-sync`` commands, simulators, polling.

Everything runs with a throwaway STATE_DIR under /tmp (short: the socket path is limited), never with
REDIS_URL, never against the machine's Redis. Waits poll with generous deadlines; no test depends on
how fast something happens, only on that it happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import httpx

from adapters.embedded_redis import SANDBOX_SUBDIR, EmbeddedRedis
from entrypoints.sandbox_owner import PUBLISHED
from simulators.common import free_port

T = TypeVar("T")
CLEARED_ENV = ("REDIS_URL", "STATE_DIR", "HOST", "PORT", "SYNC_CHECK_CRON", "REDIS_SERVER_BIN", "LOG_LEVEL")
CLEARED_PREFIXES = ("ESPOCRM_", "ADVOWARE_")
NEVER_CRON = "0 3 29 2 *"  # the scheduled sync check must not hide what the queue did
STAFF_KEY = "sandbox-staff-key"
ESPO_API_KEY = "sandbox-espo-key"
DEADLINE_S = 120.0
CLI_TIMEOUT_S = 120.0


def wait_for(what: str, probe: Callable[[], T | None], deadline_s: float = DEADLINE_S, every: float = 0.2) -> T:
    """Poll until ``probe`` returns something truthy; fail after ``deadline_s`` naming ``what``."""
    end = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < end:
        with suppress(httpx.HTTPError, OSError):
            last = probe()
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what} (last: {last!r})")


@contextmanager
def state_root() -> Iterator[Path]:
    """A short temp folder; every embedded server started under it is stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="bsync-", dir="/tmp"))
    try:
        yield root
    finally:
        for folder in sorted({p.parent for p in root.rglob("redis.lock")}):
            EmbeddedRedis(folder).stop()
        shutil.rmtree(root, ignore_errors=True)


def env_for(state_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV and not k.startswith(CLEARED_PREFIXES)}
    env.update(STATE_DIR=str(state_dir), HOST="127.0.0.1", PORT=str(port), SYNC_CHECK_CRON=NEVER_CRON)
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One ``beteiligte-sync`` command to its end."""
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)


class Process:
    """A long-running child (serve, a simulator) with its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log_name: str) -> None:
        self.log = cwd / log_name
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


def start_serve(env: dict[str, str], cwd: Path) -> Process:
    serve = Process([sys.executable, "-m", "entrypoints.cli", "serve"], env, cwd, f"serve-{time.monotonic_ns()}.log")
    url = f"http://127.0.0.1:{env['PORT']}/health"

    def healthy() -> bool:
        assert serve.proc.poll() is None, f"serve exited:\n{serve.output()}"
        return httpx.get(url, timeout=5).status_code == 200

    wait_for("serve to answer /health", healthy)
    return serve


def start_simulator(module: str, cwd: Path, *args: str) -> tuple[Process, str]:
    port = free_port()
    sim = Process([sys.executable, "-m", module, "--port", str(port), *args], dict(os.environ), cwd,
                  f"{module}.log")
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{module} on {url}", lambda: httpx.get(f"{url}/__sim/calls", timeout=5).status_code == 200)
    return sim, url


def published_sandbox(state_dir: Path) -> dict[str, Any]:
    path = state_dir / SANDBOX_SUBDIR / PUBLISHED
    return wait_for("the sandbox serve to publish its simulators", lambda: json.loads(path.read_text()))


# -- the simulators over HTTP, as a person or an observer would use them --------------------------
def espo_records(espo_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{espo_url}/__sim/records", timeout=10).json())


def advo_records(advo_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{advo_url}/__sim/records", timeout=10).json())


def create_as_staff(espo_url: str, last_name: str) -> str:
    answer = httpx.post(f"{espo_url}/api/v1/CBeteiligte", headers={"X-Api-Key": STAFF_KEY}, timeout=10,
                        json={"lastName": last_name, "firstName": "Test", "rechtsform": "natürliche Person"})
    answer.raise_for_status()
    return str(answer.json()["id"])


def set_faults(sim_url: str, faults: dict[str, Any] | None) -> None:
    if faults is None:
        httpx.delete(f"{sim_url}/__sim/faults", timeout=10).raise_for_status()
    else:
        httpx.post(f"{sim_url}/__sim/faults", json=faults, timeout=10).raise_for_status()


def all_clean(espo_url: str, ids: set[str] | None = None) -> list[dict[str, Any]] | None:
    """The records (all, or ``ids``) once each is ``clean`` with a ``betnr``; None before."""
    recs = [r for r in espo_records(espo_url) if ids is None or r["id"] in ids]
    done = recs and all(r.get("syncStatus") == "clean" and r.get("betnr") for r in recs)
    return recs if done else None
