"""``./dev`` on a copy of the checkout whose ``.venv`` is broken (no pip): it says so, makes the venv
again, installs the project and runs the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT_S = 900


def tracked_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if name.startswith("tests/") or not (PROJECT / name).is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / name, dest / name)


@pytest.mark.skipif(not (PROJECT / ".git").exists(), reason="needs a git checkout to copy")
def test_dev_makes_a_venv_without_pip_again_and_runs_the_command() -> None:
    root = Path(tempfile.mkdtemp(prefix="bsync-dev-"))
    try:
        tracked_copy(root)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env["PYTHON"] = sys.executable
        done = subprocess.run(["./dev", "--help"], cwd=root, env=env, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
        assert ".venv is broken (it has no pip): making it again" in done.stderr
        assert "sync-check" in done.stdout  # the command ran
        assert (root / ".venv" / "bin" / "beteiligte-sync").exists()

        bench = subprocess.run(["./dev", "bench", "no_such_script"], cwd=root, env=env, capture_output=True,
                               text=True, timeout=60)
        assert bench.returncode == 2 and "no such bench script: bench/no_such_script.py" in bench.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
