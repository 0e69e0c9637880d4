"""The conflict Note shows each side's value as that system holds it, not the form the sync compared
(a phone number's key ``+49221123456``, a salutation's Advoware value). A real sync run over HTTP against
both simulators, on a real Redis, on both EspoCRM profiles; the log still carries no value."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.beteiligte_mapper import FIELDS
from simulators.espocrm.fields import STOCK_SALUTATIONS
from simulators.faults import FaultRule
from tests.conftest import synced_record
from tests.testbed import Testbed, start_testbed

pytestmark = [pytest.mark.redis]

ESPO_TYPED = "030 1234567"
ADVO_TYPED = "0221 / 12 34 56"


def _notes(tb: Testbed, espo_id: str) -> str:
    return "\n".join(n.get("post") or "" for n in tb.espo.notes_for(espo_id))


async def test_a_conflict_note_shows_what_people_typed_on_each_side(
        firm_both: Testbed, caplog: pytest.LogCaptureFixture) -> None:
    tb = firm_both
    tb.espo.set_phone_settings(international=False)  # EspoCRM keeps a national number as typed
    tb.espo.set_salutation_options(STOCK_SALUTATIONS)  # Mr./Mrs.: mapped to Advoware's Herr/Frau
    rec = await synced_record(tb, salutationName="Mrs.", phoneNumber="+49 40 555555")
    caplog.set_level(logging.INFO)
    tb.espo.user_edit(rec["id"], phoneNumber=ESPO_TYPED, salutationName="Mr.")
    tb.advo.edit(rec["betnr"], telefon=ADVO_TYPED, anrede="Divers")
    await tb.flush()
    await tb.flush()
    espo, advo = tb.espo_record(rec["id"]), tb.advo_record(rec["betnr"])
    assert espo["syncStatus"] == "clean", espo["syncErrorMessage"]
    # kontakt: field_merge, tiebreak espocrm_wins; stammdaten: espocrm_wins
    assert (espo["phoneNumber"], advo["telefon"], advo["anrede"]) == (ESPO_TYPED, ESPO_TYPED, "Herr"), advo
    notes = _notes(tb, rec["id"])
    assert "Sync-Konflikt" in notes, notes
    assert f"**phoneNumber** (kontakt): EspoCRM `{ESPO_TYPED}` / Advoware `{ADVO_TYPED}`" in notes, notes
    assert "**salutationName** (stammdaten): EspoCRM `Mr.` / Advoware `Divers`" in notes, notes
    assert "+49" not in notes, notes  # no compare key: neither side typed one
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "field=phoneNumber" in logged
    for digits in ("1234567", "12 34 56", "123456"):
        assert digits not in logged, logged


async def test_a_typed_betnr_note_shows_both_spellings(firm_both: Testbed) -> None:
    """A first link (a ``betnr`` typed by hand): two numbers, each as its system holds it."""
    tb = firm_both
    tb.espo.set_phone_settings(international=False)
    anna = tb.advo.seed(name="Müller", vorname="Anna", anrede="Frau", rechtsform="natürliche Person",
                        geburtsdatum="1980-04-12T00:00:00", telefon=ADVO_TYPED, ort="Berlin")
    rec = tb.espo.seed(salutationName="Frau", firstName="Anna", lastName="Müller", rechtsform="natürliche Person",
                       dateOfBirth="1980-04-12", addressCity="Berlin", phoneNumber=ESPO_TYPED, betnr=anna["betNr"])
    await tb.flush()
    await tb.flush()
    assert tb.espo_record(rec["id"])["syncStatus"] == "clean"
    notes = _notes(tb, rec["id"])
    assert f"Mit dem Advoware-Beteiligten {anna['betNr']} verknüpft" in notes, notes
    assert f"**phoneNumber** (kontakt): EspoCRM `{ESPO_TYPED}` / Advoware `{ADVO_TYPED}`" in notes, notes


def _person_saves_in_the_release(tb: Testbed, espo_id: str, occ: bool, **edit: Any) -> FaultRule:
    """A person saves ``edit`` in the instant the release writes (test_release_window_races' gaps)."""
    def person_saves() -> None:
        tb.espo.user_edit(espo_id, **edit)

    before = (lambda: tb.espo.between_check_and_write(person_saves)) if occ else person_saves
    return tb.espo.faults.add(FaultRule(method="PUT", path=r"/CBeteiligte/", skip=1, times=1, before=before))


async def test_a_save_put_back_after_the_release_meets_advoware_in_a_note_as_typed(firm_both: Testbed) -> None:
    """The release wrote Advoware's number over a person's save (audited: put back); the next pass
    decides the conflict, and its Note shows the person's spelling and Advoware's."""
    tb = firm_both
    occ = tb.espo_record(tb.espo.seed(lastName="Probe")["id"]).get("versionNumber") is not None
    tb.espo.set_phone_settings(international=False)
    tb.espo.set_audited([f.espo for f in FIELDS])
    rec = await synced_record(tb, phoneNumber="+49 40 555555")
    tb.advo.edit(rec["betnr"], telefon=ADVO_TYPED)
    rule = _person_saves_in_the_release(tb, rec["id"], occ, phoneNumber=ESPO_TYPED)
    await tb.services.sync.sync(rec["id"], "webhook_update")
    assert rule.times == 0, "the person's save was never made"
    tb.espo.faults.clear()
    await tb.flush()
    await tb.sync_check()
    espo, advo = tb.espo_record(rec["id"]), tb.advo_record(rec["betnr"])
    assert (espo["phoneNumber"], advo["telefon"], espo["syncStatus"]) == (ESPO_TYPED, ESPO_TYPED, "clean"), espo
    notes = _notes(tb, rec["id"])
    assert f"**phoneNumber** (kontakt): EspoCRM `{ESPO_TYPED}` / Advoware `{ADVO_TYPED}`" in notes, notes


@pytest.mark.parametrize("profile", ["8", "9"])
async def test_an_unseen_save_note_shows_the_number_as_espocrm_stored_it(real_redis_url: str, profile: str) -> None:
    """Optimistic concurrency on, fields not audited: a save in the version gap is reported with the
    values now in EspoCRM, as EspoCRM stored them (E.164 with the setting on), not as they were sent."""
    await Redis.from_url(real_redis_url).flushdb()
    tb = await start_testbed(redis_url=real_redis_url, espo_profile=profile, occ=True)
    try:
        tb.espo.set_phone_settings(international=True)
        rec = await synced_record(tb)
        tb.advo.edit(rec["betnr"], telefon="+49 30 7654321")
        _person_saves_in_the_release(tb, rec["id"], True, addressCity="Staffstadt")
        await tb.services.sync.sync(rec["id"], "webhook_update")
        assert tb.espo_record(rec["id"])["phoneNumber"] == "+49307654321"
        notes = _notes(tb, rec["id"])
        assert "**phoneNumber**: jetzt `+49307654321` (aus Advoware)" in notes, notes
    finally:
        await tb.close()


async def test_a_failed_put_back_names_our_value_as_espocrm_stored_it(firm_both: Testbed) -> None:
    """Putting the person's save back fails: the Note names their value and ours as EspoCRM holds them
    (``+49307654321`` for the ``+49 30 7654321`` sent with "International phone numbers" on)."""
    tb = firm_both
    occ = tb.espo_record(tb.espo.seed(lastName="Probe")["id"]).get("versionNumber") is not None
    tb.espo.set_phone_settings(international=True)
    tb.espo.set_audited([f.espo for f in FIELDS])
    rec = await synced_record(tb, phoneNumber="+49 40 555555")
    tb.advo.edit(rec["betnr"], telefon="+49 30 7654321")
    rule = _person_saves_in_the_release(tb, rec["id"], occ, phoneNumber="+49 89 111222")
    # the put back: the first rule that matches a request takes it, so this one counts the mark and then
    # meets the put back (the release is the person's rule's)
    tb.espo.faults.add(FaultRule(method="PUT", path=r"/CBeteiligte/", skip=1, times=1, status=400))
    await tb.services.sync.sync(rec["id"], "webhook_update")
    assert rule.times == 0, "the person's save was never made"
    tb.espo.faults.clear()
    notes = _notes(tb, rec["id"])
    assert "**phoneNumber**: gespeichert `+4989111222`, vom Abgleich überschrieben mit `+49307654321`" in notes, notes
