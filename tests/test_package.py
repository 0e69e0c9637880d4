"""Issue 18, item 3: a versioned package that runs outside the checkout.

``python -m build`` on a copy of the checkout's files gives a wheel and an sdist carrying the version
of ``pyproject.toml`` (the one place it is written). The wheel goes into a fresh venv in a folder that
has nothing of the checkout; from there ``beteiligte-sync --version`` prints it, and the sandbox
runs: ``.env`` read from the working folder, the embedded store in ``$XDG_STATE_HOME`` (not in
site-packages), the host config and the simulators from the package, ``/health`` showing the version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

from simulators.common import free_port
from tests.checkout_copy import CHECKOUT, copy_of_checkout
from tests.embedded_support import Process, all_clean, state_root, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]
VERSION = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]["version"]
BUILD_TIMEOUT_S = 600


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done


def clean_env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_FIND_LINKS",
            "PIP_CONFIG_FILE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(extra)
    return env


def test_the_wheel_runs_the_sandbox_from_a_fresh_venv_outside_the_checkout() -> None:
    with state_root() as root:
        src = copy_of_checkout(root / "src")
        run(sys.executable, "-m", "build", "--outdir", root / "dist", src, cwd=root)
        wheel = root / "dist" / f"beteiligte_sync-{VERSION}-py3-none-any.whl"
        sdist = root / "dist" / f"beteiligte_sync-{VERSION}.tar.gz"
        assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in (root / "dist").iterdir())
        with zipfile.ZipFile(wheel) as zipped:
            names = set(zipped.namelist())
            assert {"config/motia.config.json", "steps/beteiligte_sync_cron_step.py",
                    "simulators/espocrm/simulator.py", "config/value_maps.toml"} <= names
            assert b'"steps"' in zipped.read("config/motia.config.json")  # the file, not a link
        with tarfile.open(sdist) as tar:
            assert f"beteiligte_sync-{VERSION}/CHANGELOG.md" in tar.getnames()

        home, work = root / "home", root / "run"
        work.mkdir()
        home.mkdir()
        venv = root / "venv"
        run(sys.executable, "-m", "venv", venv, cwd=root)
        run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, cwd=root)
        cmd = venv / "bin" / "beteiligte-sync"
        env = clean_env(HOME=str(home), XDG_STATE_HOME=str(home / "state"))
        assert run(cmd, "--version", cwd=work, env=env).stdout.strip() == f"beteiligte-sync {VERSION}"

        port = free_port()
        (work / ".env").write_text(f"PORT={port}\nSYNC_CHECK_CRON=0 3 29 2 *\n")  # read from the working folder
        serve = Process([str(cmd), "serve"], env, work, "serve.log")
        try:
            def healthy() -> dict[str, object] | None:
                assert serve.proc.poll() is None, serve.output()
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                except httpx.ConnectError:
                    return None
                return dict(answer.json()) if answer.status_code == 200 else None

            health = wait_for("the installed serve", healthy)
            assert health["version"] == VERSION and health["mode"] == "sandbox"
            state = home / "state" / "beteiligte-sync" / ".state"
            assert (state / "sandbox" / "redis.lock").exists(), serve.output()
            site = Path(run(venv / "bin" / "python", "-c", "import entrypoints, sys; print(entrypoints.__file__)",
                            cwd=work, env=env).stdout.strip())
            assert CHECKOUT not in site.parents and not list(site.parent.parent.glob(".state"))
            espo = wait_for("the sandbox to publish", lambda: _published(state))
            assert wait_for("the samples synced by the installed package", lambda: all_clean(espo))
            status = run(cmd, "status", cwd=work, env=env)
            assert "clean" in status.stdout
        finally:
            serve.stop()


def _published(state: Path) -> str | None:
    import json

    path = state / "sandbox" / "sandbox.json"
    return str(json.loads(path.read_text())["espocrm_url"]) if path.is_file() else None
