"""A phone number from Advoware that EspoCRM refuses for good (its validator, its "International phone
numbers" setting unchanged) fails the record with one readable line naming the field and what to do,
never the number; nothing of the refused write lands in EspoCRM, and once the number is corrected in
Advoware the next sync is clean. Over HTTP against both simulators, on a real Redis, both EspoCRM profiles."""

from __future__ import annotations

import logging

import pytest

from onboarding.match import scan
from tests.conftest import SAMPLE, synced_record
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]

MAPPED = ("salutationName", "firstName", "lastName", "titel", "dateOfBirth", "emailAddress", "phoneNumber",
          "addressStreet", "addressPostalCode", "addressCity", "addressCountry")
ON = ("EspoCRM refuses the phone number of Advoware's telefon in phoneNumber as invalid ('International phone "
      "numbers' is on: digits with the area code, no words): correct it in Advoware - no retry until the record "
      "changes")
TOO_LONG = ("EspoCRM refuses the phone number of Advoware's telefon in phoneNumber as too long (at most 36 "
            "characters): correct it in Advoware - no retry until the record changes")


@pytest.mark.parametrize(("international", "refused", "message"), [
    (True, "0171 9876543 mobil", ON),  # letters: no international form, EspoCRM cannot parse it
    (True, "+49 1", ON),  # too short to be a possible number
    (False, "+49 30 9876543 0000000000000000000000", TOO_LONG),
])
async def test_a_number_espocrm_refuses_fails_readably_and_the_corrected_one_syncs(
        firm_both: Testbed, caplog: pytest.LogCaptureFixture, international: bool, refused: str, message: str) -> None:
    tb = firm_both
    tb.espo.set_phone_settings(international=international)
    rec = await synced_record(tb)
    failures = tb.services.sync.metrics.registry.get_sample_value("beteiligte_sync_failures_total",
                                                                   {"kind": "fatal"}) or 0.0
    caplog.set_level(logging.INFO)
    tb.advo.edit(rec["betnr"], telefon=refused, ort="Potsdam")  # and a value that is fine
    await tb.sync_check()
    await tb.flush()
    espo = tb.espo_record(rec["id"])
    assert (espo["syncStatus"], espo["syncErrorMessage"]) == ("failed", message), espo
    assert {f: espo[f] for f in MAPPED} == {f: rec[f] for f in MAPPED}, "the refused write changed the record"
    advo = tb.advo_record(rec["betnr"])
    assert (advo["telefon"], advo["ort"], advo["name"]) == (refused, "Potsdam", SAMPLE["lastName"]), advo
    assert tb.services.sync.metrics.registry.get_sample_value(
        "beteiligte_sync_failures_total", {"kind": "fatal"}) == failures + 1
    failed = [r.getMessage() for r in caplog.records if "decision=failed:fatal" in r.getMessage()]
    assert len(failed) == 1 and f"espo_id={rec['id']}" in failed[0] and f"betnr={rec['betnr']}" in failed[0], failed
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "9876543" not in logged and refused not in logged, logged

    tb.advo.edit(rec["betnr"], telefon="0171 9876543")  # corrected in Advoware
    await tb.sync_check()
    await tb.flush()
    espo = tb.espo_record(rec["id"])
    assert (espo["syncStatus"], espo["syncErrorMessage"], espo["addressCity"]) == ("clean", None, "Potsdam"), espo
    assert espo["phoneNumber"] == ("+491719876543" if international else "0171 9876543"), espo
    assert tb.advo_record(rec["betnr"])["telefon"] == "0171 9876543"


async def test_a_create_that_finds_its_party_links_it_and_fails_only_on_the_refused_number(
        firm_both: Testbed, caplog: pytest.LogCaptureFixture) -> None:
    """The create path: staff enter a party Advoware has, with a number there EspoCRM refuses. The pair is
    linked (no duplicate), the other values only Advoware has are filled in, the number fails the record
    readably, and once corrected in Advoware the sync check brings it over."""
    tb = firm_both
    tb.espo.set_phone_settings(international=True)
    await scan(tb.services.espo, tb.services.advo, tb.services.store)  # the match index (beteiligte-sync match)
    anna = tb.advo.seed(name="Müller", vorname="Anna", anrede="Frau", rechtsform="natürliche Person",
                        geburtsdatum="1980-04-12T00:00:00", telefon="0171 9876543 mobil", strasse="Lindenallee 7",
                        plz="10117", ort="Berlin")
    caplog.set_level(logging.INFO)
    rec = tb.espo.seed(**{**SAMPLE, "phoneNumber": None, "addressStreet": None, "addressPostalCode": None})
    await tb.flush()
    await tb.flush()
    espo = tb.espo_record(rec["id"])
    failed = [r.getMessage() for r in caplog.records if "decision=failed:fatal" in r.getMessage()]
    assert len(failed) == 1 and f"espo_id={rec['id']}" in failed[0] and f"betnr={anna['betNr']}" in failed[0], failed
    assert "9876543" not in "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert len(tb.advo.all()) == 1, "a duplicate was created"
    assert (espo["syncStatus"], espo["syncErrorMessage"]) == ("failed", ON), espo
    assert (espo["phoneNumber"], espo["addressStreet"], espo["addressPostalCode"]) == (None, "Lindenallee 7", "10117")
    assert tb.advo_record(anna["betNr"])["telefon"] == "0171 9876543 mobil"

    tb.advo.edit(anna["betNr"], telefon="0171 9876543")  # corrected in Advoware
    await tb.sync_check()
    await tb.flush()
    espo = tb.espo_record(rec["id"])
    assert (espo["syncStatus"], espo["betnr"], espo["phoneNumber"]) == ("clean", anna["betNr"], "+491719876543"), espo
    assert len(tb.advo.all()) == 1
