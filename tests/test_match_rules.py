"""The pure matching rules (issue 11): normalisation, every rule, empty values, ambiguity."""

from __future__ import annotations

from typing import Any

import pytest

from domain import normalize as n
from domain.match_keys import strong_keys, weak_keys, weak_lookup_keys, within_one_edit
from domain.match_party import Kind, party_from_advoware, party_from_espo
from domain.matching import AUTO, MatchIndex, Rule, Verdict, possible_duplicate, resolve, rule_for

ANNA_ADVO = {"betNr": 101, "name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": "anna.mueller@web.de", "plz": "10115"}
ANNA_ESPO = {"id": "e1", "lastName": "MUELLER ", "firstName": "Prof. Dr. Anna", "salutationName": "Frau",
             "dateOfBirth": "1980-04-12", "emailAddress": "Anna.Mueller@web.de", "addressPostalCode": "10115"}
FIRMA_ADVO = {"betNr": 201, "name": "Bau Weiß GmbH & Co. KG", "anrede": "Firma", "rechtsform": "GmbH & Co. KG",
              "handelsRegisterNummer": "HRA 12345", "registergericht": "Amtsgericht München", "plz": "80331"}
FIRMA_ESPO = {"id": "e2", "lastName": "Bau Weiss GmbH & Co KG", "salutationName": "Firma",
              "rechtsform": "GmbH & Co. KG", "handelsregisterNummer": "HRA12345",
              "registergericht": "AG München", "addressPostalCode": "80331"}


def _rule(espo: dict[str, Any], advo: dict[str, Any]) -> Rule | None:
    return rule_for(party_from_espo(espo), party_from_advoware(advo))


@pytest.mark.parametrize(("raw", "folded"), [
    ("Müller", "mueller"), ("MUELLER", "mueller"), ("  Weiß-Großkopf  ", "weiss grosskopf"),
    ("Yılmaz", "yilmaz"), ("José", "jose"), ("", None), ("  ", None), ("--", None), (None, None),
])
def test_fold_umlauts_case_whitespace(raw: Any, folded: str | None) -> None:
    assert n.fold(raw) == folded


@pytest.mark.parametrize(("a", "b"), [
    ("Bau GmbH & Co. KG", "Bau GmbH & Co KG"), ("Bau GmbH & Co. KG", "Bau GmbH u. Co. KG"),
    ("Maier e.K.", "Maier e. K."), ("Schulz UG (haftungsbeschränkt)", "Schulz UG"),
    ("Kraft AG", "Kraft Aktiengesellschaft"), ("Holz Meier Gmbh", "Holz Meier GmbH"),
])
def test_company_forms_are_spelt_one_way(a: str, b: str) -> None:
    assert n.company_name(a) == n.company_name(b)


def test_company_form_from_rechtsform_and_different_forms_differ() -> None:
    assert n.company_name("Meier", "GmbH") == n.company_name("Meier GmbH")
    assert n.company_name("Meier GmbH") != n.company_name("Meier AG")


def test_titles_registers_courts_dates() -> None:
    assert n.person_name("Prof. Dr. Anna") == "anna"
    assert n.person_name("Dr.") is None
    assert n.register_number("HR B 012345") == n.register_number("HRB12345") == "HRB12345"
    assert n.register_number("HRB") is None
    assert n.court("Amtsgericht München") == n.court("AG München") == "muenchen"
    assert n.birth_date("1980-04-12T00:00:00") == n.birth_date("12.4.1980") == "1980-04-12"
    assert n.birth_date("gestern") is None
    assert n.postcode("D-80331") == "80331"
    assert n.postcode("A-1010") == "1010"  # Vienna: four digits are a postcode
    assert n.postcode("00000") is None and n.postcode("99999") is None and n.postcode("0") is None  # placeholders
    assert n.email("kein-at") is None


def test_person_name_and_birth_date_across_spellings() -> None:
    assert _rule(ANNA_ESPO, ANNA_ADVO) == Rule.PERSON_NAME_DOB


