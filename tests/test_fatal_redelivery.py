"""Issue 17 item 7: identical deliveries of a record that failed fatally do not run it again.

A fatal failure (Advoware refuses the values with ``400``) waits for a change of the record's mapped
values. EspoCRM sends the same batch again after a timeout, and 8.x echoes our own status write: none
of those deliveries may write to either system, count a failure or post a Note."""

from __future__ import annotations

from tests.conftest import SAMPLE
from tests.fakes.fast_bed import FastBed

ADVO_COLLECTION = "/advonet/Beteiligte$"


async def test_ten_identical_deliveries_of_a_fatally_failed_record_write_nothing(fast_tb: FastBed):
    fast_tb.advo.faults.add(method="POST", path=ADVO_COLLECTION, status=400, times=None)
    rec = fast_tb.espo.seed(**SAMPLE)
    [(sub, items)] = fast_tb.espo.take_webhook_events()  # the create batch, as EspoCRM sends it
    await fast_tb._deliver(sub, items)
    await fast_tb.host.drain(30)
    failed = fast_tb.espo_record(rec["id"])
    assert failed["syncStatus"] == "failed" and failed["syncRetryCount"] == 1, failed
    fast_tb.reset_calls()
    for _ in range(10):
        await fast_tb._deliver(sub, items)  # EspoCRM retries the same batch (a timeout, a lost 200)
        await fast_tb.host.drain(30)
    await fast_tb.flush()  # and whatever our one status write queued (8.x echoes it)
    after = fast_tb.espo_record(rec["id"])
    assert fast_tb.writes() == 0, fast_tb.calls()
    assert after["syncStatus"] == "failed" and after["syncRetryCount"] == 1, after
    assert fast_tb.espo.notes_for(rec["id"]) == []
    # A change of a mapped value runs it again at once (and, the cause gone, heals it).
    fast_tb.advo.faults.clear()
    fast_tb.espo.user_edit(rec["id"], lastName="Müller-Lüdenscheidt")
    await fast_tb.flush()
    healed = fast_tb.espo_record(rec["id"])
    assert healed["syncStatus"] == "clean", healed
    assert fast_tb.advo_record(healed["betnr"])["name"] == "Müller-Lüdenscheidt"

