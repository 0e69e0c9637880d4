"""Hostile tests of issue 9's operator commands and status page, as real processes beside a sandbox
``serve`` (its own embedded store, real Redis). Each xfail test is a bug found by attacking a README
claim ("Operations"); it passes once the bug is fixed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from simulators.common import free_port
from tests.embedded_support import (
    STAFF_KEY,
    Process,
    cli,
    env_for,
    espo_records,
    published_sandbox,
    state_root,
    wait_for,
)
from tests.ops_support import Sandbox, sandbox_serve

pytestmark = [pytest.mark.redis, pytest.mark.slow]

MARKUP_NAME = "Schmidt [/b] [bold red]GmbH"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with sandbox_serve() as box:
        yield box


def _create(sb: Sandbox, last_name: str) -> str:
    answer = httpx.post(f"{sb.espo}/api/v1/CBeteiligte", headers={"X-Api-Key": STAFF_KEY}, timeout=10,
                        json={"lastName": last_name, "firstName": "Karl", "rechtsform": "natürliche Person"})
    answer.raise_for_status()
    return str(answer.json()["id"])


def test_hostile_status_prints_a_failed_record_whose_name_looks_like_markup(sb: Sandbox) -> None:
    fault = sb.run("sandbox", "fault", "advoware", "500", "--count", "0", "--method", "POST")
    assert fault.returncode == 0, fault.stderr
    try:
        espo_id = _create(sb, MARKUP_NAME)
        wait_for("the new record to fail", lambda: sb.record(espo_id)["syncStatus"] == "failed")
        status = cli({**sb.env, "COLUMNS": "400"}, "status", cwd=sb.root)  # wide: no cell is wrapped
    finally:
        assert sb.run("sandbox", "clear-faults", "advoware").returncode == 0
    assert "unexpected error" not in status.stderr, status.stderr
    assert status.returncode == 3, status.stdout + status.stderr
    line = next(line for line in status.stdout.splitlines() if espo_id in line)
    assert "Karl Schmidt [/b] [bold red]GmbH" in line  # the name as staff see it in EspoCRM


ESCAPES_NAME = "Zora\x1b]0;owned\x07\x1b[2JZufall"  # sets the window title, clears the screen


def test_hostile_status_prints_escape_sequences_as_text_on_one_wide_line(sb: Sandbox) -> None:
    """Issue 19: a record's name reaches the operator's terminal as text, never as a command; and with
    stdout not a terminal (a pipe, COLUMNS unset) the table takes its full width, one line per row."""
    fault = sb.run("sandbox", "fault", "advoware", "500", "--count", "0", "--method", "POST")
    assert fault.returncode == 0, fault.stderr
    try:
        espo_id = _create(sb, ESCAPES_NAME + " " + "Langername" * 12)
        wait_for("the new record to fail", lambda: sb.record(espo_id)["syncStatus"] == "failed")
        env = {k: v for k, v in sb.env.items() if k != "COLUMNS"}
        status = cli(env, "status", cwd=sb.root)
    finally:
        cleared = sb.run("sandbox", "clear-faults")  # both simulators: SYSTEM is optional
    assert cleared.returncode == 0 and "advoware simulator: 0 fault rule(s)" in cleared.stdout, cleared.stderr
    assert "espocrm simulator: 0 fault rule(s)" in cleared.stdout
    assert "\x1b" not in status.stdout and "\x07" not in status.stdout, repr(status.stdout)
    line = next(line for line in status.stdout.splitlines() if espo_id in line)
    assert "Zora\\x1b]0;owned\\x07\\x1b[2JZufall" in line and "Langername" * 12 in line


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_hostile_history_refuses_a_limit_below_one(sb: Sandbox, limit: str) -> None:
    espo_id = sorted(r["id"] for r in espo_records(sb.espo) if r.get("syncStatus") == "clean")[0]
    assert sb.run("history", espo_id).returncode == 0
    answer = sb.run("history", espo_id, "--limit", limit)
    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert "--limit" in answer.stderr


@contextmanager
def serve_with_token(token: str) -> Iterator[str | None]:
    """A sandbox serve with STATUS_TOKEN=``token``; yields its base URL, or None when serve refused the
    token at start (one line naming STATUS_TOKEN, exit code 2: a fix as good as any)."""
    with state_root() as root:
        port = free_port()
        serve = Process([sys.executable, "-m", "entrypoints.cli", "serve"],
                        env_for(root / "state", port, STATUS_TOKEN=token), root, "serve-token.log")
        try:
            def up_or_refused() -> str:
                if serve.proc.poll() is not None:
                    return "refused"
                return "up" if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200 else ""

            if wait_for("serve to answer /health or refuse the token", up_or_refused) == "refused":
                lines = serve.output().strip().splitlines()
                assert serve.proc.returncode == 2 and "STATUS_TOKEN" in lines[-1], serve.output()
                yield None
                return
            published_sandbox(root / "state")
            yield f"http://127.0.0.1:{port}"
        finally:
            serve.stop()


def test_hostile_a_blank_status_token_does_not_open_the_page() -> None:
    with serve_with_token("   ") as url:
        if url is None:
            return
        page = httpx.get(f"{url}/status", auth=("ops", "   "), timeout=30)
    assert page.status_code in (401, 404), page.text[:200]


def test_hostile_a_non_ascii_status_token_works_as_bearer_too() -> None:
    token = "geheimnis-ä-0123456789"
    with serve_with_token(token) as url:
        if url is None:
            return
        basic = httpx.get(f"{url}/status", auth=("ops", token), timeout=30)
        bearer = httpx.get(f"{url}/status", headers={b"Authorization": f"Bearer {token}".encode()}, timeout=30)
    assert basic.status_code == 200
    assert bearer.status_code == 200, bearer.text


def test_hostile_status_beside_a_serve_on_ipv6_loopback() -> None:
    with state_root() as root:
        port = free_port()
        env = env_for(root / "state", port, HOST="::1")
        serve = Process([sys.executable, "-m", "entrypoints.cli", "serve"], env, root, "serve-ipv6.log")
        try:
            def healthy() -> bool:
                assert serve.proc.poll() is None, serve.output()
                return httpx.get(f"http://[::1]:{port}/health", timeout=5).status_code == 200

            wait_for("serve on [::1] to answer /health", healthy)
            published_sandbox(root / "state")
            status = cli(env, "status", cwd=root)
        finally:
            serve.stop()
    assert "unexpected error" not in status.stderr, status.stderr
    workers = next(line for line in status.stdout.splitlines() if line.startswith("│ event workers"))
    assert workers.split("│")[2].strip() == "ok", status.stdout


@pytest.mark.parametrize("option", [["--path", "("], ["--method", "FOO", "--count", "0"]], ids=["regex", "method"])
def test_hostile_sandbox_fault_refuses_a_rule_that_cannot_work(sb: Sandbox, option: list[str]) -> None:
    try:
        answer = sb.run("sandbox", "fault", "advoware", "503", *option)
        rules = httpx.get(f"{sb.advo}/__sim/faults", timeout=10).json()["rules"]
        probe = httpx.get(f"{sb.advo}/api/v1/advonet/Beteiligte", params={"take": 1}, timeout=10).status_code
    finally:
        assert sb.run("sandbox", "clear-faults", "advoware").returncode == 0
    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert "Traceback" not in answer.stderr
    assert rules == [] and probe != 500


def test_hostile_history_prints_an_error_message_with_brackets_as_it_is(sb: Sandbox) -> None:
    rule = {"status": 400, "method": "POST", "path": "Beteiligte$", "times": None,
            "body": json.dumps({"title": "Bad Request", "detail": "Feld [/Name] zu lang"})}
    httpx.post(f"{sb.advo}/__sim/faults", json={"rules": [rule]}, timeout=10).raise_for_status()
    try:
        espo_id = _create(sb, "Klammerfehler")
        wait_for("the new record to fail", lambda: sb.record(espo_id)["syncStatus"] == "failed")
    finally:
        assert sb.run("sandbox", "clear-faults", "advoware").returncode == 0
    assert "Feld [/Name] zu lang" in sb.record(espo_id)["syncErrorMessage"]  # what staff see in EspoCRM
    history = cli({**sb.env, "COLUMNS": "400"}, "history", espo_id, cwd=sb.root)
    assert "unexpected error" not in history.stderr, history.stderr
    assert history.returncode == 0, history.stdout + history.stderr
    assert "Feld [/Name] zu lang" in history.stdout
