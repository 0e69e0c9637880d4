"""Issue 17 item 3: a create whose answer was lost, and an Advoware user edits the new party before
the retry. The retry must adopt it (never create a second party), keep the Advoware user's edit
(it reaches EspoCRM), and still bring a person's EspoCRM change made meanwhile to Advoware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from domain.beteiligte_mapper import espo_to_canonical
from tests.conftest import SAMPLE
from tests.fakes.fast_bed import FastBed, start_fast_testbed

ADVO_COLLECTION = "/advonet/Beteiligte$"
NO_PHONE = {k: v for k, v in SAMPLE.items() if k != "phoneNumber"}
ADDED_PHONE = "+49 89 5550123"


@pytest.fixture(params=[("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
async def bed(request: pytest.FixtureRequest) -> AsyncIterator[FastBed]:
    profile, occ = request.param
    testbed = await start_fast_testbed(espo_profile=profile, occ=occ, http_timeout=1.0)
    try:
        yield testbed
    finally:
        await testbed.close()


async def lost_create(bed: FastBed) -> tuple[dict, dict]:
    """A staff create whose POST lands in Advoware but whose answer never arrives."""
    bed.advo.faults.add(method="POST", path=ADVO_COLLECTION, delay=1.5, lose_answer=True, times=1)
    rec = bed.espo.seed(**NO_PHONE)
    await bed.flush()
    failed = bed.espo_record(rec["id"])
    assert failed["syncStatus"] == "failed" and not failed["betnr"], failed
    [landed] = [b for b in bed.advo.all() if b["ort"] == NO_PHONE["addressCity"]]
    return rec, landed


def phone(value: str | None) -> str | None:
    return espo_to_canonical({"lastName": "x", "phoneNumber": value})["phoneNumber"]


async def test_a_lost_create_edited_in_advoware_is_adopted_and_the_edit_kept(bed: FastBed):
    rec, landed = await lost_create(bed)
    bed.advo.edit(landed["betNr"], telefon=ADDED_PHONE)  # an Advoware user adds the phone number
    bed.clock.advance(3600)  # past the backoff
    await bed.sync_check()
    await bed.flush()
    after = bed.espo_record(rec["id"])
    assert [b["betNr"] for b in bed.advo.all()] == [landed["betNr"]], "a second party was created"
    assert after["betnr"] == landed["betNr"] and after["syncStatus"] == "clean", after
    assert phone(after["phoneNumber"]) == phone(ADDED_PHONE), "the Advoware user's edit must reach EspoCRM"
    assert phone(bed.advo_record(landed["betNr"])["telefon"]) == phone(ADDED_PHONE)
    bed.reset_calls()
    await bed.flush()
    await bed.sync_check()
    assert bed.writes() == 0, bed.calls()


async def test_both_sides_edited_after_a_lost_create(bed: FastBed):
    """The Advoware user adds the phone, a person moves the client to Potsdam in EspoCRM: one party,
    both edits on both sides."""
    rec, landed = await lost_create(bed)
    bed.advo.edit(landed["betNr"], telefon=ADDED_PHONE)
    bed.espo.user_edit(rec["id"], addressCity="Potsdam")
    bed.clock.advance(3600)
    await bed.flush()
    await bed.sync_check()
    await bed.flush()
    after = bed.espo_record(rec["id"])
    advo = bed.advo_record(landed["betNr"])
    assert [b["betNr"] for b in bed.advo.all()] == [landed["betNr"]], "a second party was created"
    assert after["syncStatus"] == "clean", after
    assert (after["addressCity"], advo["ort"]) == ("Potsdam", "Potsdam")
    assert phone(after["phoneNumber"]) == phone(advo["telefon"]) == phone(ADDED_PHONE)


async def test_a_namesake_created_by_a_person_before_the_attempt_is_not_adopted(bed: FastBed):
    """Only a party created within the attempt's window is ours: an older Advoware party with the same
    identity, edited meanwhile, is the create lookup's business (issue 11), never silently adopted."""
    real_clock = bed.advo.store.clock
    bed.advo.store.clock = lambda: real_clock() - timedelta(hours=3)
    older = bed.advo.seed(name=SAMPLE["lastName"], vorname=SAMPLE["firstName"], rechtsform=SAMPLE["rechtsform"],
                          geburtsdatum=SAMPLE["dateOfBirth"] + "T00:00:00", ort="Hamburg")
    bed.advo.store.clock = real_clock
    # This POST times out without landing: the attempt is noted, nothing of ours exists.
    bed.advo.faults.add(method="POST", path=ADVO_COLLECTION, delay=1.5, status=503, times=1)
    rec = bed.espo.seed(**NO_PHONE)
    await bed.flush()
    assert bed.espo_record(rec["id"])["syncStatus"] == "failed"
    bed.advo.edit(older["betNr"], telefon="+49 40 1")  # edited within the window, created before it
    bed.clock.advance(3600)
    await bed.sync_check()
    after = bed.espo_record(rec["id"])
    assert after["syncStatus"] == "clean" and after["betnr"] not in (None, older["betNr"]), after
    assert bed.advo_record(older["betNr"])["ort"] == "Hamburg"
