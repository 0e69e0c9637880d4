"""The family-name variant keys (issue 11): two names one edit apart always share one, so the create's
lookup of first name + postcode + variant finds a typo without reading every namesake."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.match_keys import (
    KEY_VERSION,
    family_variants,
    squash,
    typed_one_off,
    weak_keys,
    weak_lookup_keys,
    within_one_edit,
)
from domain.match_party import Kind, Party, party_from_advoware, party_from_espo

# A small alphabet with the letters of folded umlauts and ß, so that edits, doubled letters and
# "ue"/"ss" sequences are frequent; a space for double names.
NAMES = st.text(alphabet="aesuoklm ", min_size=1, max_size=9)


@st.composite
def one_edit(draw: st.DrawFn) -> tuple[str, str]:
    """A name and the name after one substitution, insertion, deletion or swap of neighbours."""
    a = draw(NAMES)
    i = draw(st.integers(0, len(a) - 1))
    c = draw(st.sampled_from("aesuoklmx"))
    op = draw(st.sampled_from(["sub", "ins", "del", "swap"]))
    if op == "sub":
        b = a[:i] + c + a[i + 1:]
    elif op == "ins":
        b = a[:i] + c + a[i:]
    elif op == "del":
        b = a[:i] + a[i + 1:]
    else:
        b = a[:i] + a[i + 1:i + 2] + a[i] + a[i + 2:] if i + 1 < len(a) else a
    return a, b


@given(one_edit())
def test_one_edit_apart_always_share_a_variant(pair: tuple[str, str]) -> None:
    a, b = pair
    if not b or a == b:
        return  # an empty name is never indexed; an equal one shares the name itself (below)
    assert within_one_edit(a, b)  # the generator makes what within_one_edit calls one edit
    assert family_variants(a) & family_variants(b)


@given(NAMES, NAMES)
def test_whatever_within_one_edit_or_typed_one_off_accepts_shares_a_variant(a: str, b: str) -> None:
    if within_one_edit(a, b) or typed_one_off(a, b) or a == b:
        assert family_variants(a) & family_variants(b), (a, b)


def _person(family: str) -> Party:
    return Party("1", Kind.PERSON, family, family=family, first="anna", plz="10115")


@given(NAMES, NAMES)
def test_the_index_and_lookup_keys_meet_for_every_typed_one_off_pair(a: str, b: str) -> None:
    """The keys themselves (an index of one, the lookup of the other), not only the variant sets."""
    if a.strip() and b.strip() and (typed_one_off(a, b) or a == b):
        assert set(weak_lookup_keys(_person(a))) & set(weak_keys(_person(b))), (a, b)


@given(NAMES)
def test_the_variants_are_the_name_and_its_deletions(a: str) -> None:
    expected = {a, squash(a)} | {x[:i] + x[i + 1:] for x in (a, squash(a)) for i in range(len(x))}
    assert family_variants(a) == expected and len(family_variants(a)) <= 2 * (len(a) + 1)


def test_a_typo_with_the_same_first_name_and_postcode_shares_a_key_and_others_do_not() -> None:
    advo = party_from_advoware({"betNr": 1, "name": "Müller", "vorname": "Anna", "plz": "10115"})
    held = set(weak_keys(advo))

    def finds(**espo: str | None) -> bool:
        rec = {"id": "e1", "lastName": "Müler", "firstName": "Anna", "addressPostalCode": "10115", **espo}
        return bool(held & set(weak_lookup_keys(party_from_espo(rec))))

    assert finds() and finds(lastName="Mller") and finds(lastName="Mueller") and finds(lastName="Mülelr")
    assert not finds(addressPostalCode="10117")  # another postcode: no key in common
    assert not finds(firstName="Anne")
    assert not finds(lastName="Müllerin")  # two letters more: no variant in common
    # A key in common is a candidate, not yet a possible duplicate: "Mülerr" shares "muler" with
    # "Müller" (a deletion on each side) and is read, then dropped by possible_duplicate.
    assert finds(lastName="Mülerr") and not typed_one_off("muelerr", "mueller")
    assert not finds(addressPostalCode=None) and not finds(firstName=None)  # no key from an empty value


def test_an_index_of_version_2_is_looked_up_by_its_own_keys() -> None:
    espo = party_from_espo({"id": "e1", "lastName": "Müler", "firstName": "Anna", "addressPostalCode": "10115",
                            "emailAddress": "a@b.de"})
    plain = ["fe:anna|a@b.de", "np:mueler|anna|10115"]  # no variants
    assert weak_lookup_keys(espo, 2) == plain + [f"{k}#*" for k in plain]  # and as rows indexed since hold them
    assert len(weak_lookup_keys(espo, KEY_VERSION)) > 2 and weak_lookup_keys(espo, 1) == []


def _born(dob: str | None, pid: str = "1") -> Party:
    return Party(pid, Kind.PERSON, "müller", family="mueller", first="anna", plz="10115", dob=dob)


def test_a_record_with_a_birth_date_finds_only_namesakes_without_one_or_with_the_same() -> None:
    held = {dob: set(weak_keys(_born(dob))) for dob in (None, "1980-04-12", "1951-01-02")}
    with_dob = set(weak_lookup_keys(_born("1980-04-12", "e")))
    assert with_dob & held[None] and with_dob & held["1980-04-12"]
    assert not with_dob & held["1951-01-02"]  # another birth date: a contradiction, no candidate
    without = set(weak_lookup_keys(_born(None, "e")))
    assert all(without & keys for keys in held.values())  # no birth date: every namesake


def test_an_index_before_the_birth_date_marks_is_looked_up_as_it_was() -> None:
    """Version 3 indexed every person's keys as they are: a record with a birth date looks those up
    (every namesake, as before), and marked ``*`` the rows indexed since."""
    old = set(weak_keys(_born(None)))  # what version 3 wrote for any namesake
    since = set(weak_keys(_born("1951-01-02")))
    lookup = set(weak_lookup_keys(_born("1980-04-12", "e"), 3))
    assert lookup & old and lookup & since
