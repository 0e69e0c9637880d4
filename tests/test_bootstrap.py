"""The composition root passes every setting to the part that needs it (issue 8's wiring bugs)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis.aioredis
import pytest
from pydantic import SecretStr

from config.settings import Settings
from entrypoints.bootstrap import build_services
from simulators.advoware.simulator import DEFAULT_API_KEY_B64, AdvowareSimulator
from simulators.common import ServerHandle, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def new_york_advoware() -> Iterator[tuple[AdvowareSimulator, ServerHandle]]:
    sim = AdvowareSimulator(timezone="America/New_York")
    handle = serve_in_thread(sim.app)
    try:
        yield sim, handle
    finally:
        handle.stop()


def _settings(advo_url: str, timezone: str) -> Settings:
    return Settings(
        espocrm_url="http://127.0.0.1:9/api/v1", espocrm_api_key=SecretStr("k"),
        advoware_url=f"{advo_url}/api/v1/advonet", advoware_token_url=f"{advo_url}/api/v1/Token",
        advoware_app_id="sandbox-app", advoware_api_key=SecretStr(DEFAULT_API_KEY_B64), advoware_kanzlei="sandbox",
        advoware_database="sandbox", advoware_user="sync", advoware_password=SecretStr("sync"),
        advoware_timezone=timezone,
    )


@pytest.mark.parametrize(("timezone", "found"), [("America/New_York", True), ("Europe/Berlin", False)])
async def test_the_advoware_timezone_reaches_the_client_that_searches_by_change_time(
    new_york_advoware: tuple[AdvowareSimulator, ServerHandle], timezone: str, found: bool,
) -> None:
    """A lost create is found by searching ``geaendertSeit`` in Advoware's local time: with the
    firm's zone the new Beteiligter is found, with a wrong one (6 h later in Berlin) it is not."""
    sim, handle = new_york_advoware
    services = build_services(_settings(handle.url, timezone), redis=fakeredis.aioredis.FakeRedis())
    try:
        before = datetime.now(UTC) - timedelta(minutes=1)
        created = await services.advo.create_beteiligter({"name": "Zeitzone", "vorname": "Test"})
        listed = await services.advo.list_beteiligte(geaendert_seit=before)
        assert (created["betNr"] in [b["betNr"] for b in listed]) is found
        assert sim.store.get(created["betNr"]) is not None
    finally:
        await services.aclose()


def test_the_cron_step_takes_its_schedule_from_the_settings_and_env_file(tmp_path: Path) -> None:
    """``SYNC_CHECK_CRON`` is read once, through the settings: a value in ``.env`` reaches the step
    file's config (what Motia reads) just as it reaches our host."""
    (tmp_path / ".env").write_text("SYNC_CHECK_CRON=7 3 * * *\n")
    probe = ("import importlib.util, sys; sys.path.insert(0, sys.argv[1]); "
             "spec = importlib.util.spec_from_file_location('cron_step', sys.argv[2]); "
             "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); print(m.config['cron'])")
    env = {k: v for k, v in os.environ.items() if k != "SYNC_CHECK_CRON"}
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT), str(ROOT / "steps/beteiligte_sync_cron_step.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7 3 * * *"
