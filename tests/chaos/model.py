"""The expected-value model: what people did to a record since its last convergence point, and
which values each field may hold once both sides agree (:func:`allowed_values`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.conflict_policy import ConflictPolicy
from tests.chaos.contract import ADVO_UNMAPPED, FIELD_GROUP, GROUP_FIELDS, Value


@dataclass
class RecordModel:
    """What people did to one record since its last convergence point (``cp``)."""

    espo_id: str
    tag: str
    cp: dict[str, Value]  # canonical mapped values at the last convergence point (creation values before)
    espo_edits: dict[str, list[Value]] = field(default_factory=dict)
    advo_edits: dict[str, list[Value]] = field(default_factory=dict)
    # per field group: the phases its edits since ``cp`` were made in (-1: while syncs were running)
    group_phases: dict[str, set[int]] = field(default_factory=dict)
    anchored: bool = False  # ``cp`` was observed (both sides clean and equal), not just the creation
    espo_unmapped: dict[str, Value] = field(default_factory=dict)
    advo_unmapped: dict[str, Value] = field(default_factory=lambda: dict.fromkeys(ADVO_UNMAPPED))
    betnr: int | None = None
    deleted: bool = False

    def converged(self, values: dict[str, Value]) -> None:
        self.cp = dict(values)
        self.espo_edits.clear()
        self.advo_edits.clear()
        self.group_phases.clear()
        self.anchored = True


def allowed_values(m: RecordModel, f: str, policy: ConflictPolicy) -> set[Value]:
    """Every value field ``f`` may hold once both sides agree, per the edits since the last convergence
    point and the group's strategy. Timing-independent (which sync saw which edit is not known):

    - nobody edited ``f``: the convergence-point value;
    - one side edited ``f``: that side's LAST value, unless the other side also edited the same group
      and the group's strategy may let the other side win (then ``f`` may also be reset to a value it
      had on the winning side: the convergence point or one of the editing side's earlier values);
    - both sides edited ``f``: ``field_merge`` -> the last value of either side; a group strategy ->
      any value a person set since the convergence point, or the convergence point;
    - exact, when both sides edited the group and all those edits fall into one quiet phase (nothing
      was syncing in between, so one sync saw them all): the strategy's winner, per group or per field.
    """
    group = FIELD_GROUP[f]
    gp = policy.for_group(group)
    strategy = gp.strategy
    e, a = m.espo_edits.get(f, []), m.advo_edits.get(f, [])
    eg = any(m.espo_edits.get(x) for x in GROUP_FIELDS[group])
    ag = any(m.advo_edits.get(x) for x in GROUP_FIELDS[group])
    cp = m.cp.get(f)
    if not e and not a:
        return {cp}
    phases = m.group_phases.get(group, set())
    if m.anchored and eg and ag and len(phases) == 1 and min(phases) > 0:
        # A pure conflict: every edit of this group since the convergence point was made while nothing
        # was syncing, so the first sync after them saw them all against the base of ``cp``.
        e_cur, a_cur = (e[-1] if e else cp), (a[-1] if a else cp)
        winner = gp.strategy
        if winner == "field_merge":
            if not (e and a):
                return {e_cur if e else a_cur}
            winner = gp.tiebreak
        return {"espocrm_wins": {e_cur}, "advoware_wins": {a_cur}}.get(winner, {e_cur, a_cur})
    if e and not a:
        return {e[-1]} if strategy in ("espocrm_wins", "field_merge") or not ag else {cp, *e}
    if a and not e:
        return {a[-1]} if strategy in ("advoware_wins", "field_merge") or not eg else {cp, *a}
    if strategy == "field_merge":
        return {e[-1], a[-1]}
    return {cp, *e, *a}
