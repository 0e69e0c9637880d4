"""Test helpers for the step host tests: fixture paths, a real redis-server, a real uvicorn server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from stephost.config import HostConfig, parse_host_config

FIXTURES = Path(__file__).parent
APP_STEPS = FIXTURES / "app_steps"
BROKEN = FIXTURES / "broken"
REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fast_config(**queue: Any) -> HostConfig:
    """Host config with tiny backoffs so retry tests run in milliseconds."""
    q = {"maxAttempts": 3, "backoffBaseSeconds": 0.01, "backoffMaxSeconds": 0.05, "workers": 4, **queue}
    return parse_host_config({"steps": {"dirs": [str(APP_STEPS)]}, "queue": q, "redis": {"keyPrefix": "t"}})


def redis_available() -> bool:
    return shutil.which(REDIS_SERVER) is not None


@contextmanager
def redis_server() -> Iterator[str]:
    """Start a throw-away redis-server on a free port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@asynccontextmanager
async def http_server(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port inside the running loop; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
