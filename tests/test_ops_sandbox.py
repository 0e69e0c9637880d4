"""In sandbox mode, CLI commands act on the running sandbox serve's simulators and store, not on a
throwaway sandbox of their own: a record only the running sandbox has is found and synced by ``sync``."""

from __future__ import annotations

import pytest

from simulators.common import free_port
from tests.embedded_support import (
    all_clean,
    cli,
    env_for,
    espo_records,
    published_sandbox,
    start_serve,
    state_root,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SAMPLES = 3


def test_sync_and_sync_check_beside_a_sandbox_serve_use_its_records() -> None:
    with state_root() as root:
        env = env_for(root / "state", free_port())
        serve = start_serve(env, root)
        try:
            sims = published_sandbox(root / "state")
            wait_for("the samples synced", lambda: len(all_clean(sims["espocrm_url"]) or []) == SAMPLES)
            sample = espo_records(sims["espocrm_url"])[0]
            done = cli(env, "sync", sample["id"], "--log-level", "warning", cwd=root)
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"{sample['id']} betnr={sample['betnr']} status=clean" in done.stdout
            check = cli(env, "sync-check", cwd=root)
            assert check.returncode == 0 and f"scanned {SAMPLES}, queued 0 records" in check.stdout
            unknown = cli(env, "sync", "notinthesandbox", cwd=root)
            assert unknown.returncode == 2 and "no CBeteiligte with id 'notinthesandbox'" in unknown.stderr
            assert len(espo_records(sims["espocrm_url"])) == SAMPLES
        finally:
            serve.stop()
