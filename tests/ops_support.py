"""A sandbox ``serve`` as a real process, for the operator command and status page tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from simulators.common import free_port
from tests.embedded_support import (
    STAFF_KEY,
    Process,
    all_clean,
    cli,
    env_for,
    published_sandbox,
    start_serve,
    state_root,
    wait_for,
)

TOKEN = "status-token-for-tests"
NASTY = "<b>Evil</b> & Co"


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str]
    url: str
    espo: str
    advo: str
    serve: Process

    def run(self, *args: str) -> Any:
        return cli(self.env, *args, cwd=self.root)

    def record(self, espo_id: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.espo}/__sim/records/{espo_id}", timeout=10).json())

    def edit_as_staff(self, espo_id: str, **values: Any) -> None:
        httpx.put(f"{self.espo}/api/v1/CBeteiligte/{espo_id}", json=values, headers={"X-Api-Key": STAFF_KEY},
                  timeout=10).raise_for_status()


@contextmanager
def sandbox_serve() -> Iterator[Sandbox]:
    """A sandbox ``serve`` with STATUS_TOKEN set, its samples synced."""
    with state_root() as root:
        port = free_port()
        env = env_for(root / "state", port, STATUS_TOKEN=TOKEN)
        serve = start_serve(env, root)
        try:
            published = published_sandbox(root / "state")
            box = Sandbox(root, env, f"http://127.0.0.1:{port}", published["espocrm_url"],
                          published["advoware_simulator_url"], serve)
            wait_for("the sample records to be synced", lambda: all_clean(box.espo))
            yield box
        finally:
            serve.stop()
