"""End to end over HTTP: EspoCRM simulator -> webhook -> service -> Advoware simulator and back."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed


async def created(tb: Testbed, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    rec = tb.espo.seed(**{**SAMPLE, **extra})
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean", rec
    return rec, tb.advo_record(rec["betnr"])


async def test_create_reaches_advoware_with_link_written_back_in_four_calls(tb: Testbed):
    rec = tb.espo.seed(**SAMPLE)
    tb.reset_calls()
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    advo = tb.advo_record(rec["betnr"])
    assert advo["name"] == "Müller" and advo["vorname"] == "Anna" and advo["ort"] == "Berlin"
    assert advo["geburtsdatum"] == "1980-04-12T00:00:00"
    assert rec["advowareRowId"] == advo["rowId"]
    assert rec["advowareLastSync"] and rec["syncRetryCount"] == 0 and rec["syncErrorMessage"] is None
    # GET, mark syncing, POST, release
    assert tb.api_calls() <= 4, tb.calls()
    assert tb.writes() == 3, tb.calls()


async def test_create_without_row_id_in_post_answer_costs_one_get():
    tb = await start_testbed(post_returns_rowid=False)
    try:
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        rec = tb.espo_record(rec["id"])
        assert rec["syncStatus"] == "clean"
        assert rec["advowareRowId"] == tb.advo_record(rec["betnr"])["rowId"]
        assert tb.api_calls() == 5, tb.calls()
    finally:
        await tb.close()


async def test_espo_update_reaches_advoware_and_keeps_unmapped_fields(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.edit(advo["betNr"], kurzname="MÜLLA", zusatz="VIP")
    await tb.sync_check()  # Advoware changed: nothing mapped moved, nothing to write
    tb.reset_calls()
    tb.espo.user_edit(rec["id"], addressCity="Potsdam", phoneNumber=None)
    await tb.flush()
    advo = tb.advo_record(advo["betNr"])
    assert advo["ort"] == "Potsdam" and advo["telefon"] is None
    assert advo["kurzname"] == "MÜLLA" and advo["zusatz"] == "VIP"
    assert tb.espo_record(rec["id"])["advowareRowId"] == advo["rowId"]
    # GET both, mark, PUT Advoware, release
    assert tb.api_calls() <= 5, tb.calls()


async def test_advoware_update_reaches_espo_in_four_calls(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.edit(advo["betNr"], ort="Köln", email="neu@example.org")
    tb.reset_calls()
    result = await tb.services.sync.sync(rec["id"], "test")
    assert result.decision is not None and set(result.decision.to_espo) == {"addressCity", "emailAddress"}
    rec = tb.espo_record(rec["id"])
    assert rec["addressCity"] == "Köln" and rec["emailAddress"] == "neu@example.org"
    assert rec["description"] == SAMPLE["description"]
    # GET both, mark, release; without optimistic concurrency one more GET right before the release
    assert tb.api_calls() <= (4 if tb.espo.occ else 5), tb.calls()


async def test_sync_check_finds_advoware_change_and_then_writes_nothing(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.edit(advo["betNr"], strasse="Neue Str. 5")
    await tb.sync_check()
    assert tb.espo_record(rec["id"])["addressStreet"] == "Neue Str. 5"
    tb.reset_calls()
    await tb.sync_check()
    assert tb.writes() == 0, tb.calls()


async def test_unmapped_only_update_makes_no_api_call(tb: Testbed):
    rec, _ = await created(tb)
    tb.reset_calls()
    tb.espo.user_edit(rec["id"], description="nur intern")
    await tb.flush()
    assert tb.api_calls(include_token=True) == 0, tb.calls()


async def test_no_change_update_does_not_write_advoware(tb: Testbed):
    rec, advo = await created(tb)
    tb.reset_calls()
    await tb.services.sync.sync(rec["id"], "duplicate")
    assert tb.advo_record(advo["betNr"])["rowId"] == advo["rowId"]
    assert not any(k.startswith("advoware PUT") or k.startswith("advoware POST") for k in tb.calls())


async def test_delete_unlinks_by_default_and_leaves_advoware_alone(tb: Testbed):
    rec, advo = await created(tb)
    tb.espo.user_delete(rec["id"])
    await tb.flush()
    assert tb.advo.get(advo["betNr"]) is not None
    assert await tb.services.store.get_link(rec["id"]) is None


async def test_delete_policy_delete_removes_in_advoware_and_keeps_referenced():
    tb = await start_testbed(delete_policy="delete")
    try:
        rec, advo = await created(tb)
        rec2, advo2 = await created(tb, lastName="Zweiter")
        tb.advo.set_referenced(advo2["betNr"], True)
        tb.espo.user_delete(rec["id"])
        tb.espo.user_delete(rec2["id"])
        await tb.flush()
        assert tb.advo.get(advo["betNr"]) is None
        assert tb.advo.get(advo2["betNr"]) is not None
        failed = await tb.services.redis.hgetall("bsync:failed_deletes")
        assert list(failed) == [rec2["id"].encode()]
        assert b"nicht gel" in failed[rec2["id"].encode()]
    finally:
        await tb.close()


async def test_duplicate_webhook_delivery_creates_once(tb: Testbed):
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    before = len(tb.advo.all())
    await tb.services.sync.sync(rec["id"], "duplicate")  # the same create, again
    await tb.host.emit("vmh.beteiligte.create", {"id": rec["id"], "trigger": "webhook_create"})
    await tb.host.drain(10)
    assert len(tb.advo.all()) == before == 1


async def test_advoware_503_then_success_is_retried_inline(tb: Testbed):
    tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=503, retry_after=1, times=1)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["syncRetryCount"] == 0
    assert tb.advo.calls.snapshot()["POST /api/v1/advonet/Beteiligte"] == 2


async def test_advoware_503_with_long_wait_defers_then_sync_check_finishes(tb: Testbed):
    tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=503, retry_after=120, times=1)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    mid = tb.espo_record(rec["id"])
    assert mid["syncStatus"] == "pending_sync" and mid["syncRetryCount"] == 0
    assert "503" in mid["syncErrorMessage"]
    await tb.sync_check()  # not due yet: nothing happens
    assert tb.espo_record(rec["id"])["syncStatus"] == "pending_sync"
    tb.clock.advance(121)
    await tb.sync_check()
    done = tb.espo_record(rec["id"])
    assert done["syncStatus"] == "clean" and done["syncErrorMessage"] is None
    assert len(tb.advo.all()) == 1


async def test_expired_token_is_renewed_once(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.expire_tokens()
    tb.reset_calls()
    tb.espo.user_edit(rec["id"], firstName="Anne")
    await tb.flush()
    assert tb.advo_record(advo["betNr"])["vorname"] == "Anne"
    assert tb.advo.calls.snapshot().get("POST /api/v1/Token") == 1


async def test_conflict_is_resolved_by_policy_and_posted_as_note(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.edit(advo["betNr"], name="Mueller")  # Advoware user fixes the spelling...
    tb.espo.user_edit(rec["id"], firstName="Annette")  # ...while staff edit the same group
    await tb.flush()
    advo = tb.advo_record(advo["betNr"])
    assert advo["name"] == "Müller" and advo["vorname"] == "Annette"  # stammdaten: EspoCRM wins
    notes = tb.espo.notes_for(rec["id"])
    assert len(notes) == 1 and "Mueller" in notes[0]["post"] and "lastName" in notes[0]["post"]


async def test_advoware_record_gone_marks_espo_and_never_deletes(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.remove(advo["betNr"])
    await tb.sync_check()
    after = tb.espo_record(rec["id"])
    assert after is not None and after["syncStatus"] == "failed"
    assert str(advo["betNr"]) in after["syncErrorMessage"]
    assert len(tb.espo.notes_for(rec["id"])) == 1
    await tb.sync_check()  # unchanged since: no retry, no second note
    assert len(tb.espo.notes_for(rec["id"])) == 1


async def test_five_failures_make_permanently_failed_with_one_note(tb: Testbed):
    tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=500, times=None)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    for _ in range(6):
        tb.clock.advance(4000)
        await tb.sync_check()
    after = tb.espo_record(rec["id"])
    assert after["syncStatus"] == "permanently_failed"
    assert after["syncRetryCount"] >= 5 and "500" in after["syncErrorMessage"]
    assert len(tb.espo.notes_for(rec["id"])) == 1
    tb.advo.faults.clear()
    tb.clock.advance(7 * 3600)
    await tb.sync_check()
    healed = tb.espo_record(rec["id"])
    assert healed["syncStatus"] == "clean" and healed["syncRetryCount"] == 0


async def test_lost_webhook_is_found_by_sync_check(tb: Testbed):
    rec, advo = await created(tb)
    tb.espo.user_edit(rec["id"], addressPostalCode="14467")
    # the update webhook stays queued in EspoCRM and is never delivered
    await tb.sync_check()
    assert tb.advo_record(advo["betNr"])["plz"] == "14467"


async def test_release_write_failing_after_the_advoware_write_loses_nothing(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.edit(advo["betNr"], ort="Köln")  # owed to EspoCRM
    tb.espo.user_edit(rec["id"], firstName="Anne")  # owed to Advoware
    # Let the mark through, then fail the release and its quick retry.
    tb.espo.faults.add(method="PUT", path="/CBeteiligte/", status=500, times=2, skip=1)
    result = await tb.services.sync.sync(rec["id"], "webhook")
    assert result.status == "failed"
    assert tb.advo_record(advo["betNr"])["vorname"] == "Anne"  # the Advoware write did land
    tb.clock.advance(3600)
    await tb.sync_check()
    after = tb.espo_record(rec["id"])
    assert after["syncStatus"] == "clean" and after["addressCity"] == "Köln" and after["firstName"] == "Anne"
    assert tb.advo_record(advo["betNr"])["ort"] == "Köln"
    assert tb.espo.notes_for(rec["id"]) == []


async def test_fatal_failure_waits_for_a_change_of_the_record(tb: Testbed):
    tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=400, times=None)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    failed = tb.espo_record(rec["id"])
    assert failed["syncStatus"] == "failed" and failed["syncRetryCount"] == 1
    assert "no retry until the record changes" in failed["syncErrorMessage"]
    for _ in range(2):
        tb.clock.advance(24 * 3600)
        await tb.sync_check()
    assert tb.espo_record(rec["id"])["syncRetryCount"] == 1  # not retried: nothing changed
    tb.advo.faults.clear()
    tb.espo.user_edit(rec["id"], lastName="Müller-Lüdenscheidt")
    # the edit's webhook is never delivered: the sync check sees the change
    await tb.sync_check()
    healed = tb.espo_record(rec["id"])
    assert healed["syncStatus"] == "clean" and tb.advo_record(healed["betnr"])["name"] == "Müller-Lüdenscheidt"


async def test_create_whose_answer_was_lost_is_adopted_not_repeated():
    tb = await start_testbed(http_timeout=1.0)
    try:
        tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", delay=1.5, lose_answer=True, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        await asyncio.sleep(0.6)  # let the held answer go nowhere
        tb.clock.advance(3600)
        await tb.sync_check()
        after = tb.espo_record(rec["id"])
        assert after["syncStatus"] == "clean"
        assert [b["betNr"] for b in tb.advo.all()] == [after["betnr"]]  # one Beteiligter, linked
    finally:
        await tb.close()


async def test_clearing_betnr_after_the_twin_vanished_creates_a_new_one(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.remove(advo["betNr"])
    await tb.sync_check()
    assert tb.espo_record(rec["id"])["syncStatus"] == "failed"
    tb.espo.user_edit(rec["id"], betnr=None)  # staff ask for a new Beteiligter
    await tb.flush()  # betnr is not mapped: the webhook queues nothing, the sync check sees it
    await tb.sync_check()
    after = tb.espo_record(rec["id"])
    assert after["syncStatus"] == "clean" and after["betnr"] not in (None, advo["betNr"])
    assert tb.advo_record(after["betnr"])["name"] == SAMPLE["lastName"]
