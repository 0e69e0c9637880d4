"""Issue 17 item 9: ``match --apply`` (and a ``betnr`` typed by hand, which uses the same rules) never
links a namesake on the name alone: "Anna Schmidt", Köln, no birth date is not "Anna Schmidt", born
1980, Berlin. A name with one more equal identifying value still may be linked by a person."""

from __future__ import annotations

from typing import Any

import pytest

from domain.match_party import party_from_advoware, party_from_espo
from domain.matching import plausible
from onboarding.match_apply import Outcome, PairLinker, apply_pairs
from onboarding.match_file import Pair
from tests.testbed import Testbed

SCHMIDT_ADVO = {"name": "Schmidt", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
                "geburtsdatum": "1980-03-03T00:00:00", "plz": "10115", "ort": "Berlin"}
SCHMIDT_ESPO = {"salutationName": "Frau", "firstName": "Anna", "lastName": "Schmidt",
                "rechtsform": "natürliche Person", "addressPostalCode": "50667", "addressCity": "Köln"}


def _plausible(espo: dict[str, Any], advo: dict[str, Any]) -> bool:
    return plausible(party_from_espo({"id": "e1", **espo}), party_from_advoware({"betNr": 1, **advo}))


def test_a_namesake_without_a_birth_date_in_another_city_is_not_plausible() -> None:
    assert not _plausible(SCHMIDT_ESPO, SCHMIDT_ADVO)
    typo = {**SCHMIDT_ESPO, "lastName": "Schmitt"}
    assert not _plausible(typo, SCHMIDT_ADVO)  # a family name one letter off and nothing else: no


@pytest.mark.parametrize("same", [
    {"addressPostalCode": "10115"},  # person_name_plz
    {"dateOfBirth": "1980-03-03"},  # person_name_dob
    {"lastName": "Schmitt", "dateOfBirth": "1980-03-03"},  # typo, birth date equal
    {"lastName": "Schmitt", "addressPostalCode": "10115"},  # typo, postcode equal
    {"firstName": "Anna Maria", "dateOfBirth": "1980-03-03"},  # a hold's person_first_names_dob: staff link it
])
def test_a_name_with_one_more_equal_value_is_plausible(same: dict[str, Any]) -> None:
    assert _plausible({**SCHMIDT_ESPO, **same}, SCHMIDT_ADVO)


def test_a_company_needs_more_than_its_name() -> None:
    advo = {"name": "Meier GmbH", "anrede": "Firma", "rechtsform": "GmbH", "plz": "80331"}
    espo = {"lastName": "Meier GmbH", "salutationName": "Firma", "rechtsform": "GmbH", "addressPostalCode": "20095"}
    assert not _plausible(espo, advo)
    assert _plausible({**espo, "addressPostalCode": "80331"}, advo)


async def test_apply_does_not_link_the_namesake(tb: Testbed) -> None:
    berlin = tb.advo.seed(**SCHMIDT_ADVO)
    koeln = tb.espo.seed(**SCHMIDT_ESPO)
    tb.espo.take_webhook_events()
    pair = Pair(koeln["id"], int(berlin["betNr"]), "", 2)  # a kept row, added by hand
    for write in (False, True):
        linker = PairLinker(tb.services.espo, tb.services.advo, tb.services.store, write=write, clock=tb.clock)
        [result] = await apply_pairs(linker, [pair])
        assert result.outcome == Outcome.MISMATCH, result
    assert tb.espo_record(koeln["id"])["betnr"] is None
    assert await tb.services.store.get_link(koeln["id"]) is None


async def test_a_typed_betnr_of_the_namesake_writes_nothing(tb: Testbed) -> None:
    berlin = tb.advo.seed(**SCHMIDT_ADVO)
    before = tb.advo_record(berlin["betNr"])
    koeln = tb.espo.seed(**SCHMIDT_ESPO, betnr=berlin["betNr"])
    await tb.flush()
    await tb.flush()
    rec = tb.espo_record(koeln["id"])
    assert tb.advo_record(berlin["betNr"]) == before
    assert rec["syncStatus"] == "failed" and "dateOfBirth" in (rec["syncErrorMessage"] or ""), rec
    assert rec["addressCity"] == "Köln" and rec["dateOfBirth"] is None
