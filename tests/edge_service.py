"""The whole installation (testbed) in its own process, served with the production server settings
(:func:`stephost.http_server.server_config`), so a flood's memory and latency are the service's own.

    python -m tests.edge_service [--workers N] [--http-json '{"headerTimeoutSeconds": 1}'] [--redis-url URL]

Prints one JSON line ``{"url", "pid", "hooks": {event: [webhookId, secretKey]}}`` once it serves;
when its standard input closes it prints ``{"published": n, ...}`` (the bus counters) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from stephost.http_server import server_config
from tests.flood import Hook
from tests.testbed import Testbed, start_testbed

READY_TIMEOUT_S = 60
ROOT = Path(__file__).resolve().parent.parent


async def _swap_server(tb: Testbed, http_overrides: dict[str, Any]) -> None:
    """Replace the testbed's plain uvicorn with one configured like ``serve``."""
    assert tb.server is not None and tb.server_task is not None
    tb.server.should_exit = True
    await tb.server_task
    http = tb.host.config.http.model_validate({**tb.host.config.http.model_dump(by_alias=True), **http_overrides})
    port = int(tb.url.rsplit(":", 1)[1])
    server = uvicorn.Server(server_config(tb.host.http_app, http, host="127.0.0.1", port=port,
                                          lifespan="off", log_level="warning", access_log=False))
    tb.server, tb.server_task = server, asyncio.create_task(server.serve())
    while not server.started:
        if tb.server_task.done():
            tb.server_task.result()
        await asyncio.sleep(0.01)


async def _main(workers: int, http_overrides: dict[str, Any], redis_url: str | None) -> None:
    tb = await start_testbed(workers=workers, redis_url=redis_url)
    try:
        await _swap_server(tb, http_overrides)
        secrets = tb.services.settings.webhook_secrets()
        hooks = {event: [hook_id, secrets[hook_id]] for event, hook_id in tb.webhook_ids.items()}
        print(json.dumps({"url": tb.url, "pid": os.getpid(), "hooks": hooks}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(json.dumps(tb.host.bus_stats()), flush=True)
    finally:
        await tb.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--http-json", default="{}")
    parser.add_argument("--redis-url", default=None, help="real Redis (durable bus); default: embedded")
    args = parser.parse_args()
    asyncio.run(_main(args.workers, json.loads(args.http_json), args.redis_url))


class EdgeService:
    """Handle of a running :mod:`tests.edge_service` process."""

    def __init__(self, proc: subprocess.Popen[str], ready: dict[str, Any]) -> None:
        self.proc = proc
        self.url: str = ready["url"]
        self.pid: int = ready["pid"]
        self.hooks = {event: Hook(event, pair[0], pair[1]) for event, pair in ready["hooks"].items()}

    def stop(self) -> dict[str, int]:
        """Ends the service; returns its bus counters (``published`` = events queued)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        stats: dict[str, int] = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=30)
        return stats


@contextmanager
def edge_service(workers: int = 1, redis_url: str | None = None, **http_overrides: Any) -> Iterator[EdgeService]:
    redis_args = ["--redis-url", redis_url] if redis_url else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.edge_service", "--workers", str(workers),
         "--http-json", json.dumps(http_overrides), *redis_args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"edge service did not start (exit {proc.wait(READY_TIMEOUT_S)})")
        yield EdgeService(proc, json.loads(line))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