def test_company_register_and_court_across_spellings() -> None:
    assert _rule(FIRMA_ESPO, FIRMA_ADVO) == Rule.COMPANY_REGISTER


def test_company_name_and_postcode_without_register() -> None:
    espo = {**FIRMA_ESPO, "handelsregisterNummer": None, "registergericht": None}
    assert _rule(espo, FIRMA_ADVO) == Rule.COMPANY_NAME_PLZ
    assert _rule({**espo, "addressPostalCode": "80333"}, FIRMA_ADVO) is None


def test_two_register_numbers_never_match_even_with_the_same_name() -> None:
    assert _rule({**FIRMA_ESPO, "handelsregisterNummer": "HRA 99"}, FIRMA_ADVO) is None


def test_swapped_names_typo_and_missing_birth_date() -> None:
    swapped = {**ANNA_ESPO, "firstName": "Müller", "lastName": "Anna"}
    assert _rule(swapped, ANNA_ADVO) == Rule.PERSON_SWAPPED_DOB
    assert _rule({**ANNA_ESPO, "lastName": "Müler"}, ANNA_ADVO) == Rule.PERSON_TYPO_DOB_EMAIL
    assert _rule({**ANNA_ESPO, "dateOfBirth": None}, ANNA_ADVO) == Rule.PERSON_NAME_EMAIL
    no_mail = {**ANNA_ESPO, "dateOfBirth": None, "emailAddress": None}
    assert _rule(no_mail, ANNA_ADVO) == Rule.PERSON_NAME_PLZ  # weak: waits for a person


def test_different_birth_dates_never_match_whatever_else_agrees() -> None:
    assert _rule({**ANNA_ESPO, "dateOfBirth": "1980-04-13"}, ANNA_ADVO) is None


def test_email_alone_never_matches() -> None:
    other = {"id": "e9", "lastName": "Schmidt", "firstName": "Eva", "emailAddress": "anna.mueller@web.de"}
    assert _rule(other, ANNA_ADVO) is None


def test_a_person_never_matches_a_company() -> None:
    firm = {"id": "e3", "lastName": "Müller", "salutationName": "Firma", "rechtsform": "GmbH",
            "addressPostalCode": "10115"}
    assert party_from_espo(firm).kind == Kind.COMPANY
    assert _rule(firm, ANNA_ADVO) is None


@pytest.mark.parametrize("field", ["lastName", "firstName"])
def test_empty_values_never_match(field: str) -> None:
    empty_espo = {"id": "e4", field: "  ", "lastName": "", "firstName": "", "dateOfBirth": None}
    empty_advo = {"betNr": 7, "name": "", "vorname": None, "geburtsdatum": None}
    assert _rule(empty_espo, empty_advo) is None
    bare_firms = ({"id": "e5", "lastName": "X GmbH", "addressPostalCode": ""}, {"betNr": 8, "name": "X GmbH"})
    assert _rule(*bare_firms) is None
    assert strong_keys(party_from_espo(empty_espo)) == []
    index = MatchIndex()
    index.add(party_from_advoware(empty_advo))
    index.add(party_from_advoware(bare_firms[1]))
    assert index.candidates(party_from_espo(empty_espo)) == []
    assert index.candidates(party_from_espo(bare_firms[0])) == []


def test_within_one_edit() -> None:
    assert within_one_edit("mueller", "muller")
    assert within_one_edit("schmidt", "schmdit")
    assert within_one_edit("weber", "wever")
    assert not within_one_edit("weber", "weber")
    assert not within_one_edit("weber", "webbers")


def _match(espo: list[dict[str, Any]], advo: list[dict[str, Any]], linked: dict[str, str] | None = None):
    index = MatchIndex()
    for obj in advo:
        index.add(party_from_advoware(obj))
    found = [(str(r["id"]), c) for r in espo for c in index.candidates(party_from_espo(r))]
    return resolve(found, linked or {})


