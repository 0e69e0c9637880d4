"""A create whose answer was lost is adopted, never repeated: also when a person changed the EspoCRM
record before the next attempt (which then sends other values than the lost one did)."""

from __future__ import annotations

from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed

ADVO_COLLECTION = "/advonet/Beteiligte$"


async def test_lost_create_is_adopted_after_a_person_changed_the_record() -> None:
    tb = await start_fast_testbed(http_timeout=1.0)
    try:
        # The POST is applied but its answer never arrives; the quick retry cannot look for it.
        tb.advo.faults.add(method="POST", path=ADVO_COLLECTION, delay=1.5, lose_answer=True, times=1)
        tb.advo.faults.add(method="GET", path=ADVO_COLLECTION, status=500, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert tb.espo_record(rec["id"])["syncStatus"] == "failed"
        assert len(tb.advo.all()) == 1  # the lost create landed
        tb.espo.user_edit(rec["id"], addressCity="Potsdam")
        await tb.flush()
        after = tb.espo_record(rec["id"])
        assert after["syncStatus"] == "clean"
        assert [b["betNr"] for b in tb.advo.all()] == [after["betnr"]]  # adopted, not created twice
        assert tb.advo_record(after["betnr"])["ort"] == "Potsdam"  # and brought to the new values
    finally:
        await tb.close()
