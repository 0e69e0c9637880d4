"""The review file of ``match`` and the first-link base: pure, no systems needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.beteiligte_mapper import FIELDS, Canonical
from domain.conflict_policy import load_policy
from domain.decision import Base, decide
from domain.first_link import fill_from_advoware, first_base
from domain.matching import Candidate, Rule, resolve
from onboarding.match import MatchReport
from onboarding.match_file import MatchFileError, Pair, read_pairs, write_report

E1, E2 = "a" * 17, "b" * 17


def _vals(**kw: str | None) -> Canonical:
    return {f.espo: kw.get(f.espo) for f in FIELDS}


def test_the_written_file_reads_back_as_its_kept_pairs(tmp_path: Path) -> None:
    found = [(E1, Candidate("101", Rule.PERSON_NAME_DOB, 0.99)), (E2, Candidate("102", Rule.PERSON_NAME_PLZ, 0.6))]
    report = MatchReport(resolve(found, {}), {E1: "Anna Müller", E2: "Ben Ott"}, {"101": "Anna Müller"})
    path = tmp_path / "match.csv"
    assert write_report(path, report) == 2
    assert read_pairs(path) == [Pair(E1, 101, "person_name_dob", 2)]


def test_an_operator_edited_file_with_semicolons_and_german_answers(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"\ufeffkeep;espo_id;betnr\nja;{E1};101\nnein;{E2};102\nx;{E2};103\nja;{E1};101\n",
                    encoding="utf-8")
    assert [(p.espo_id, p.betnr) for p in read_pairs(path)] == [(E1, 101), (E2, 103)]


@pytest.mark.parametrize(("body", "message"), [
    (f"keep,espo_id,betnr\nyes,{E1},101\nyes,{E1},102\n", "lines 2 and 3"),
    (f"keep,espo_id,betnr\nyes,{E1},101\nyes,{E2},101\n", "Beteiligter 101"),
    (f"keep,espo_id,betnr\nyes,{E1},zehn\n", "line 2: betnr"),
    ("keep,espo_id,betnr\nyes,../admin,5\n", "line 2"),
    (f"keep,id\nyes,{E1}\n", "columns betnr, espo_id missing"),
])
def test_a_file_that_cannot_be_trusted_is_refused_as_a_whole(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(MatchFileError, match=message):
        read_pairs(path)


def test_the_first_sync_after_linking_resolves_differences_by_the_policy() -> None:
    espo = _vals(lastName="Mueller", firstName="Anna", phoneNumber="+49301111", addressCity="Berlin")
    advo = _vals(lastName="Müller", firstName="Anna", dateOfBirth="1980-04-12", emailAddress="a@b.de",
                 addressCity="Berlin")
    fill = fill_from_advoware(espo, advo)
    assert fill == {"dateOfBirth": "1980-04-12", "emailAddress": "a@b.de"}
    espo = {**espo, **fill}  # what --apply wrote to EspoCRM
    espo_fp, advo_fp = first_base(espo, advo)
    d = decide(espo, advo, Base(espo_fp, advo_fp, "r1"), policy=load_policy(None), linked=True)
    assert d.to_advoware == {"lastName": "Mueller", "phoneNumber": "+49301111"}
    assert d.to_espo == {}
    assert [(c.field, c.winner) for c in d.conflicts] == [("lastName", "espocrm")]  # reported in a Note
    same = decide(advo, advo, Base(*first_base(advo, advo), "r1"), policy=load_policy(None), linked=True)
    assert not same.to_advoware and not same.to_espo  # a pair without differences writes nothing
