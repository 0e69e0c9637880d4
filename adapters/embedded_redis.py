"""The embedded store: a ``redis-server`` the service starts itself when ``REDIS_URL`` is unset.

One server per state folder (``STATE_DIR``), shared by ``serve`` and every CLI command:

- the first process that needs it starts it detached (its own session), so it outlives that process,
  its ``kill -9`` and a Ctrl-C in its terminal; every later process connects to the same socket, and
  ``serve`` starts it again whenever it stops answering (:meth:`EmbeddedRedis.supervise`);
- it listens only on ``redis.sock`` in the folder (``port 0``: no TCP port to collide with, nothing
  reachable from the network; socket mode 0700, folder 0700);
- it keeps an append-only file (``appendonly yes``, ``appendfsync everysec``) in the folder, so its
  data survives a crash of the server itself and a restart of the machine;
- ``redis.lock`` is ``flock``-ed by the starting process and inherited by the server, so the lock is
  held exactly as long as the server lives: no second server on one folder, and a crashed server
  leaves no stale lock behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis

from adapters.background import pause
from config.settings import Settings

log = logging.getLogger(__name__)

SOCKET_FILE = "redis.sock"
LOCK_FILE = "redis.lock"
PID_FILE = "redis.pid"
LOG_FILE = "redis.log"
AOF_DIR = "appendonlydir"
SANDBOX_SUBDIR = "sandbox"  # the sandbox's simulators live in its process: its store is kept apart
# A crashed redis-server loses nothing it answered (the AOF is written before the reply); an OS
# crash or power loss loses at most about the last second, which the next sync check re-finds.
FSYNC_POLICY = "everysec"
FOLDER_MODE = 0o700
SOCKET_MODE = "700"
MAX_SOCKET_PATH_BYTES = 107  # sun_path holds 108 bytes on Linux, the final NUL included
START_TIMEOUT_S = 60.0  # replaying a large AOF takes a while
STOP_TIMEOUT_S = 30.0
PING_TIMEOUT_S = 1.0
POLL_S = 0.05
SUPERVISE_INTERVAL_S = 2.0
BINARY = "redis-server"
FALLBACK_BINARIES = ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")
INSTALL_HINT = "install it (apt-get install redis-server) or set REDIS_URL"


class StartupError(RuntimeError):
    """The service cannot run as configured; the message is one line for the operator."""


class EmbeddedRedisError(StartupError):
    pass


class Probe(Enum):
    READY = "ready"
    LOADING = "loading its append-only file"
    DOWN = "not answering"


def find_redis_server(configured: str | None = None) -> str:
    """The redis-server binary: REDIS_SERVER_BIN, else PATH, else the usual install locations."""
    if configured:
        if os.access(configured, os.X_OK):
            return configured
        raise EmbeddedRedisError(f"REDIS_SERVER_BIN={configured} is not an executable redis-server: {INSTALL_HINT}")
    found = shutil.which(BINARY) or next((p for p in FALLBACK_BINARIES if os.access(p, os.X_OK)), None)
    if found is None:
        raise EmbeddedRedisError(f"redis-server is not installed (the embedded store needs it): {INSTALL_HINT}")
    return found


@dataclass(frozen=True)
class EmbeddedRedis:
    folder: Path
    binary: str | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> EmbeddedRedis:
        base = settings.state_path()
        return cls(base / SANDBOX_SUBDIR if settings.sandbox else base, settings.redis_server_bin)

    @property
    def socket_path(self) -> Path:
        return self.folder / SOCKET_FILE

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_FILE

    @property
    def pid_path(self) -> Path:
        return self.folder / PID_FILE

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_FILE

    def describe(self) -> str:
        return f"the embedded store in {self.folder}"

    # -- clients ------------------------------------------------------------------------------
    def client(self, **options: Any) -> Redis:
        """An asyncio client of the server (start it with :meth:`ensure_running` first); ``options``
        go to ``redis.asyncio.Redis`` (timeouts)."""
        return Redis(unix_socket_path=str(self.socket_path), **options)

    def sync_client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path))

    def _send(self, command: bytes) -> bytes:
        """One inline command over the socket, no client library (no retries, no pool); raises OSError."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(PING_TIMEOUT_S)
            conn.connect(str(self.socket_path))
            conn.sendall(command + b"\r\n")
            return conn.recv(64)

    def probe(self) -> Probe:
        try:
            reply = self._send(b"PING")
        except OSError:
            return Probe.DOWN
        if reply.startswith(b"+PONG"):
            return Probe.READY
        return Probe.LOADING if reply.startswith(b"-LOADING") else Probe.DOWN

    def is_running(self) -> bool:
        return self.probe() is Probe.READY

    def server_pid(self) -> int | None:
        """The process id the running server reports (None when it does not answer)."""
        if not self.is_running():
            return None
        with self.sync_client() as client:
            return int(client.info("server")["process_id"])

    # -- lifecycle ----------------------------------------------------------------------------
    def ensure_running(self, timeout: float = START_TIMEOUT_S) -> None:
        """Connectable when this returns: the running server, or one started now (at most one per folder)."""
        if self.is_running():
            return
        binary = find_redis_server(self.binary)
        self._prepare_folder()
        deadline = time.monotonic() + timeout
        proc: subprocess.Popen[bytes] | None = None
        while (state := self.probe()) is not Probe.READY:
            if proc is None:
                proc = self._start_if_free(binary)  # None: another process's server holds the lock
            elif proc.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server for {self.folder} exited with code {proc.returncode}: {self._last_log_line()}")
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"the embedded redis-server in {self.folder} is {state.value} after {timeout:.0f} s"
                    f" (see {self.log_path})")
            time.sleep(POLL_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """``SHUTDOWN`` (the append-only file is flushed first); False when no server was running."""
        if self._lock_is_free():
            return False
        with contextlib.suppress(OSError):  # it closes the connection instead of answering
            self._send(b"SHUTDOWN")
        deadline = time.monotonic() + timeout
        while not self._lock_is_free():
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"the embedded redis-server in {self.folder} did not stop within {timeout} s")
            time.sleep(POLL_S)
        return True

    async def supervise(self, stop: asyncio.Event, interval: float = SUPERVISE_INTERVAL_S) -> None:
        """Start the server again whenever it is down (runs beside ``serve`` until ``stop`` is set)."""
        while not await pause(stop, interval):
            if await asyncio.to_thread(self.probe) is not Probe.DOWN:
                continue
            log.warning("embedded redis-server in %s is down: starting it again", self.folder)
            try:
                await asyncio.to_thread(self.ensure_running)
            except StartupError as exc:
                log.error("embedded redis-server: %s", exc)

    # -- internals ----------------------------------------------------------------------------
    def _prepare_folder(self) -> None:
        limit = MAX_SOCKET_PATH_BYTES - len(SOCKET_FILE) - 1
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH_BYTES:
            raise EmbeddedRedisError(f"STATE_DIR {self.folder} is too long for a unix socket: use a path of at most"
                                     f" {limit} bytes")
        try:
            self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot create STATE_DIR {self.folder}: {exc.strerror}") from exc

    def _start_if_free(self, binary: str) -> subprocess.Popen[bytes] | None:
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot use STATE_DIR {self.folder}: {exc.strerror}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            self.socket_path.unlink(missing_ok=True)  # left behind by a crashed server
            log.info("starting the embedded redis-server in %s", self.folder)
            with open(self.log_path, "ab") as out:
                # The server inherits the locked descriptor: the lock lives exactly as long as it does.
                return subprocess.Popen(self._command(binary), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, pass_fds=(fd,), start_new_session=True)
        finally:
            os.close(fd)

    def _command(self, binary: str) -> list[str]:
        return [
            binary, "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", SOCKET_MODE,
            "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", FSYNC_POLICY, "--save", "",
            "--daemonize", "no", "--pidfile", str(self.pid_path), "--logfile", str(self.log_path),
        ]

    def _lock_is_free(self) -> bool:
        if not self.lock_path.exists():
            return True
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing drops a lock taken here
        return True

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no log"
        return lines[-1].strip() if lines else "no log"
