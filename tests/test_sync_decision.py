"""Table tests of the pure decision."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.beteiligte_mapper import FIELDS
from domain.conflict_policy import ConflictPolicy, GroupPolicy
from domain.decision import Base, decide, fingerprint

BASE_VALUES = {f.espo: None for f in FIELDS} | {
    "lastName": "Meier",
    "firstName": "Jan",
    "titel": None,
    "emailAddress": "jan@example.org",
    "phoneNumber": "030 1",
    "addressStreet": "Weg 1",
    "addressCity": "Berlin",
}
ROW = "row-1"
BASE = Base(espo=fingerprint(BASE_VALUES), advo=fingerprint(BASE_VALUES), row_id=ROW)
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
ESPO_WINS = ConflictPolicy.uniform("espocrm_wins")
ADVO_WINS = ConflictPolicy.uniform("advoware_wins")
NEWEST = ConflictPolicy.uniform("newest_wins")
MERGE = ConflictPolicy.uniform("field_merge")


def v(**changes):
    return {**BASE_VALUES, **changes}


def run(espo, advo, *, base=BASE, policy=ESPO_WINS, row=ROW, known=None, e_t=T0, a_t=T0, linked=True):
    return decide(espo, advo, base, policy=policy, linked=linked, advo_row_id=row, known_row_id=known,
                  espo_modified=e_t, advo_modified=a_t)


CASES = [
    # name, espo, advo, kwargs, action, to_advoware, to_espo, conflicted fields
    ("in sync", v(), v(), {}, "noop", {}, {}, []),
    ("espo changed", v(firstName="Jana"), v(), {}, "update", {"firstName": "Jana"}, {}, []),
    ("espo emptied a field", v(phoneNumber=None), v(), {}, "update", {"phoneNumber": None}, {}, []),
    ("advoware changed", v(), v(addressCity="Köln"), {"row": "row-2"}, "update", {}, {"addressCity": "Köln"}, []),
    ("advoware values moved from the base: fingerprints rule, not the rowId", v(), v(addressCity="Köln"), {},
     "update", {}, {"addressCity": "Köln"}, []),
    ("rowId moved, mapped values unchanged (unmapped edit)", v(), v(), {"row": "row-2"}, "noop", {}, {}, []),
    ("timestamp moved, rowId not: not a change", v(firstName="Jana"), v(),
     {"a_t": T0 + timedelta(hours=5)}, "update", {"firstName": "Jana"}, {}, []),
    ("both changed to the same values", v(titel="Dr."), v(titel="Dr."), {"row": "row-2"}, "noop", {}, {}, []),
    ("different groups changed on each side", v(firstName="Jana"), v(addressCity="Köln"), {"row": "row-2"},
     "update", {"firstName": "Jana"}, {"addressCity": "Köln"}, []),
    ("same group, espocrm_wins", v(firstName="Jana"), v(lastName="Maier"), {"row": "row-2"},
     "update", {"firstName": "Jana", "lastName": "Meier"}, {}, ["lastName"]),
    ("same group, advoware_wins", v(firstName="Jana"), v(lastName="Maier"),
     {"row": "row-2", "policy": ADVO_WINS}, "update", {}, {"firstName": "Jan", "lastName": "Maier"},
     ["firstName"]),
    ("same field, newest_wins, advoware newer", v(addressCity="Bonn"), v(addressCity="Köln"),
     {"row": "row-2", "policy": NEWEST, "a_t": T0 + timedelta(minutes=1)}, "update", {},
     {"addressCity": "Köln"}, ["addressCity"]),
    ("same field, newest_wins, espo newer", v(addressCity="Bonn"), v(addressCity="Köln"),
     {"row": "row-2", "policy": NEWEST, "e_t": T0 + timedelta(minutes=1)}, "update",
     {"addressCity": "Bonn"}, {}, ["addressCity"]),
    ("same field, newest_wins, tie: espo (master)", v(addressCity="Bonn"), v(addressCity="Köln"),
     {"row": "row-2", "policy": NEWEST}, "update", {"addressCity": "Bonn"}, {}, ["addressCity"]),
    ("field_merge, different fields of one group", v(addressStreet="Gasse 2"), v(addressCity="Köln"),
     {"row": "row-2", "policy": MERGE}, "update", {"addressStreet": "Gasse 2"}, {"addressCity": "Köln"}, []),
    ("field_merge, same field: tiebreak espocrm_wins", v(addressCity="Bonn"), v(addressCity="Köln"),
     {"row": "row-2", "policy": MERGE}, "update", {"addressCity": "Bonn"}, {}, ["addressCity"]),
    ("no base, rowId as recorded: espo's differences win without conflict", v(firstName="Jana"), v(),
     {"base": None, "known": ROW}, "update", {"firstName": "Jana"}, {}, []),
    ("no base, rowId moved: every difference is a conflict", v(firstName="Jana"), v(),
     {"base": None, "known": "row-0", "row": "row-2"}, "update", {"firstName": "Jana"}, {}, ["firstName"]),
    ("no base, nothing differs", v(), v(), {"base": None, "known": None, "row": "row-9"}, "noop", {}, {}, []),
    ("neither changed but they differ (normalised by a side): leave it", v(), v(titel="Dr."),
     {"base": Base(fingerprint(v()), fingerprint(v(titel="Dr.")), "row-2"), "row": "row-3"},
     "noop", {}, {}, []),
]


@pytest.mark.parametrize(("name", "espo", "advo", "kw", "action", "to_advo", "to_espo", "conflicts"), CASES,
                         ids=[c[0] for c in CASES])
def test_decision_table(name, espo, advo, kw, action, to_advo, to_espo, conflicts):
    d = run(espo, advo, **kw)
    assert d.action == action
    assert d.to_advoware == to_advo
    assert d.to_espo == to_espo
    assert sorted(c.field for c in d.conflicts) == sorted(conflicts)


def test_not_linked_creates_with_espo_values():
    d = run(v(), None, base=None, linked=False)
    assert d.action == "create"
    assert d.to_advoware == v()


def test_linked_but_gone_in_advoware():
    assert run(v(), None).action == "advoware_missing"


def test_conflict_records_both_values_and_winner():
    d = run(v(firstName="Jana"), v(lastName="Maier"), row="row-2")
    (c,) = d.conflicts
    assert (c.group, c.field, c.espo_value, c.advo_value, c.winner, c.strategy) == (
        "stammdaten", "lastName", "Meier", "Maier", "espocrm", "espocrm_wins")


def test_group_policies_apply_per_group():
    policy = ConflictPolicy({"stammdaten": GroupPolicy("espocrm_wins"), "adresse": GroupPolicy("advoware_wins"),
                             "kontakt": GroupPolicy("field_merge", "advoware_wins")})
    espo = v(firstName="Jana", addressCity="Bonn", phoneNumber="1")
    advo = v(lastName="Maier", addressCity="Köln", phoneNumber="2")
    d = run(espo, advo, row="row-2", policy=policy)
    assert d.to_advoware == {"firstName": "Jana", "lastName": "Meier"}
    assert d.to_espo == {"addressCity": "Köln", "phoneNumber": "2"}
    assert {c.field for c in d.conflicts} == {"lastName", "addressCity", "phoneNumber"}


def test_summary_names_fields_and_sides():
    d = run(v(firstName="Jana"), v(addressCity="Köln"), row="row-2")
    assert d.summary() == "update ->advoware:firstName ->espocrm:addressCity"
