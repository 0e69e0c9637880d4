"""Property tests of the pure sync decision (``domain.decision.decide``).

Inputs are built the way a real sync sees them: a "last synced" dict both sides agreed on, each side
derived from it with a few random edits (tiny alphabet incl. ``None`` so collisions happen), and an
Advoware ``rowId`` that moves whenever Advoware's mapped values moved (and sometimes without).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.beteiligte_mapper import FIELD_GROUP, FIELDS, GROUPS, Canonical
from domain.conflict_policy import STRATEGIES, TIEBREAKS, ConflictPolicy, GroupPolicy
from domain.decision import ADVO, ESPO, Base, Decision, decide, fingerprint, fingerprint_value
from domain.fingerprint_key import keyed

NAMES = [f.espo for f in FIELDS]
VALUE = st.sampled_from([None, "a", "b", "c"])
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
OLD_ROW, NEW_ROW = "row-old", "row-new"
SWAP_SIDE = {ESPO: ADVO, ADVO: ESPO}
SWAP_STRATEGY = {"espocrm_wins": "advoware_wins", "advoware_wins": "espocrm_wins",
                 "newest_wins": "newest_wins", "field_merge": "field_merge"}
PROPS = settings(max_examples=200, deadline=None)


@dataclass(frozen=True)
class Case:
    espo: Canonical
    advo: Canonical
    last: Canonical | None
    policy: ConflictPolicy
    advo_row_id: str
    espo_modified: datetime | None
    advo_modified: datetime | None

    @property
    def base(self) -> Base | None:
        if self.last is None:
            return None
        fp = fingerprint(self.last)
        return Base(espo=fp, advo=dict(fp), row_id=OLD_ROW)

    def run(self) -> Decision:
        return decide(self.espo, self.advo, self.base, policy=self.policy, linked=True,
                      advo_row_id=self.advo_row_id, espo_modified=self.espo_modified,
                      advo_modified=self.advo_modified)

    def changed(self, side: Canonical) -> set[str]:
        """Fields that moved since the base (every field differing from the other side without one)."""
        if self.last is None:
            return {f for f in NAMES if self.espo[f] != self.advo[f]}
        return {f for f in NAMES if side[f] != self.last[f]}


KEEP = "<keep>"
EDITS = st.lists(st.sampled_from([KEEP, KEEP, KEEP, None, "a", "b", "c"]), min_size=len(NAMES), max_size=len(NAMES))


def derived(draw: st.DrawFn, origin: Canonical) -> Canonical:
    """``origin`` with some fields edited (possibly to the same value)."""
    return {f: origin[f] if e == KEEP else e for f, e in zip(NAMES, draw(EDITS), strict=True)}


def group_policies(uniform: bool) -> st.SearchStrategy[ConflictPolicy]:
    one = st.builds(GroupPolicy, st.sampled_from(STRATEGIES), st.sampled_from(TIEBREAKS))
    if uniform:
        return one.map(lambda gp: ConflictPolicy({g: gp for g in GROUPS}))
    return st.tuples(*[one for _ in GROUPS]).map(lambda gps: ConflictPolicy(dict(zip(GROUPS, gps, strict=True))))


POLICY = st.one_of(group_policies(True), group_policies(False))
STAMP = st.integers(min_value=-5, max_value=5).map(lambda m: T0 + timedelta(minutes=m))


@st.composite
def cases(draw: st.DrawFn, *, with_base: bool | None = None, distinct_stamps: bool = False) -> Case:
    last: Canonical = dict(zip(NAMES, draw(st.lists(VALUE, min_size=len(NAMES), max_size=len(NAMES))), strict=True))
    espo, advo = derived(draw, last), derived(draw, last)
    has_base = draw(st.booleans()) if with_base is None else with_base
    # The rowId moves on every Advoware write: it must move when mapped values moved.
    row = NEW_ROW if advo != last or draw(st.booleans()) else OLD_ROW
    if distinct_stamps:
        e_t, a_t = draw(st.lists(STAMP, min_size=2, max_size=2, unique=True))
        stamps: tuple[datetime | None, datetime | None] = (e_t, a_t)
    else:
        stamps = (draw(st.none() | STAMP), draw(st.none() | STAMP))
    return Case(espo, advo, last if has_base else None, draw(POLICY), row, *stamps)


def apply(d: Decision, espo: Canonical, advo: Canonical) -> tuple[Canonical, Canonical]:
    return {**espo, **d.to_espo}, {**advo, **d.to_advoware}


def swapped_policy(p: ConflictPolicy) -> ConflictPolicy:
    return ConflictPolicy({g: GroupPolicy(SWAP_STRATEGY[p.for_group(g).strategy],
                                          SWAP_STRATEGY[p.for_group(g).tiebreak]) for g in GROUPS})


def conflict_keys(d: Decision, swap: bool = False) -> set[tuple[Any, ...]]:
    out = set()
    for c in d.conflicts:
        if swap:
            out.add((c.group, c.field, c.advo_value, c.espo_value, SWAP_SIDE[c.winner], SWAP_STRATEGY[c.strategy]))
        else:
            out.add((c.group, c.field, c.espo_value, c.advo_value, c.winner, c.strategy))
    return out


@PROPS
@given(cases(distinct_stamps=True))
def test_symmetry_swapping_sides_and_strategies_swaps_the_writes(c: Case) -> None:
    d = c.run()
    base = c.base
    mirrored_base = Base(espo=base.advo, advo=base.espo, row_id=OLD_ROW) if base else None
    # The mirrored "Advoware" side gets a moved rowId: its change set comes from the fingerprints,
    # which equals the fast path's answer here because the rowId only stays put when nothing moved.
    m = decide(c.advo, c.espo, mirrored_base, policy=swapped_policy(c.policy), linked=True,
               advo_row_id=NEW_ROW, espo_modified=c.advo_modified, advo_modified=c.espo_modified)
    assert m.action == d.action
    assert m.to_advoware == d.to_espo
    assert m.to_espo == d.to_advoware
    assert conflict_keys(m, swap=True) == conflict_keys(d)
    assert m.espo_changed == d.advo_changed and m.advo_changed == d.espo_changed


@PROPS
@given(cases())
def test_applying_the_writes_makes_both_sides_agree(c: Case) -> None:
    d = c.run()
    espo, advo = apply(d, c.espo, c.advo)
    changed = c.changed(c.espo) | c.changed(c.advo)
    assert {f for f in changed if espo[f] != advo[f]} == set()
    # Both sides agreed at the base, so untouched fields agree too: the pair is fully in sync.
    assert espo == advo
    assert d.action == ("update" if (d.to_advoware or d.to_espo) else "noop")
    assert set(d.to_advoware) | set(d.to_espo) <= set(NAMES)
    assert not set(d.to_advoware) & set(d.to_espo)


@PROPS
@given(cases(with_base=True))
def test_never_loses_a_change_it_did_not_report(c: Case) -> None:
    d = c.run()
    espo, advo = apply(d, c.espo, c.advo)
    e_changed, a_changed = c.changed(c.espo), c.changed(c.advo)
    conflicted = {(x.group, x.field) for x in d.conflicts}
    conflict_groups = {x.group for x in d.conflicts}
    for f in NAMES:
        group = FIELD_GROUP[f]
        for side, changed, other_changed, final in ((c.espo, e_changed, a_changed, espo),
                                                    (c.advo, a_changed, e_changed, advo)):
            if f not in changed:
                continue
            only_here = f not in other_changed
            if only_here and group not in conflict_groups:
                assert final[f] == side[f], f"{f} changed on one side only, silently overwritten"
            if final[f] != side[f]:
                assert (group, f) in conflicted, f"changed value of {f} overwritten without a conflict"
    for x in d.conflicts:
        assert x.espo_value == c.espo[x.field] and x.advo_value == c.advo[x.field]
        assert x.espo_value != x.advo_value
        winner_value = x.espo_value if x.winner == ESPO else x.advo_value
        assert espo[x.field] == advo[x.field] == winner_value


@PROPS
@given(cases(), st.booleans())
def test_deciding_again_after_the_writes_is_a_noop(c: Case, fast_path: bool) -> None:
    d = c.run()
    espo, advo = apply(d, c.espo, c.advo)
    row = NEW_ROW if d.to_advoware else c.advo_row_id
    new_base = Base(espo=fingerprint(espo), advo=fingerprint(advo), row_id=row)
    again = decide(espo, advo, new_base, policy=c.policy, linked=True,
                   advo_row_id=row if fast_path else "row-later", espo_modified=c.espo_modified,
                   advo_modified=c.advo_modified)
    assert again.action == "noop", again.summary()
    assert not again.to_advoware and not again.to_espo and not again.conflicts


@PROPS
@given(cases(), st.booleans())
def test_equal_sides_are_a_noop_whatever_the_base(c: Case, row_moved: bool) -> None:
    d = decide(c.espo, dict(c.espo), c.base, policy=c.policy, linked=True,
               advo_row_id=NEW_ROW if row_moved else OLD_ROW,
               espo_modified=c.espo_modified, advo_modified=c.advo_modified)
    assert d.action == "noop" and not d.to_advoware and not d.to_espo and not d.conflicts


@PROPS
@given(cases())
def test_unchanged_since_the_base_is_a_noop(c: Case) -> None:
    if c.last is None:
        return
    d = decide(c.last, dict(c.last), c.base, policy=c.policy, linked=True, advo_row_id=OLD_ROW,
               known_row_id=OLD_ROW, espo_modified=c.espo_modified, advo_modified=c.advo_modified)
    assert d.action == "noop" and not d.espo_changed and not d.advo_changed


@PROPS
@given(cases())
def test_not_linked_is_always_a_create_with_every_espo_value(c: Case) -> None:
    d = decide(c.espo, c.advo, c.base, policy=c.policy, linked=False, advo_row_id=c.advo_row_id)
    assert d.action == "create" and d.to_advoware == c.espo and not d.to_espo and d.writes_advoware


@PROPS
@given(cases())
def test_linked_but_missing_in_advoware(c: Case) -> None:
    d = decide(c.espo, None, c.base, policy=c.policy, linked=True)
    assert d.action == "advoware_missing" and not d.to_advoware and not d.to_espo


@PROPS
@given(cases(with_base=True))
def test_changes_on_one_side_only_flow_to_the_other_without_conflict(c: Case) -> None:
    """Only EspoCRM moved (Advoware's rowId unchanged): every change goes to Advoware, whatever the policy."""
    d = decide(c.espo, dict(c.last or {}), c.base, policy=c.policy, linked=True, advo_row_id=OLD_ROW,
               espo_modified=c.espo_modified, advo_modified=c.advo_modified)
    assert c.last is not None
    assert d.to_advoware == {f: c.espo[f] for f in NAMES if c.espo[f] != c.last[f]}
    assert not d.to_espo and not d.conflicts


@given(st.one_of(st.none(), st.text()))
def test_fingerprint_value_is_the_stored_form(value: str | None) -> None:
    """Links in Redis hold these fingerprints: the fast path must give exactly the installation's key
    applied to what every earlier version stored (SHA-256 of ``json.dumps``), for any text: umlauts,
    quotes, control characters, surrogates; so a base stored before the key is taken over by ``keyed``."""
    plain = hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]
    assert fingerprint_value(value) == keyed(plain) != plain
    assert fingerprint_value(value) == keyed(plain)  # and again, from the cache
