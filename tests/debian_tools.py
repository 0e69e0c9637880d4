"""A tool a test runs for real (nginx, systemd-analyze): found on PATH, else installed from Debian
when we are root, as ``./dev`` installs redis-server. ``None`` only when it truly cannot be had."""

from __future__ import annotations

import os
import shutil
import subprocess

SBIN = "/usr/sbin:/sbin:/usr/bin"
APT_TIMEOUT_S = 600


def find(binary: str) -> str | None:
    return shutil.which(binary) or shutil.which(binary, path=SBIN)


def ensure(binary: str, package: str) -> tuple[str | None, str]:
    """The binary's path, or None and why not."""
    found = find(binary)
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, f"{binary} is not installed and this is not a root Debian (apt-get install {package})"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                                    package]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
        if done.returncode != 0:
            return None, f"apt-get install {package} failed: {done.stderr.strip()[-300:]}"
    found = find(binary)
    return (found, "") if found else (None, f"{package} installed no {binary}")
