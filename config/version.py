"""The version of beteiligte-sync: the one in ``pyproject.toml``, as the installed package's metadata says.

``pyproject.toml`` is the only place it is written; a wheel, an sdist, ``beteiligte-sync --version``
and ``GET /health`` all read it from there (through the metadata pip writes on install, also for an
editable install of a checkout). Code run from a folder that was never installed says so.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "beteiligte-sync"
NOT_INSTALLED = "0+not-installed"


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return NOT_INSTALLED