def test_a_unique_pair_is_linked_with_rule_and_confidence() -> None:
    (p,) = _match([ANNA_ESPO], [ANNA_ADVO])
    assert (p.espo_ref, p.advo_ref, p.rule, p.verdict) == ("e1", "101", Rule.PERSON_NAME_DOB, Verdict.LINK)
    assert 0.99 <= p.confidence <= 1.0


def test_a_record_matching_two_beteiligte_is_ambiguous_never_linked() -> None:
    twice = {**ANNA_ADVO, "betNr": 102, "email": None}
    props = _match([ANNA_ESPO], [ANNA_ADVO, twice])
    assert {p.verdict for p in props} == {Verdict.AMBIGUOUS}
    assert {p.advo_ref for p in props} == {"101", "102"}


def test_two_records_matching_one_beteiligter_are_ambiguous() -> None:
    props = _match([ANNA_ESPO, {**ANNA_ESPO, "id": "e7"}], [ANNA_ADVO])
    assert [p.verdict for p in props] == [Verdict.AMBIGUOUS, Verdict.AMBIGUOUS]


def test_a_weak_namesake_does_not_block_a_strong_match() -> None:
    namesake = {**ANNA_ADVO, "betNr": 103, "geburtsdatum": None, "email": None}
    props = {p.advo_ref: p for p in _match([ANNA_ESPO], [ANNA_ADVO, namesake])}
    assert props["101"].verdict == Verdict.LINK
    assert props["103"].verdict == Verdict.WEAKER


def test_two_weak_candidates_are_ambiguous_and_one_weak_waits_for_review() -> None:
    espo = {**ANNA_ESPO, "dateOfBirth": None, "emailAddress": None}
    one = _match([espo], [ANNA_ADVO])
    assert [p.verdict for p in one] == [Verdict.REVIEW]
    two = _match([espo], [ANNA_ADVO, {**ANNA_ADVO, "betNr": 104, "geburtsdatum": "1990-01-01T00:00:00"}])
    assert {p.verdict for p in two} == {Verdict.AMBIGUOUS}


def test_a_beteiligter_linked_to_another_record_is_never_proposed_for_linking() -> None:
    (p,) = _match([ANNA_ESPO], [ANNA_ADVO], linked={"101": "e0"})
    assert p.verdict == Verdict.LINKED_ELSEWHERE


# -- possible duplicates: what holds a create for a person (issue 11) ----------------------------------
def _possible(espo: dict[str, Any], advo: dict[str, Any]) -> Rule | None:
    return possible_duplicate(party_from_espo(espo), party_from_advoware(advo))


def test_weak_rules_and_a_typo_with_the_same_email_are_possible_duplicates() -> None:
    no_dob = {**ANNA_ESPO, "dateOfBirth": None, "addressPostalCode": None}
    assert _possible(no_dob, ANNA_ADVO) == Rule.PERSON_NAME_EMAIL
    assert _possible({**no_dob, "emailAddress": None, "addressPostalCode": "10115"}, ANNA_ADVO) == Rule.PERSON_NAME_PLZ
    typo = {**no_dob, "lastName": "Müler"}
    assert _possible(typo, ANNA_ADVO) == Rule.PERSON_TYPO_EMAIL
    assert _rule(typo, ANNA_ADVO) is None  # never a rule of match: only a create waits for it
    assert Rule.PERSON_TYPO_EMAIL not in AUTO
    assert _possible(ANNA_ESPO, ANNA_ADVO) == Rule.PERSON_NAME_DOB  # a strong match is one too
    for typed in ("Mller", "Mlüler", "Muller"):  # the ü dropped or moved: one letter as typed
        assert _possible({**no_dob, "lastName": typed}, ANNA_ADVO) == Rule.PERSON_TYPO_EMAIL, typed


