"""Issue 20: the repeated autumn hour end to end. Advoware stamps ``geaendertAm`` in the firm's local time
without an offset, so on 25 October 2026 its stamps run 02:59 (summer time) and then 02:00 again
(winter time). The simulator's clock is put there over HTTP (``/__sim/clock``), the service's clock
with it; Advoware users edit over HTTP (``/__sim/records``) before, during and after the repeated hour.
Every edit reaches EspoCRM, each is queued once, and nothing is synced again afterwards. Both EspoCRM
profiles, the session's redis-server."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sync import advoware_feed
from sync.advoware_feed import PollResult
from tests.test_advoware_feed import linked
from tests.test_advoware_feed_cursor import poll_once
from tests.testbed import Testbed

BACK = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 03:00 CEST becomes 02:00 CET


def set_clocks(tb: Testbed, sim: httpx.Client, utc: datetime) -> str:
    """Advoware's clock (over HTTP) and the service's to ``utc``; returns Advoware's local time."""
    tb.clock.offset = utc.timestamp() - time.time()
    answer = sim.post("/__sim/clock", json={"utc": utc.isoformat()})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["local"])


def edit(sim: httpx.Client, betnr: int, ort: str) -> str:
    answer = sim.put(f"/__sim/records/{betnr}", json={"ort": ort})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["geaendertAm"])


async def edit_and_poll(tb: Testbed, sim: httpx.Client, rec: dict[str, Any], ort: str) -> tuple[str, int]:
    """The edit, then polls until the feed has read to the end (one poll unless reads are capped)."""
    stamp = edit(sim, rec["betnr"], ort)
    queued = 0
    for _ in range(10):
        result: PollResult = await poll_once(tb)
        queued += result.queued
        if not result.more:
            break
    assert tb.espo_record(rec["id"])["addressCity"] == ort, (stamp, result)
    assert queued == 1, (stamp, queued)  # this edit, and no earlier one again
    return stamp, queued


@pytest.mark.parametrize(("page", "reads"), [(200, 50), (2, 50), (2, 2)],
                         ids=["window_in_a_page", "window_over_pages", "window_over_polls"])
async def test_edits_before_during_and_after_the_repeated_hour(firm_both: Testbed, page: int, reads: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With pages of 2 the feed's window spans pages (its cursor's case, sync/feed_cursor.py); with 2
    reads a poll it spans polls too."""
    monkeypatch.setattr(advoware_feed, "PAGE", page)
    monkeypatch.setattr(advoware_feed, "READS_PER_POLL", reads)
    tb = firm_both
    assert tb.advo_server is not None
    with httpx.Client(base_url=tb.advo_server.url, timeout=10) as sim:
        assert set_clocks(tb, sim, BACK.replace(hour=0, minute=40)).startswith("2026-10-25T02:40")
        a, b, c, d = await linked(tb, 4)
        await poll_once(tb)
        await poll_once(tb)

        await edit_and_poll(tb, sim, a, "Sommerzeit")
        set_clocks(tb, sim, BACK.replace(hour=0, minute=59, second=50))
        late_summer, _ = await edit_and_poll(tb, sim, b, "Kurz davor")
        assert late_summer.startswith("2026-10-25T02:59:5")

        assert set_clocks(tb, sim, BACK.replace(second=10)).startswith("2026-10-25T02:00:1")  # CET now
        repeated, _ = await edit_and_poll(tb, sim, c, "Wiederholt")
        assert repeated < late_summer  # stamped before the watermark: found all the same
        set_clocks(tb, sim, BACK.replace(minute=30))
        await edit_and_poll(tb, sim, a, "Nochmal")  # a row changed in both passes of 02:xx
        set_clocks(tb, sim, BACK.replace(minute=59, second=55))  # 02:59:55 CET: last in the window
        await edit_and_poll(tb, sim, c, "Stundenende")

        assert set_clocks(tb, sim, BACK.replace(hour=2, minute=5)).startswith("2026-10-25T03:05")
        await edit_and_poll(tb, sim, d, "Winterzeit")
        await edit_and_poll(tb, sim, b, "Danach")

        tb.reset_calls()
        for _ in range(4):  # nothing synced again for good
            assert (await poll_once(tb)).queued == 0
        assert tb.writes() == 0
    expected = {a["id"]: "Nochmal", b["id"]: "Danach", c["id"]: "Stundenende", d["id"]: "Winterzeit"}
    assert {i: tb.espo_record(i)["addressCity"] for i in expected} == expected
