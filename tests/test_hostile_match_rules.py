"""Hostile tests of issue 11's matching rules (pure domain): each xfail is a bug found, not fixed."""

from __future__ import annotations

import unicodedata

from domain.match_party import party_from_advoware, party_from_espo
from domain.matching import AUTO, MatchIndex, Rule, Verdict, resolve, rule_for


def _espo(**values: object) -> dict[str, object]:
    return {"id": "e1", **values}


def _advo(**values: object) -> dict[str, object]:
    return {"betNr": 1001, **values}


def test_nfd_umlauts_match_nfc_umlauts() -> None:
    nfd = unicodedata.normalize("NFD", "Müller")
    espo = party_from_espo(_espo(lastName=nfd, firstName="Jürgen", dateOfBirth="1975-01-02"))
    advo = party_from_advoware(_advo(name="Müller", vorname=unicodedata.normalize("NFC", "Jürgen"),
                                     geburtsdatum="1975-01-02T00:00:00"))
    assert rule_for(espo, advo) == Rule.PERSON_NAME_DOB


def test_gmbh_and_gmbh_co_kg_are_never_linked_by_register() -> None:
    kg = party_from_espo(_espo(lastName="Weiß Bau GmbH & Co. KG", salutationName="Firma",
                               rechtsform="GmbH & Co. KG", handelsregisterNummer="12345",
                               registergericht="AG München"))
    gmbh = party_from_advoware(_advo(name="Weiß Bau Verwaltungs GmbH", anrede="Firma", rechtsform="GmbH",
                                     handelsRegisterNummer="12345", registergericht="Amtsgericht München"))
    assert rule_for(kg, gmbh) not in AUTO


def test_father_and_son_sharing_a_family_mailbox_are_not_auto_linked() -> None:
    index = MatchIndex()
    index.add(party_from_advoware(_advo(name="Müller", vorname="Hans", anrede="Herr",
                                        geburtsdatum="1950-03-03T00:00:00", email="familie.mueller@t-online.de")))
    son = party_from_espo(_espo(lastName="Müller", firstName="Hans", salutationName="Herr",
                                emailAddress="familie.mueller@t-online.de"))
    proposals = resolve([(son.ref, c) for c in index.candidates(son)], {})
    assert [p.verdict for p in proposals if p.verdict == Verdict.LINK] == []


def test_a_name_ending_in_the_letters_of_its_form_gets_the_form() -> None:
    espo = party_from_espo(_espo(lastName="Müller Verlag", salutationName="Firma", rechtsform="AG",
                                 addressPostalCode="80331"))
    advo = party_from_advoware(_advo(name="Müller Verlag AG", anrede="Firma", rechtsform="AG", plz="80331"))
    assert rule_for(espo, advo) == Rule.COMPANY_NAME_PLZ


def test_a_placeholder_birth_date_is_an_empty_value() -> None:
    munich = party_from_espo(_espo(lastName="Müller", firstName="Hans", dateOfBirth="0000-00-00",
                                   addressPostalCode="80331"))
    hamburg = party_from_advoware(_advo(name="Müller", vorname="Hans", geburtsdatum="00.00.0000", plz="20095"))
    assert rule_for(munich, hamburg) is None
