"""A list endpoint that ignores the since parameter (list_since_param names one this Advoware does not know):
the change feed would read every Beteiligter every 10 s. It notices rows changed before the time it asked
for, turns itself off with a reason the status page and doctor show (as without a list endpoint), says so
in one WARNING naming list_since_param, and the sync check still brings Advoware's changes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.status_facts import gather
from sync.advoware_feed import FeedState
from tests.test_advoware_feed import LIST, linked, poll, settled
from tests.testbed import Testbed

ROOT = Path(__file__).resolve().parent.parent


def old_row(tb: Testbed) -> None:
    """A Beteiligter nobody changed for an hour (no record links it)."""
    tb.advo.store.clock_offset_s = -3600
    tb.advo.seed(name="Altbestand")
    tb.advo.store.clock_offset_s = 0


async def test_a_list_ignoring_since_turns_the_feed_off_and_the_sync_check_stays(
        firm: Testbed, caplog: pytest.LogCaptureFixture) -> None:
    tb = firm
    [rec] = await linked(tb, 1)
    old_row(tb)
    await settled(tb)
    assert tb.services.feed is not None and tb.services.feed.status.state == FeedState.RUNNING
    tb.advo.ignore_since = True
    caplog.clear()
    tb.reset_calls()
    for _ in range(3):
        await poll(tb)
    feed = tb.services.feed
    assert feed.status.state == FeedState.SINCE_IGNORED
    assert tb.calls().get(f"advoware {LIST}") == 1  # found on the first page, then no more reads
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "feed" in r.getMessage()]
    assert len(warnings) == 1 and 'list_since_param = "geaendertSeit"' in warnings[0], warnings
    line = (await gather(tb.services, tb.host)).feed
    assert line.startswith("off: the list endpoint ignores its since parameter") and "list_since_param" in line
    tb.advo.edit(rec["betnr"], ort="Nachzügler")
    await tb.sync_check()
    assert tb.espo_record(rec["id"])["addressCity"] == "Nachzügler"


def test_doctor_shows_a_list_ignoring_since(firm: Testbed, tmp_path: Path) -> None:
    """The plain doctor's Advoware read: a warning with the reason, as the feed would find it."""
    tb = firm
    old_row(tb)
    tb.advo.ignore_since = True
    assert tb.advo_server is not None
    url = tb.advo_server.url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVOWARE_", "ESPOCRM_"))}
    env.update({f"ADVOWARE_{k.upper()}": v for k, v in tb.advo.client_settings().items()})
    env.update({"ADVOWARE_URL": url, "ADVOWARE_TOKEN_URL": url, "STATE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
    run = subprocess.run([sys.executable, "-m", "entrypoints.cli", "doctor"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    line = next((x for x in run.stdout.splitlines() if "the change feed is off" in x), run.stdout)
    assert line.startswith("⚠") and 'list_since_param = "geaendertSeit"' in line, run.stdout
