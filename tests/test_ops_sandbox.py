"""In sandbox mode, CLI commands act on the running sandbox serve's simulators and store, not on a
throwaway sandbox of their own: a record only the running sandbox has is found and synced by ``sync``."""

from __future__ import annotations

import re

import httpx
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


def test_doctor_and_the_status_page_work_in_the_sandbox() -> None:
    """Issue 19: every sync's log points to doctor, so in sandbox mode it checks the running sandbox's
    simulators (and says how to start one when none runs); the status page is on with a token the
    banner prints when STATUS_TOKEN is unset."""
    with state_root() as root:
        env = {k: v for k, v in env_for(root / "state", free_port()).items() if k != "STATUS_TOKEN"}
        alone = cli(env, "doctor", cwd=root)
        assert alone.returncode == 1 and "no sandbox serve runs on this STATE_DIR" in alone.stdout, alone.stdout
        assert "start ./dev serve" in alone.stdout
        serve = start_serve(env, root)
        try:
            sims = published_sandbox(root / "state")
            wait_for("the samples synced", lambda: len(all_clean(sims["espocrm_url"]) or []) == SAMPLES)
            doctor = cli(env, "doctor", cwd=root)
            [token] = re.findall(r"/status +user any, password: (\S+)", serve.output())
            page = httpx.get(f"http://127.0.0.1:{env['PORT']}/status", auth=("ops", token), timeout=30)
            shut = httpx.get(f"http://127.0.0.1:{env['PORT']}/status", timeout=30)
        finally:
            serve.stop()
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"sandbox: the simulators of the running serve: EspoCRM {sims['espocrm_url']}" in doctor.stdout
    assert "0 failed" in doctor.stdout and "webhook CBeteiligte.update" in doctor.stdout
    assert len(token) >= 16 and page.status_code == 200 and "beteiligte-sync status" in page.text
    assert shut.status_code == 401
