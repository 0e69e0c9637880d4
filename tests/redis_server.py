"""A throwaway real ``redis-server`` for tests, on a free port, never the machine's 6379.

    url, stop = start_redis_server()      # plain helper
    with redis_server() as url: ...        # context manager
    server = RedisServer(appendonly=True)  # one a test can stop, kill and start again on the same port
    server.start(); server.stop(); server.start(); server.close()

Every server keeps its files in its own temporary folder. A missing binary makes the test fail: the
Redis code must be proven on a real server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "/usr/bin/redis-server")
AOF_DIR = "appendonlydir"


def redis_server_available() -> bool:
    return os.path.exists(REDIS_SERVER) or shutil.which("redis-server") is not None


def _binary() -> str:
    return REDIS_SERVER if os.path.exists(REDIS_SERVER) else (shutil.which("redis-server") or REDIS_SERVER)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server on a fixed free port, in its own temporary folder, that can be stopped and
    started again on the same port, with (``appendonly=True``, fsync on every write) or without its
    AOF. Without AOF nothing survives a restart (no RDB snapshots either)."""

    def __init__(self, *, appendonly: bool = False) -> None:
        self.port = _free_port()
        self.appendonly = appendonly
        self.data_dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, appendonly: bool | None = None, timeout: float = 5.0) -> None:
        """Start on this server's port; ``appendonly`` overrides the setting for this and later starts.
        Raises RuntimeError when it does not answer PING within ``timeout`` seconds."""
        if self.running:
            return
        if appendonly is not None:
            self.appendonly = appendonly
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        self._proc = subprocess.Popen(
            [_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--save", "", *aof, "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            if _answers_ping(self.port):
                return
            time.sleep(0.02)
        code = self._proc.poll()
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start: " +
                           (f"exit code {code}" if code is not None else "no answer to PING"))

    def stop(self) -> None:
        """Shut down as an operator would (SIGTERM: clients are disconnected, the AOF is complete)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Crash (SIGKILL). With ``appendonly`` every acknowledged write is already on disk."""
        self._end(signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections open and answers nothing (a hung Redis)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def wipe(self) -> None:
        """Delete the persisted data, so the next start comes up empty. Only while stopped."""
        assert not self.running, "stop the server before wiping its data"
        shutil.rmtree(self.data_dir / AOF_DIR, ignore_errors=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_redis_server(timeout: float = 5.0, attempts: int = 3) -> tuple[str, Callable[[], None]]:
    """Start redis-server (no persistence) on a free port; returns ``(url, stop)``."""
    last_error: Exception | None = None
    for _ in range(attempts):
        server = RedisServer()
        try:
            server.start(timeout=timeout)
        except RuntimeError as exc:  # port taken in between, or too slow: try another port
            server.close()
            last_error = exc
            continue
        return server.url, server.close
    raise RuntimeError(f"redis-server did not start: {last_error}")


@contextmanager
def redis_server(timeout: float = 5.0) -> Iterator[str]:
    """Context manager around :func:`start_redis_server`; yields the URL."""
    url, stop = start_redis_server(timeout)
    try:
        yield url
    finally:
        stop()
