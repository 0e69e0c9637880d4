"""Issue 19: what the service logs is one line per event, cannot be forged, holds no client data, and
an idle ``serve`` is quiet at INFO.

The logging set-up is the one every ``beteiligte-sync`` process makes (``configure_logging``); the
quiet and JSON checks read the log of a real sandbox ``serve``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from simulators.common import free_port
from tests.conftest import SAMPLE
from tests.embedded_support import env_for, published_sandbox, start_serve, state_root, wait_for
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed

FORGED = "Köln\n2026-12-07 03:00:00,000 CRITICAL stephost.host FORGED: pay here\r\x1b]0;owned\x07\x1b[2J\u2028x"


def _log_with(fmt: str) -> str:
    """stderr of a process that logs one record line whose field value tries to forge lines."""
    code = textwrap.dedent(f"""
        import logging
        from entrypoints.runtime import configure_logging
        from sync.sync_log import log_record
        configure_logging("INFO", {fmt!r})
        log_record(logging.WARNING, "could not post note", espo_id="abc", betnr=7, decision="x", why={FORGED!r})
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_value_cannot_forge_a_log_line_or_reach_the_terminal() -> None:
    err = _log_with("text")
    assert err.count("\n") == 1 and err.endswith("\n"), err  # one event, one line
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err and "\u2028" not in err
    assert " WARNING beteiligte_sync could not post note espo_id=abc betnr=7" in err
    assert "Köln\\n2026-12-07 03:00:00,000 CRITICAL stephost.host FORGED" in err  # visible, not executed
    assert "\\x1b]0;owned\\x07\\x1b[2J" in err


def test_json_logs_are_one_object_per_line() -> None:
    err = _log_with("json")
    lines = err.splitlines()
    assert len(lines) == 1, err
    entry = json.loads(lines[0])
    assert entry["level"] == "WARNING" and entry["logger"] == "beteiligte_sync"
    assert FORGED in entry["message"]  # the value is kept exactly, JSON escapes it
    assert "\x1b" not in err


@pytest.mark.slow
def test_an_idle_serve_logs_nothing_at_info_and_every_line_is_json() -> None:
    """After the sandbox's samples are synced: /health polled, the health checks running every second
    (each asks Advoware for a token), webhooks delivered empty every 2 s, Advoware's changes read every
    second — and not one line at INFO. (The feed's first poll on a new store says once that it starts
    without a watermark: that is start-up, not idling.)"""
    with state_root() as root:
        port = free_port()
        env = env_for(root / "state", port, LOG_FORMAT="json", HEALTH_CHECK_INTERVAL_SECONDS="1",
                      ADVOWARE_POLL_SECONDS="1")
        serve = start_serve(env, root)
        try:
            espo = published_sandbox(root / "state")["espocrm_url"]
            wait_for("the samples to be clean", lambda: all(
                r.get("syncStatus") == "clean" for r in httpx.get(f"{espo}/__sim/records", timeout=10).json()))
            wait_for("the feed's first poll", lambda: "advoware feed: no watermark" in serve.output())
            time.sleep(3)  # the last sync's lines are written
            before = serve.output()
            for _ in range(20):
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
                time.sleep(0.3)
            idle = serve.output()[len(before):]
        finally:
            serve.stop()
        full = serve.output()
    assert idle == "", f"an idle serve logged:\n{idle}"
    logged = [line for line in full.splitlines() if line.startswith("{")]
    assert logged, full
    for line in logged:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys()


@pytest.fixture(params=["8", "9"], ids=["espo8", "espo9"])
async def bed(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    tb = await start_fast_testbed(espo_profile=request.param, occ=request.param == "9")
    try:
        yield tb
    finally:
        await tb.close()


async def test_a_conflict_logs_field_names_and_the_decision_never_the_values(
    bed: Testbed, caplog: pytest.LogCaptureFixture
) -> None:
    rec = bed.espo.seed(**SAMPLE)
    await bed.flush()
    rec = bed.espo_record(rec["id"])
    espo_values = {"dateOfBirth": "1981-05-13", "emailAddress": "anna.espo@example.org",
                   "phoneNumber": "+49 30 7654321"}
    advo_values = {"geburtsdatum": "1979-03-11T00:00:00", "email": "anna.advo@example.org",
                   "telefon": "040 999888"}
    bed.espo.user_edit(rec["id"], **espo_values)
    bed.advo.edit(rec["betnr"], **advo_values)
    caplog.set_level(logging.DEBUG)
    await bed.services.sync.sync(rec["id"], "webhook_update")
    note = bed.espo.notes_for(rec["id"])[-1]["post"]
    assert "1979-03-11" in note and "anna.advo@example.org" in note  # the values are in the Note …
    conflicts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("conflict ")]
    assert {"field=dateOfBirth", "field=emailAddress", "field=phoneNumber"} <= {
        part for line in conflicts for part in line.split()}
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    for value in [*espo_values.values(), *advo_values.values(), "1979-03-11", "1980-04-12", "anna@example.org"]:
        assert value not in logged, value  # … and nowhere in the log


@pytest.mark.slow
def test_serve_with_an_unresolvable_redis_host_says_so_without_asyncio_noise_or_repeats() -> None:
    """Issue 19: no "Future exception was never retrieved" (a timed-out connect's late lookup error),
    and a cron step firing every few seconds does not repeat its "could not claim" line per slot."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    with state_root() as root:
        env = env_for(root / "state", free_port(), REDIS_URL="redis://bsync-no-such-host.invalid:6379/0",
                      ESPOCRM_URL=nowhere, ESPOCRM_API_KEY="k", ADVOWARE_URL=nowhere, ADVOWARE_TOKEN_URL=nowhere,
                      ADVOWARE_APP_ID="a", ADVOWARE_API_KEY="YQ==", ADVOWARE_KANZLEI="k", ADVOWARE_DATABASE="d",
                      ADVOWARE_USER="u", ADVOWARE_PASSWORD="p")
        serve = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "serve"], env=env, cwd=root,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(22)  # past redis-py's connect timeout, several retry-step slots
        finally:
            serve.terminate()
            out, _ = serve.communicate(timeout=30)
    assert "Future exception was never retrieved" not in out, out
    assert "Redis: " in out and "check REDIS_URL" in out  # the one line that names the fix
    assert out.count("could not claim the run") <= 2, out  # once per cron step and outage
