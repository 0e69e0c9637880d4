"""A create under a profile whose POST answers without rowId (post_returns_row_id = false, or an Advoware
that leaves it out): the POST is done and its answer names the new betNr, then the one GET that reads the
rowId times out. Without the list endpoint nothing can find that Beteiligter again, so the create must not
be taken for one of unknown outcome: it was repeated, and Advoware held the party twice."""

from __future__ import annotations

from tests.conftest import SAMPLE
from tests.testbed import start_testbed

ADVO_ITEM = r"/advonet/Beteiligte/\d+$"  # the no-list profile's resource


async def test_a_lost_get_after_a_create_without_row_id_does_not_create_twice() -> None:
    tb = await start_testbed(http_timeout=1.0, advo_profile="no-list", post_returns_rowid=False)
    try:
        tb.advo.faults.add(method="GET", path=ADVO_ITEM, delay=1.5, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert len(tb.advo.all()) == 1  # the create landed; the GET after it timed out
        tb.espo.user_edit(rec["id"], addressCity="Potsdam")  # the next sync of the record
        await tb.flush()
        after = tb.espo_record(rec["id"])
        assert [b["betNr"] for b in tb.advo.all()] == [after["betnr"]], tb.advo.all()
        assert after["syncStatus"] == "clean"
        assert tb.advo_record(after["betnr"])["ort"] == "Potsdam"
    finally:
        await tb.close()
