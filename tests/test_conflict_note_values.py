"""The conflict Note shows each side's value as that system holds it, not the form the sync compared
(a phone number's key ``+49221123456``, a salutation's Advoware value). A real sync run over HTTP against
both simulators, on a real Redis, on both EspoCRM profiles; the log still carries no value."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from simulators.espocrm.fields import STOCK_SALUTATIONS
from tests.conftest import SAMPLE
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]

ESPO_TYPED = "030 1234567"
ADVO_TYPED = "0221 / 12 34 56"


def _notes(tb: Testbed, espo_id: str) -> str:
    return "\n".join(n.get("post") or "" for n in tb.espo.notes_for(espo_id))


async def _synced(tb: Testbed, **overrides: Any) -> dict[str, Any]:
    rec = tb.espo.seed(**{**SAMPLE, **overrides})
    await tb.flush()
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"], rec["syncErrorMessage"]
    return rec


async def test_a_conflict_note_shows_what_people_typed_on_each_side(
        firm_both: Testbed, caplog: pytest.LogCaptureFixture) -> None:
    tb = firm_both
    tb.espo.set_phone_settings(international=False)  # EspoCRM keeps a national number as typed
    tb.espo.set_salutation_options(STOCK_SALUTATIONS)  # Mr./Mrs.: mapped to Advoware's Herr/Frau
    rec = await _synced(tb, salutationName="Mrs.", phoneNumber="+49 40 555555")
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
