"""One sandbox per state folder, and how other commands reach the one ``serve`` runs.

The sandbox's simulators live inside the process that started them, so its store is kept apart from
the real one (``STATE_DIR/sandbox``) and belongs to that process: it holds ``owner.lock`` (``flock``,
dropped by the kernel when the process dies) and empties the store when it starts, since its
simulators start empty too. A sandbox ``serve`` also publishes its simulators' addresses and (sandbox)
credentials in ``sandbox.json``; a CLI command in sandbox mode then works against those simulators
and that store instead of starting a second, unrelated sandbox.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from adapters.embedded_redis import FOLDER_MODE, POLL_S, StartupError
from config.settings import Settings

OWNER_LOCK = "owner.lock"
PUBLISHED = "sandbox.json"
ATTACH_WAIT_S = 15.0  # a sandbox serve that is starting publishes within this time
PLAIN_FIELDS = ("espocrm_url", "advoware_url", "advoware_token_url", "advoware_app_id", "advoware_kanzlei",
                "advoware_database", "advoware_user", "advoware_configurator_url")
SIMULATOR_URL = "advoware_simulator_url"  # the Advoware simulator's own address (the sandbox commands use it)
SECRET_FIELDS = ("espocrm_api_key", "advoware_api_key", "advoware_password")
WEBHOOK_SECRETS = "espocrm_webhook_secrets"


class SandboxBusy(StartupError):
    pass


class SandboxOwner:
    """Holds ``owner.lock`` of a sandbox folder until :meth:`release` (or the process's end)."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    @classmethod
    def try_acquire(cls, folder: Path) -> SandboxOwner | None:
        try:
            folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            fd = os.open(folder / OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SandboxBusy(f"cannot use the sandbox folder {folder}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        (folder / PUBLISHED).unlink(missing_ok=True)  # a crashed owner's
        return cls(folder, fd)

    def publish(self, settings: Settings, *, advoware_simulator_url: str = "") -> None:
        """Let CLI commands use this sandbox's simulators (written atomically, owner-only)."""
        data: dict[str, Any] = {name: getattr(settings, name) for name in PLAIN_FIELDS}
        data[SIMULATOR_URL] = advoware_simulator_url
        for name in SECRET_FIELDS:
            secret = getattr(settings, name)
            data[name] = secret.get_secret_value() if secret is not None else None
        data[WEBHOOK_SECRETS] = {k: v.get_secret_value() for k, v in settings.espocrm_webhook_secrets.items()}
        data["pid"] = os.getpid()
        tmp = self.folder / f".{PUBLISHED}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        tmp.replace(self.folder / PUBLISHED)

    def release(self) -> None:
        if self._fd is None:
            return
        (self.folder / PUBLISHED).unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def attach(folder: Path, base: Settings, wait: float = ATTACH_WAIT_S) -> Settings:
    """Settings for the simulators of the sandbox serve that owns ``folder`` (which is running)."""
    deadline = time.monotonic() + wait
    while True:
        published = _read(folder / PUBLISHED)
        if published is not None:
            update: dict[str, Any] = {name: published.get(name) for name in PLAIN_FIELDS}
            update.update({name: SecretStr(str(published.get(name) or "")) for name in SECRET_FIELDS})
            hooks = published.get(WEBHOOK_SECRETS)
            if isinstance(hooks, dict):  # the sandbox's own webhooks: doctor checks them like a firm's
                update[WEBHOOK_SECRETS] = {str(k): SecretStr(str(v)) for k, v in hooks.items()}
            return base.model_copy(update={**update, "sandbox_mode": True})
        if time.monotonic() > deadline:
            raise SandboxBusy(f"another sandbox command is using {folder}: wait until it ends, or give this"
                              " command its own STATE_DIR")
        time.sleep(POLL_S)


def owner_pid(folder: Path) -> int | None:
    published = _read(folder / PUBLISHED)
    pid = published.get("pid") if published else None
    return pid if isinstance(pid, int) else None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
