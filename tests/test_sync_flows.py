"""What one sync does, decided and written: updates both ways, deletes, conflicts, failures and their
retries, the sync check as a safety net. On the in-memory fakes (``fast_tb``): the same simulators and
services as over HTTP; ``tests/test_e2e_sync.py`` keeps the paths that are about the wire."""

from __future__ import annotations

from typing import Any

from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed


async def created(fast_tb: Testbed, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    rec = fast_tb.espo.seed(**{**SAMPLE, **extra})
    await fast_tb.flush()
    rec = fast_tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean", rec
    return rec, fast_tb.advo_record(rec["betnr"])


async def test_espo_update_reaches_advoware_and_keeps_unmapped_fields(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.advo.edit(advo["betNr"], kurzname="MÜLLA", zusatz="VIP")
    await fast_tb.sync_check()  # Advoware changed: nothing mapped moved, nothing to write
    fast_tb.reset_calls()
    fast_tb.espo.user_edit(rec["id"], addressCity="Potsdam", phoneNumber=None)
    await fast_tb.flush()
    advo = fast_tb.advo_record(advo["betNr"])
    assert advo["ort"] == "Potsdam" and advo["telefon"] is None
    assert advo["kurzname"] == "MÜLLA" and advo["zusatz"] == "VIP"
    assert fast_tb.espo_record(rec["id"])["advowareRowId"] == advo["rowId"]
    # GET both, mark, PUT Advoware, release
    assert fast_tb.api_calls() <= 5, fast_tb.calls()


async def test_advoware_update_reaches_espo_in_four_calls(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.advo.edit(advo["betNr"], ort="Köln", email="neu@example.org")
    fast_tb.reset_calls()
    result = await fast_tb.services.sync.sync(rec["id"], "test")
    assert result.decision is not None and set(result.decision.to_espo) == {"addressCity", "emailAddress"}
    rec = fast_tb.espo_record(rec["id"])
    assert rec["addressCity"] == "Köln" and rec["emailAddress"] == "neu@example.org"
    assert rec["description"] == SAMPLE["description"]
    # GET both, mark, release; without optimistic concurrency one more GET right before the release
    assert fast_tb.api_calls() <= (4 if fast_tb.espo.occ else 5), fast_tb.calls()


async def test_sync_check_finds_advoware_change_and_then_writes_nothing(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.advo.edit(advo["betNr"], strasse="Neue Str. 5")
    await fast_tb.sync_check()
    assert fast_tb.espo_record(rec["id"])["addressStreet"] == "Neue Str. 5"
    fast_tb.reset_calls()
    await fast_tb.sync_check()
    assert fast_tb.writes() == 0, fast_tb.calls()


async def test_unmapped_only_update_makes_no_api_call(fast_tb: Testbed):
    rec, _ = await created(fast_tb)
    fast_tb.reset_calls()
    fast_tb.espo.user_edit(rec["id"], description="nur intern")
    await fast_tb.flush()
    assert fast_tb.api_calls(include_token=True) == 0, fast_tb.calls()


async def test_no_change_update_does_not_write_advoware(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.reset_calls()
    await fast_tb.services.sync.sync(rec["id"], "duplicate")
    assert fast_tb.advo_record(advo["betNr"])["rowId"] == advo["rowId"]
    assert not any(k.startswith("advoware PUT") or k.startswith("advoware POST") for k in fast_tb.calls())


async def test_delete_unlinks_by_default_and_leaves_advoware_alone(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.espo.user_delete(rec["id"])
    await fast_tb.flush()
    assert fast_tb.advo.get(advo["betNr"]) is not None
    assert await fast_tb.services.store.get_link(rec["id"]) is None


async def test_delete_policy_delete_removes_in_advoware_and_keeps_referenced():
    fast_tb = await start_fast_testbed(delete_policy="delete")
    try:
        rec, advo = await created(fast_tb)
        rec2, advo2 = await created(fast_tb, lastName="Zweiter")
        fast_tb.advo.set_referenced(advo2["betNr"], True)
        fast_tb.espo.user_delete(rec["id"])
        fast_tb.espo.user_delete(rec2["id"])
        await fast_tb.flush()
        assert fast_tb.advo.get(advo["betNr"]) is None
        assert fast_tb.advo.get(advo2["betNr"]) is not None
        failed = await fast_tb.services.redis.hgetall("bsync:failed_deletes")
        assert list(failed) == [rec2["id"].encode()]
        assert b"nicht gel" in failed[rec2["id"].encode()]
    finally:
        await fast_tb.close()


async def test_duplicate_webhook_delivery_creates_once(fast_tb: Testbed):
    rec = fast_tb.espo.seed(**SAMPLE)
    await fast_tb.flush()
    before = len(fast_tb.advo.all())
    await fast_tb.services.sync.sync(rec["id"], "duplicate")  # the same create, again
    await fast_tb.host.emit("vmh.beteiligte.create", {"id": rec["id"], "trigger": "webhook_create"})
    await fast_tb.host.drain(10)
    assert len(fast_tb.advo.all()) == before == 1


async def test_advoware_503_with_long_wait_defers_then_sync_check_finishes(fast_tb: Testbed):
    fast_tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=503, retry_after=120, times=1)
    rec = fast_tb.espo.seed(**SAMPLE)
    await fast_tb.flush()
    mid = fast_tb.espo_record(rec["id"])
    assert mid["syncStatus"] == "pending_sync" and mid["syncRetryCount"] == 0
    assert "503" in mid["syncErrorMessage"]
    await fast_tb.sync_check()  # not due yet: nothing happens
    assert fast_tb.espo_record(rec["id"])["syncStatus"] == "pending_sync"
    fast_tb.clock.advance(121)
    await fast_tb.sync_check()
    done = fast_tb.espo_record(rec["id"])
    assert done["syncStatus"] == "clean" and done["syncErrorMessage"] is None
    assert len(fast_tb.advo.all()) == 1


async def test_conflict_is_resolved_by_policy_and_posted_as_note(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.advo.edit(advo["betNr"], name="Mueller")  # Advoware user fixes the spelling...
    fast_tb.espo.user_edit(rec["id"], firstName="Annette")  # ...while staff edit the same group
    await fast_tb.flush()
    advo = fast_tb.advo_record(advo["betNr"])
    assert advo["name"] == "Müller" and advo["vorname"] == "Annette"  # stammdaten: EspoCRM wins
    notes = fast_tb.espo.notes_for(rec["id"])
    assert len(notes) == 1 and "Mueller" in notes[0]["post"] and "lastName" in notes[0]["post"]


async def test_advoware_record_gone_marks_espo_and_never_deletes(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.advo.remove(advo["betNr"])
    await fast_tb.sync_check()
    after = fast_tb.espo_record(rec["id"])
    assert after is not None and after["syncStatus"] == "failed"
    assert str(advo["betNr"]) in after["syncErrorMessage"]
    assert len(fast_tb.espo.notes_for(rec["id"])) == 1
    await fast_tb.sync_check()  # unchanged since: no retry, no second note
    assert len(fast_tb.espo.notes_for(rec["id"])) == 1


async def test_five_failures_make_permanently_failed_with_one_note(fast_tb: Testbed):
    fast_tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=500, times=None)
    rec = fast_tb.espo.seed(**SAMPLE)
    await fast_tb.flush()
    for _ in range(6):
        fast_tb.clock.advance(4000)
        await fast_tb.sync_check()
    after = fast_tb.espo_record(rec["id"])
    assert after["syncStatus"] == "permanently_failed"
    assert after["syncRetryCount"] >= 5 and "500" in after["syncErrorMessage"]
    assert len(fast_tb.espo.notes_for(rec["id"])) == 1
    fast_tb.advo.faults.clear()
    fast_tb.clock.advance(7 * 3600)
    await fast_tb.sync_check()
    healed = fast_tb.espo_record(rec["id"])
    assert healed["syncStatus"] == "clean" and healed["syncRetryCount"] == 0


async def test_lost_webhook_is_found_by_sync_check(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.espo.user_edit(rec["id"], addressPostalCode="14467")
    # the update webhook stays queued in EspoCRM and is never delivered
    await fast_tb.sync_check()
    assert fast_tb.advo_record(advo["betNr"])["plz"] == "14467"


async def test_release_write_failing_after_the_advoware_write_loses_nothing(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.advo.edit(advo["betNr"], ort="Köln")  # owed to EspoCRM
    fast_tb.espo.user_edit(rec["id"], firstName="Anne")  # owed to Advoware
    # Let the mark through, then fail the release and its quick retry.
    fast_tb.espo.faults.add(method="PUT", path="/CBeteiligte/", status=500, times=2, skip=1)
    result = await fast_tb.services.sync.sync(rec["id"], "webhook")
    assert result.status == "failed"
    assert fast_tb.advo_record(advo["betNr"])["vorname"] == "Anne"  # the Advoware write did land
    fast_tb.clock.advance(3600)
    await fast_tb.sync_check()
    after = fast_tb.espo_record(rec["id"])
    assert after["syncStatus"] == "clean" and after["addressCity"] == "Köln" and after["firstName"] == "Anne"
    assert fast_tb.advo_record(advo["betNr"])["ort"] == "Köln"
    assert fast_tb.espo.notes_for(rec["id"]) == []


async def test_fatal_failure_waits_for_a_change_of_the_record(fast_tb: Testbed):
    fast_tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=400, times=None)
    rec = fast_tb.espo.seed(**SAMPLE)
    await fast_tb.flush()
    failed = fast_tb.espo_record(rec["id"])
    assert failed["syncStatus"] == "failed" and failed["syncRetryCount"] == 1
    assert "no retry until the record changes" in failed["syncErrorMessage"]
    for _ in range(2):
        fast_tb.clock.advance(24 * 3600)
        await fast_tb.sync_check()
    assert fast_tb.espo_record(rec["id"])["syncRetryCount"] == 1  # not retried: nothing changed
    fast_tb.advo.faults.clear()
    fast_tb.espo.user_edit(rec["id"], lastName="Müller-Lüdenscheidt")
    # the edit's webhook is never delivered: the sync check sees the change
    await fast_tb.sync_check()
    healed = fast_tb.espo_record(rec["id"])
    assert healed["syncStatus"] == "clean" and fast_tb.advo_record(healed["betnr"])["name"] == "Müller-Lüdenscheidt"


async def test_clearing_betnr_after_the_twin_vanished_creates_a_new_one(fast_tb: Testbed):
    rec, advo = await created(fast_tb)
    fast_tb.advo.remove(advo["betNr"])
    await fast_tb.sync_check()
    assert fast_tb.espo_record(rec["id"])["syncStatus"] == "failed"
    fast_tb.espo.user_edit(rec["id"], betnr=None)  # staff ask for a new Beteiligter
    await fast_tb.flush()  # betnr is not mapped: the webhook queues nothing, the sync check sees it
    await fast_tb.sync_check()
    after = fast_tb.espo_record(rec["id"])
    assert after["syncStatus"] == "clean" and after["betnr"] not in (None, advo["betNr"])
    assert fast_tb.advo_record(after["betnr"])["name"] == SAMPLE["lastName"]