def test_a_typo_with_the_same_first_name_and_postcode_is_a_possible_duplicate() -> None:
    bare = {**ANNA_ESPO, "lastName": "Müler", "dateOfBirth": None, "emailAddress": None}  # postcode 10115
    assert _possible(bare, ANNA_ADVO) == Rule.PERSON_TYPO_PLZ and _rule(bare, ANNA_ADVO) is None
    assert Rule.PERSON_TYPO_PLZ not in AUTO
    assert _possible({**bare, "lastName": "Mller"}, ANNA_ADVO) == Rule.PERSON_TYPO_PLZ  # the ü dropped
    for change in ({"addressPostalCode": "10117"}, {"lastName": "Müllerova"}, {"firstName": "Anne"},
                   {"dateOfBirth": "1981-04-12"}, {"addressPostalCode": None}):
        assert _possible({**bare, **change}, ANNA_ADVO) is None, change


def test_a_second_first_name_with_family_name_and_birth_date_is_a_possible_duplicate() -> None:
    for first in ("Anna Maria", "Anna-Maria", "Maria Anna"):  # a second first name, before or after
        rec = {**ANNA_ESPO, "firstName": first}
        assert _possible(rec, ANNA_ADVO) == Rule.PERSON_FIRST_NAMES_DOB and _rule(rec, ANNA_ADVO) is None, first
    assert Rule.PERSON_FIRST_NAMES_DOB not in AUTO  # never linked: a person decides
    for change in ({"dateOfBirth": "1981-04-12"}, {"dateOfBirth": None}, {"lastName": "Meier"},
                   {"firstName": "Marianne"}):
        assert _possible({**ANNA_ESPO, "firstName": "Anna Maria", **change}, ANNA_ADVO) is None, change
    espo = party_from_espo({**ANNA_ESPO, "firstName": "Anna Maria"})
    advo = party_from_advoware(ANNA_ADVO)
    assert set(weak_lookup_keys(espo)) & set(weak_keys(advo))  # the create finds her in the index
    assert not set(weak_lookup_keys(espo, version=4)) & {k for k in weak_keys(advo) if k.startswith("fb:")}


@pytest.mark.parametrize("change", [
    {"dateOfBirth": "1981-04-12"},  # a contradiction: another person
    {"lastName": "Müllerova"},  # two letters off
    {"lastName": "Mlleur"},  # two letters off as typed
    {"firstName": "Anne", "lastName": "Müler"},  # typo in the family name and another first name
    {"lastName": "Müler", "emailAddress": "anna@other.de"},  # typo without the e-mail to support it
    {"salutationName": "Firma", "lastName": "Müller GmbH", "firstName": None},  # a company
])
def test_what_is_not_a_possible_duplicate(change: dict[str, Any]) -> None:
    espo = {**ANNA_ESPO, "dateOfBirth": None, "addressPostalCode": None, **change}
    assert _possible(espo, ANNA_ADVO) is None


def test_empty_values_make_no_weak_key_and_no_possible_duplicate() -> None:
    bare_espo = {"id": "e9", "lastName": "Müller", "firstName": " ", "emailAddress": "", "addressPostalCode": None}
    bare_advo = {"betNr": 9, "name": "Müller", "vorname": "", "email": None, "plz": ""}
    assert weak_keys(party_from_espo(bare_espo)) == [] and weak_lookup_keys(party_from_espo(bare_espo)) == []
    assert _possible(bare_espo, bare_advo) is None
    no_first = {"id": "e9", "lastName": "Müller", "emailAddress": "a@b.de"}
    assert _possible(no_first, {"betNr": 9, "name": "Mueller", "email": "a@b.de"}) is None
    assert weak_keys(party_from_advoware(FIRMA_ADVO)) == []  # companies: the strong rules only


def test_weak_lookup_keys_find_what_the_index_holds() -> None:
    advo = party_from_advoware(ANNA_ADVO)
    held = set(strong_keys(advo) + weak_keys(advo))
    for espo in ({**ANNA_ESPO, "dateOfBirth": None}, {**ANNA_ESPO, "lastName": "Müler", "dateOfBirth": None},
                 {**ANNA_ESPO, "lastName": "Anna", "firstName": "Müller"}):
        assert held & set(weak_lookup_keys(party_from_espo(espo))), espo
