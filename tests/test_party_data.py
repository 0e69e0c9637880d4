"""The generator of realistic German parties: controlled overlap, near-duplicates, ground truth."""

from __future__ import annotations

import pytest

from domain.match_party import party_from_advoware, party_from_espo
from domain.matching import MatchIndex, Verdict, resolve
from simulators.party_data import generate


def test_sizes_overlap_and_seed_are_exact() -> None:
    sets = generate(7, advoware=2000, espocrm=1000, overlap=600)
    assert (len(sets.advoware), len(sets.espocrm), len(sets.truth)) == (2000, 1000, 600)
    assert generate(7, advoware=2000, espocrm=1000, overlap=600).espocrm == sets.espocrm
    assert len({e for e, _ in sets.truth}) == len({a for _, a in sets.truth}) == 600


def test_looks_like_a_german_firm() -> None:
    sets = generate(3, advoware=3000, espocrm=1500, overlap=900)
    names = " ".join(o["name"] for o in sets.advoware)
    for piece in ("ü", "ß", "GmbH & Co. KG", "e.K.", "UG (haftungsbeschränkt)", "-"):
        assert piece in names
    assert any(o.get("titel") == "Prof. Dr." for o in sets.advoware)
    assert any(str(o.get("registergericht", "")).startswith("Amtsgericht ") for o in sets.advoware)
    assert any("GmbH & Co KG" in r["lastName"] for r in sets.espocrm)
    for kind in ("person_typo", "person_swapped", "person_no_dob", "company_form_spelling", "advoware_twice"):
        assert sets.variants[kind] > 0, kind


def test_only_true_pairs_are_linked_by_the_rules() -> None:
    sets = generate(11, advoware=4000, espocrm=2000, overlap=1200)
    index = MatchIndex()
    for i, obj in enumerate(sets.advoware):
        index.add(party_from_advoware({**obj, "betNr": i}))
    found = [(str(j), c) for j, r in enumerate(sets.espocrm)
             for c in index.candidates(party_from_espo({**r, "id": str(j)}))]
    links = {(p.espo_ref, p.advo_ref) for p in resolve(found, {}) if p.verdict == Verdict.LINK}
    truth = {(str(e), str(a)) for e, a in sets.truth}
    assert links <= truth  # precision 100 %
    # 93 %, not 95 %: name + e-mail with one birth date missing (the no_dob copies) waits for review,
    # since a father and son of one name share a family mailbox (tests/test_hostile_match_rules.py)
    assert len(links) >= 0.93 * len(truth)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        generate(1, advoware=10, espocrm=5, overlap=6)
