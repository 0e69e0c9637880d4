"""Issue 17 item 1: a ``betnr`` typed by hand (any first link without a stored base) is linked the way
``match --apply`` links a pair: the pair must satisfy the matching rules or nothing is written; an
empty value never overwrites a value on the other side; two different values go through the group's
strategy and a Note lists each overwritten value. Over HTTP against both simulators, on a real Redis,
on both EspoCRM profiles."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SAMPLE
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]

ANNA_ADVO = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": SAMPLE["emailAddress"], "telefon": "+49 30 999999",
             "strasse": "Lindenallee 7", "plz": "10117", "ort": "Berlin", "land": "Deutschland",
             "kurzname": "MUELLER"}
ZORA_ADVO = {"name": "Zufall", "vorname": "Zora", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1990-09-09T00:00:00", "email": "zora@example.org", "telefon": "+49 40 555555",
             "strasse": "Elbchaussee 9", "plz": "22763", "ort": "Hamburg", "land": "Deutschland"}
ANTON_ESPO = {"salutationName": "Herr", "firstName": "Anton", "lastName": "Tippfehler",
              "rechtsform": "natürliche Person", "dateOfBirth": "1966-06-06", "addressCity": "München"}
# What staff typed for Anna: her name and birth date, none of the contact data Advoware holds
ANNA_TYPED = {"salutationName": "Frau", "firstName": "Anna", "lastName": "Müller", "rechtsform": "natürliche Person",
              "dateOfBirth": "1980-04-12", "addressCity": "Berlin"}


async def _staff_save(tb: Testbed, **values: Any) -> dict[str, Any]:
    rec = tb.espo.seed(**values)
    await tb.flush()
    await tb.flush()
    return tb.espo_record(rec["id"])


async def test_a_typed_betnr_keeps_the_contact_data_only_advoware_has(firm_both: Testbed) -> None:
    anna = firm_both.advo.seed(**ANNA_ADVO)
    rec = await _staff_save(firm_both, **ANNA_TYPED, betnr=anna["betNr"])  # staff type her betNr
    advo = firm_both.advo_record(anna["betNr"])
    assert (advo["telefon"], advo["strasse"], advo["plz"], advo["email"]) == (
        ANNA_ADVO["telefon"], ANNA_ADVO["strasse"], ANNA_ADVO["plz"], ANNA_ADVO["email"]), advo
    assert advo["kurzname"] == "MUELLER"
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    assert rec["betnr"] == anna["betNr"]
    assert (rec["addressStreet"], rec["addressPostalCode"], rec["emailAddress"]) == (
        ANNA_ADVO["strasse"], ANNA_ADVO["plz"], ANNA_ADVO["email"]), rec
    assert rec["phoneNumber"] in ("+4930999999", "+49 30 999999")
    assert len(firm_both.advo.all()) == 1


async def test_a_mistyped_betnr_pointing_at_another_client_writes_nothing(firm_both: Testbed) -> None:
    zora = firm_both.advo.seed(**ZORA_ADVO)
    before = firm_both.advo_record(zora["betNr"])
    rec = await _staff_save(firm_both, **ANTON_ESPO, betnr=zora["betNr"])  # one digit off Anton's
    assert firm_both.advo_record(zora["betNr"]) == before, "Zora's Beteiligter was written"
    assert rec["syncStatus"] == "failed"
    assert (rec["firstName"], rec["lastName"], rec["dateOfBirth"], rec["addressCity"]) == (
        "Anton", "Tippfehler", "1966-06-06", "München"), rec
    assert rec["advowareRowId"] is None and rec["emailAddress"] is None
    message = rec["syncErrorMessage"] or ""
    assert rec["id"] in message and str(zora["betNr"]) in message, message
    for field in ("firstName", "lastName", "dateOfBirth"):
        assert field in message, message
    assert "Zora" not in message and "Anton" not in message  # ids and field names, no client data
    assert await firm_both.services.store.get_link(rec["id"]) is None
    assert await firm_both.services.store.betnr_owner(zora["betNr"]) in (None,)
    # fixing the typo links the right party
    anton = firm_both.advo.seed(name="Tippfehler", vorname="Anton", anrede="Herr", rechtsform="natürliche Person",
                                geburtsdatum="1966-06-06T00:00:00", ort="München", telefon="+49 89 111")
    firm_both.espo.user_edit(rec["id"], betnr=anton["betNr"])
    await firm_both.flush()
    await firm_both.flush()
    rec = firm_both.espo_record(rec["id"])
    assert (rec["syncStatus"], rec["betnr"]) == ("clean", anton["betNr"]), rec["syncErrorMessage"]
    assert firm_both.advo_record(anton["betNr"])["telefon"] == "+49 89 111"
    assert firm_both.advo_record(zora["betNr"]) == before


async def test_two_different_values_go_through_the_strategy_and_a_note_lists_them(firm_both: Testbed) -> None:
    anna = firm_both.advo.seed(**ANNA_ADVO)
    rec = await _staff_save(firm_both, **ANNA_TYPED, titel="Dr.", phoneNumber="+49 30 1111111", betnr=anna["betNr"])
    advo = firm_both.advo_record(anna["betNr"])
    # kontakt: field_merge, tiebreak espocrm_wins: EspoCRM's phone wins; titel only in EspoCRM goes over
    assert advo["telefon"] in ("+49 30 1111111", "+49301111111") and advo["titel"] == "Dr."
    assert advo["strasse"] == ANNA_ADVO["strasse"]  # only Advoware had it: kept, and brought over
    assert rec["syncStatus"] == "clean" and rec["addressStreet"] == ANNA_ADVO["strasse"]
    notes = "\n".join(n.get("post") or "" for n in firm_both.espo.notes_for(rec["id"]))
    assert "phoneNumber" in notes and "999999" in notes, notes  # the overwritten Advoware value
    assert f"Mit dem Advoware-Beteiligten {anna['betNr']} verknüpft" in notes, notes


async def test_a_betnr_changed_to_another_client_on_a_synced_record_writes_nothing(firm_both: Testbed) -> None:
    anna = firm_both.advo.seed(**ANNA_ADVO)
    rec = await _staff_save(firm_both, **ANNA_TYPED, betnr=anna["betNr"])
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    zora = firm_both.advo.seed(**ZORA_ADVO)
    before = firm_both.advo_record(zora["betNr"])
    firm_both.espo.user_edit(rec["id"], betnr=zora["betNr"])  # a slip: Zora's number
    await firm_both.flush()
    await firm_both.flush()
    rec = firm_both.espo_record(rec["id"])
    assert firm_both.advo_record(zora["betNr"]) == before, "Zora's Beteiligter was written"
    assert rec["syncStatus"] == "failed" and rec["firstName"] == "Anna", rec
    assert str(zora["betNr"]) in (rec["syncErrorMessage"] or "")
