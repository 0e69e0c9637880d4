"""A throwaway real ``redis-server`` for tests, on a free port, never the machine's 6379.

    url, stop = start_redis_server()      # plain helper
    with redis_server() as url: ...        # context manager

A missing binary makes the test fail: the Redis code must be proven on a real server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "/usr/bin/redis-server")


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


def start_redis_server(timeout: float = 5.0, attempts: int = 3) -> tuple[str, Callable[[], None]]:
    """Start redis-server (no persistence) on a free port; returns ``(url, stop)``."""
    last_error = "not started"
    for _ in range(attempts):
        port = _free_port()
        proc = subprocess.Popen(
            [_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

        def stop(proc: subprocess.Popen[bytes] = proc) -> None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stderr:
                proc.stderr.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers_ping(port):
                return f"redis://127.0.0.1:{port}/0", stop
            time.sleep(0.02)
        last_error = f"exit code {proc.poll()}" if proc.poll() is not None else "no answer to PING"
        stop()  # port taken in between, or too slow: try another port
    raise RuntimeError(f"redis-server did not start: {last_error}")


@contextmanager
def redis_server(timeout: float = 5.0) -> Iterator[str]:
    """Context manager around :func:`start_redis_server`; yields the URL."""
    url, stop = start_redis_server(timeout)
    try:
        yield url
    finally:
        stop()
