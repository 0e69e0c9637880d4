"""Hostile test of the README's top promise: ``./dev serve`` and ``./dev test`` both need redis-server;
"./dev installs Debian's redis-server package when it is missing and it runs as root; otherwise the
command says in one line what to install (exit code 2)".
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.test_ops_dev import PROJECT, tracked_copy

pytestmark = pytest.mark.slow

TOOLS = ("bash", "dirname", "sha256sum", "cut", "id", "grep", "sed", "date", "rm", "touch", "env")


@pytest.mark.skipif(not (PROJECT / ".git").exists() or not (PROJECT / ".venv" / "bin" / "python").exists(),
                    reason="needs a git checkout with its .venv")
def test_hostile_dev_test_without_redis_server_is_one_line_exit_2() -> None:
    root = Path(tempfile.mkdtemp(prefix="bsync-dev-"))
    try:
        tracked_copy(root)
        stamp = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]
        if not (PROJECT / ".venv" / f".installed-{stamp}").exists():
            # pyproject.toml changed since ./dev installed: ./dev in the copy would reinstall the project
            # into the shared .venv from the copy, which is deleted after the test
            pytest.skip("the .venv was installed from another pyproject.toml; run ./dev first")
        (root / ".venv").symlink_to(PROJECT / ".venv")  # same pyproject.toml: its install stamp holds
        fakebin = root / "fakebin"  # a PATH without redis-server and without apt-get
        fakebin.mkdir()
        for tool in TOOLS:
            found = shutil.which(tool)
            assert found, tool
            (fakebin / tool).symlink_to(found)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "REDIS_URL")}
        env.update(PATH=str(fakebin), PYTHON=sys.executable)
        done = subprocess.run([str(fakebin / "bash"), "./dev", "test", "-q", "tests/test_layers.py"], cwd=root,
                              env=env, capture_output=True, text=True, timeout=120)
        assert "redis-server" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.returncode == 2, done.stdout + done.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
