"""The pure first-link decision and the lost-base fallback (issue 17 items 1 and 2)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.beteiligte_mapper import FIELDS
from domain.conflict_policy import ConflictPolicy
from domain.first_link import NoBase, decide_first_link, identity_differences, without_base

EMPTY = {f.espo: None for f in FIELDS}
POLICIES = [ConflictPolicy.uniform(s) for s in ("espocrm_wins", "advoware_wins", "newest_wins", "field_merge")]


def v(**values: Any) -> dict[str, str | None]:
    return {**EMPTY, "lastName": "Meier", "firstName": "Jan", **values}


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.for_group("stammdaten").strategy)
def test_an_empty_value_never_overwrites_one_whatever_the_strategy(policy: ConflictPolicy) -> None:
    espo = v(titel="Dr.", phoneNumber="0301", addressCity="Köln", dateOfBirth="1970-01-01")
    advo = v(titel="Prof.", emailAddress="jan@example.org", addressStreet="Weg 1", addressCity="Bonn")
    d = decide_first_link(espo, advo, policy=policy)
    assert d.to_espo.get("emailAddress") == "jan@example.org" and d.to_espo.get("addressStreet") == "Weg 1"
    assert d.to_advoware.get("phoneNumber") == "0301" and d.to_advoware.get("dateOfBirth") == "1970-01-01"
    assert None not in d.to_espo.values() and None not in d.to_advoware.values()
    # the two fields holding two values are conflicts, decided by the strategy
    assert {c.field for c in d.conflicts} == {"titel", "addressCity"}
    for c in d.conflicts:
        assert (c.field in d.to_espo) == (c.winner == "advoware")
        assert (c.field in d.to_advoware) == (c.winner == "espocrm")


def test_a_pair_already_equal_is_a_noop() -> None:
    d = decide_first_link(v(addressCity="Köln"), v(addressCity="Köln"), policy=POLICIES[0])
    assert (d.action, d.to_espo, d.to_advoware, d.conflicts) == ("noop", {}, {}, ())


RECORD = {"id": "e1", "advowareLastSync": "2026-12-01 10:00:00", "advowareRowId": "row-1",
          "modifiedById": "api", "syncStatus": "clean"}


@pytest.mark.parametrize(("record", "row", "relinked", "expected"), [
    (RECORD, "row-1", False, NoBase.ADVOWARE_UNCHANGED),
    (RECORD, "row-2", False, NoBase.ESPOCRM_UNCHANGED),  # our write was the last save: Advoware edited
    ({**RECORD, "modifiedById": "person"}, "row-2", False, NoBase.BOTH_MAY_HAVE_CHANGED),
    ({**RECORD, "modifiedById": "person"}, "row-1", False, NoBase.ADVOWARE_UNCHANGED),
    ({**RECORD, "syncStatus": "failed"}, "row-2", False, NoBase.BOTH_MAY_HAVE_CHANGED),  # an edit may be owed
    ({**RECORD, "advowareLastSync": None}, "row-1", False, NoBase.FIRST_LINK),  # never synced: typed betnr
    (RECORD, "row-1", True, NoBase.FIRST_LINK),  # another betnr than the stored link's
])
def test_without_base(record: dict[str, Any], row: str, relinked: bool, expected: NoBase) -> None:
    assert without_base(record, row, "api", relinked=relinked) == expected


def test_without_knowing_the_api_user_a_moved_row_may_be_changes_on_both_sides() -> None:
    assert without_base(RECORD, "row-2", None, relinked=False) == NoBase.BOTH_MAY_HAVE_CHANGED


def test_identity_differences_name_fields_never_values() -> None:
    espo = {"id": "e1", "lastName": "Tippfehler", "firstName": "Anton", "dateOfBirth": "1966-06-06",
            "addressCity": "München"}
    advo = {"betNr": 7, "name": "Zufall", "vorname": "Zora", "geburtsdatum": "1990-09-09T00:00:00",
            "ort": "Hamburg", "telefon": "040 1"}
    differing = identity_differences(espo, advo)
    assert differing is not None
    assert differing[:4] == ["lastName", "firstName", "dateOfBirth", "addressCity"] and "phoneNumber" in differing
    assert identity_differences({**espo, "lastName": "Zufall", "firstName": "Zora", "dateOfBirth": "1990-09-09"},
                                advo) is None
