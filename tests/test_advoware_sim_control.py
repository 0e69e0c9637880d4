"""Issue 20's simulator faults as a tester uses them: ``beteiligte-sync sandbox bulk-change`` (a bulk job in
Advoware: N rows at one stamp) and ``sandbox clock`` (Advoware's clock: skew, the autumn change) on a
running sandbox ``serve``, and the same over HTTP (``/__sim/bulk-change``, ``/__sim/clock``). The running
service's change feed brings the bulk change to EspoCRM."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.embedded_support import advo_records, espo_records, wait_for
from tests.ops_support import Sandbox, sandbox_serve

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with sandbox_serve() as box:
        yield box


def test_a_bulk_change_by_cli_reaches_espocrm_through_the_feed(sb: Sandbox) -> None:
    done = sb.run("sandbox", "bulk-change", "3", "ort=Massenort")
    assert done.returncode == 0, done.stderr
    stamps = {r["geaendertAm"] for r in advo_records(sb.advo)}
    assert len(stamps) == 1 and f"3 Beteiligte changed at geaendertAm {stamps.pop()}" in done.stdout
    wait_for("the feed to bring the bulk change to EspoCRM",  # ADVOWARE_POLL_SECONDS: 10 in the sandbox
             lambda: {r.get("addressCity") for r in espo_records(sb.espo)} == {"Massenort"}, deadline_s=40)


def test_bad_bulk_changes_and_clocks_are_refused_in_one_line(sb: Sandbox) -> None:
    before = advo_records(sb.advo)
    for args in (["3", "gibtsnicht=1"], ["3", "ort=X", "--stamp", "gestern"], ["0", "ort=X"]):
        answer = sb.run("sandbox", "bulk-change", *args)
        assert answer.returncode == 2 and "Traceback" not in answer.stderr, answer.stdout + answer.stderr
        assert len(answer.stderr.strip().splitlines()) == 1 or "Usage" in answer.stderr
    answer = sb.run("sandbox", "clock", "--local", "2026-10-25T02:59:00+02:00")
    assert answer.returncode == 2 and "without an offset" in answer.stderr, answer.stderr
    assert advo_records(sb.advo) == before
    for body in ({}, {"changes": {"ort": "X"}}, {"count": 2, "changes": {"ort": "X"}, "stamp": 5}):
        assert httpx.post(f"{sb.advo}/__sim/bulk-change", json=body, timeout=10).status_code == 400
    assert httpx.post(f"{sb.advo}/__sim/clock", json={"offset_s": 1, "advance_s": 2}, timeout=10).status_code == 400


def test_the_clock_puts_advoware_into_the_repeated_autumn_hour(sb: Sandbox) -> None:
    shown = sb.run("sandbox", "clock")
    assert shown.returncode == 0 and "Advoware's clock: " in shown.stdout, shown.stderr
    summer = sb.run("sandbox", "clock", "--local", "2026-10-25T02:59:00")
    assert "2026-10-25T02:59:00" in summer.stdout and "UTC2:00:00" in summer.stdout, summer.stdout
    winter = sb.run("sandbox", "clock", "--local", "2026-10-25T02:10:00", "--fold", "1")
    assert "2026-10-25T02:10:00" in winter.stdout and "UTC1:00:00" in winter.stdout, winter.stdout
    state = httpx.post(f"{sb.advo}/__sim/clock", json={"advance_s": 3600}, timeout=10).json()
    assert state["local"].startswith("2026-10-25T03:10:0"), state
    assert httpx.post(f"{sb.advo}/__sim/clock", json={"offset_s": 0}, timeout=10).json()["offset_s"] == 0
