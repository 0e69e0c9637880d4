"""The pure sync decision: given both sides and the state of the last sync, what to write where.

No I/O here. Change detection is three-way: each side is compared with the fingerprint it had at the
last successful sync (``Base``), never with the other side's clock, so ``geaendertAm`` moving means
nothing by itself. Advoware's ``rowId`` is the fast path of the sync check (an unchanged ``rowId``
needs no compare) and the safe path when the base is lost: a ``rowId`` equal to the one recorded at
the last sync means Advoware was not written since. Timestamps only matter for ``newest_wins``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any

from domain.beteiligte_mapper import (
    FIELD_GROUP,
    FIELDS,
    GROUPS,
    Canonical,
    advoware_to_canonical,
    espo_item_canonical,
    espo_to_canonical,
)
from domain.conflict_policy import ConflictPolicy, Strategy
from domain.fingerprint_key import keyed, set_key
from domain.sync_status import Action
from domain.timestamps import parse_advoware, parse_espo

ESPO, ADVO = "espocrm", "advoware"


class Mark(StrEnum):
    """Stored in place of a field's fingerprint; never the fingerprint of a value (those are hex)."""

    OWED = "pending"  # in a base: this side changed, the change is not yet applied to the other side
    UNMAPPABLE = "unmappable"  # in a webhook's fingerprints: a value that cannot be mapped


def owed(fields: Iterable[str]) -> dict[str, str]:
    """Base fingerprints for fields whose change is still owed to the other side: they match no value,
    so the next decision sees them as changed on this side and applies them."""
    return dict.fromkeys(fields, Mark.OWED.value)


@lru_cache(maxsize=8192)  # the same values recur (None, countries, cities, legal forms): a sync check hashes millions
def fingerprint_value(value: str | None) -> str:
    """The first 16 hex digits of the SHA-256 of ``json.dumps(value)`` (stored in links: never change
    it), under the installation's key (:mod:`domain.fingerprint_key`); a text is escaped by the same C
    function ``json.dumps`` uses, without the encoder's overhead."""
    if value is None:
        text = "null"
    elif type(value) is str:
        text = encode_basestring_ascii(value)
    else:
        text = json.dumps(value)
    return keyed(hashlib.sha256(text.encode()).hexdigest()[:16])


def configure_fingerprint_key(key: bytes | None) -> None:
    """Set the process's fingerprint key (the composition root, once); cached fingerprints are dropped."""
    set_key(key)
    fingerprint_value.cache_clear()


def fingerprint(values: Canonical) -> dict[str, str]:
    """Per-field fingerprints: enough to tell a change, without copying client data into Redis."""
    return {f.espo: fingerprint_value(values.get(f.espo)) for f in FIELDS}


def item_fingerprints(item: dict[str, Any]) -> dict[str, str]:
    """Fingerprints of the mapped values (and ``betnr``) one EspoCRM webhook item carries: the sync
    compares them with the stored base and skips a delivery whose values are already synced."""
    values = espo_item_canonical(item)
    seen = fingerprint_subset(values)
    for f in FIELD_GROUP:
        if f in item and f not in values:
            seen[f] = Mark.UNMAPPABLE.value  # a value the sync must read and report: never "already synced"
    if "betnr" in item:
        seen["betnr"] = str(item["betnr"])
    return seen


def fingerprint_subset(values: Canonical) -> dict[str, str]:
    return {f: fingerprint_value(v) for f, v in values.items()}


@dataclass(frozen=True)
class Base:
    """Both sides as of the last successful sync."""

    espo: dict[str, str]
    advo: dict[str, str]
    row_id: str | None


@dataclass(frozen=True)
class Conflict:
    group: str
    field: str
    espo_value: str | None
    advo_value: str | None
    winner: str
    strategy: str


@dataclass(frozen=True)
class Decision:
    action: Action  # CREATE | UPDATE | NOOP | ADVOWARE_MISSING
    to_advoware: dict[str, str | None] = field(default_factory=dict)
    to_espo: dict[str, str | None] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    espo_changed: frozenset[str] = frozenset()
    advo_changed: frozenset[str] = frozenset()
    reason: str = ""

    @property
    def writes_advoware(self) -> bool:
        return self.action == Action.CREATE or bool(self.to_advoware)

    def summary(self) -> str:
        parts: list[str] = [self.action]
        if self.to_advoware and self.action != Action.CREATE:
            parts.append("->advoware:" + ",".join(sorted(self.to_advoware)))
        if self.to_espo:
            parts.append("->espocrm:" + ",".join(sorted(self.to_espo)))
        if self.conflicts:
            parts.append(f"conflicts:{len(self.conflicts)}")
        if self.reason:
            parts.append(f"({self.reason})")
        return " ".join(parts)


def _changed(values: Canonical, base_fp: dict[str, str] | None) -> set[str] | None:
    if base_fp is None:
        return None  # unknown
    return {f for f, v in values.items() if fingerprint_value(v) != base_fp.get(f)}


def _group_winner(strategy: str, times: _EditTimes) -> str:
    if strategy == Strategy.ADVOWARE_WINS:
        return ADVO
    if strategy == Strategy.NEWEST_WINS and times.espo and times.advo and times.advo > times.espo:
        return ADVO
    return ESPO  # espocrm_wins, and newest_wins on a tie or an unknown time: EspoCRM is the master


@dataclass(frozen=True)
class _EditTimes:
    espo: datetime | None
    advo: datetime | None


@dataclass
class _Plan:
    """What one decision writes, filled group by group."""

    espo: Canonical
    advo: Canonical
    to_advo: dict[str, str | None] = field(default_factory=dict)
    to_espo: dict[str, str | None] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    def differs(self, f: str) -> bool:
        return self.espo[f] != self.advo[f]

    def take(self, f: str, winner: str) -> None:
        if winner == ESPO:
            self.to_advo[f] = self.espo[f]
        else:
            self.to_espo[f] = self.advo[f]

    def conflict(self, group: str, f: str, winner: str, strategy: str) -> None:
        self.conflicts.append(Conflict(group, f, self.espo[f], self.advo[f], winner, strategy))


def _one_side_changed(plan: _Plan, e_g: list[str], a_g: list[str]) -> None:
    for f in e_g:
        if plan.differs(f):
            plan.take(f, ESPO)
    for f in a_g:
        if plan.differs(f):
            plan.take(f, ADVO)


def _field_merge(plan: _Plan, group: str, fields: list[str], e_set: set[str], a_set: set[str],
                 tiebreak: str, times: _EditTimes) -> None:
    """Per field, the side that changed it wins; a field changed on both sides goes to the tiebreak."""
    for f in fields:
        in_e, in_a = f in e_set, f in a_set
        if not plan.differs(f) or not (in_e or in_a):
            continue
        if in_e != in_a:
            plan.take(f, ESPO if in_e else ADVO)
            continue
        winner = _group_winner(tiebreak, times)
        plan.take(f, winner)
        plan.conflict(group, f, winner, Strategy.FIELD_MERGE)


def _whole_group(plan: _Plan, group: str, fields: list[str], e_g: list[str], a_g: list[str],
                 strategy: str, times: _EditTimes) -> None:
    """The group's winner takes every field either side changed; the loser's changes are conflicts."""
    winner = _group_winner(strategy, times)
    loser_changed = a_g if winner == ESPO else e_g
    for f in sorted(set(e_g) | set(a_g), key=fields.index):
        if not plan.differs(f):
            continue
        plan.take(f, winner)
        if f in loser_changed:
            plan.conflict(group, f, winner, strategy)


def _decide_group(plan: _Plan, group: str, e_set: set[str], a_set: set[str], policy: ConflictPolicy,
                  times: _EditTimes) -> None:
    fields = [f.espo for f in FIELDS if f.group == group]
    e_g = [f for f in fields if f in e_set]
    a_g = [f for f in fields if f in a_set]
    if not (e_g and a_g and any(plan.differs(f) for f in set(e_g) | set(a_g))):
        _one_side_changed(plan, e_g, a_g)
        return
    gp = policy.for_group(group)
    if gp.strategy == Strategy.FIELD_MERGE:
        _field_merge(plan, group, fields, e_set, a_set, gp.tiebreak, times)
    else:
        _whole_group(plan, group, fields, e_g, a_g, gp.strategy, times)


def decide(
    espo: Canonical,
    advo: Canonical | None,
    base: Base | None,
    *,
    policy: ConflictPolicy,
    linked: bool,
    advo_row_id: str | None = None,
    known_row_id: str | None = None,
    espo_modified: datetime | None = None,
    advo_modified: datetime | None = None,
) -> Decision:
    """Decide one record.

    ``linked``: the EspoCRM record carries a ``betnr``. ``advo`` is ``None`` when the linked Advoware
    record does not exist. ``known_row_id``: the ``rowId`` recorded at the last sync (the record's
    ``advowareRowId``), used only when ``base`` is lost. ``espo_modified``/``advo_modified``: when a
    person last edited each side (``newest_wins``).
    """
    if not linked:
        return Decision(Action.CREATE, to_advoware=dict(espo), reason="not linked yet")
    if advo is None:
        return Decision(Action.ADVOWARE_MISSING, reason="linked Beteiligter no longer exists in Advoware")
    e_set, a_set = _change_sets(espo, advo, base, advo_row_id, known_row_id)
    plan = _Plan(espo, advo)
    times = _EditTimes(espo_modified, advo_modified)
    for group in GROUPS:
        _decide_group(plan, group, e_set, a_set, policy, times)
    return Decision(
        Action.UPDATE if (plan.to_advo or plan.to_espo) else Action.NOOP,
        to_advoware=plan.to_advo,
        to_espo=plan.to_espo,
        conflicts=tuple(plan.conflicts),
        espo_changed=frozenset(e_set & set(FIELD_GROUP)),
        advo_changed=frozenset(a_set & set(FIELD_GROUP)),
        reason="" if base else "no base: full compare",
    )


def _change_sets(espo: Canonical, advo: Canonical, base: Base | None, advo_row_id: str | None,
                 known_row_id: str | None) -> tuple[set[str], set[str]]:
    """Fields each side changed since the last sync. Without a base: every differing field may have
    changed on either side, unless Advoware's rowId shows it was not written since our last sync."""
    e_changed = _changed(espo, base.espo if base else None)
    a_changed = _changed(advo, base.advo if base else None)
    if a_changed is None and known_row_id is not None and advo_row_id == known_row_id:
        a_changed = set()
    differing = {f for f in espo if espo[f] != advo.get(f)}
    return (differing if e_changed is None else e_changed), (differing if a_changed is None else a_changed)


def decide_records(
    record: dict[str, Any],
    advo_obj: dict[str, Any] | None,
    base: Base | None,
    *,
    policy: ConflictPolicy,
    linked: bool,
    timezone: str = "Europe/Berlin",
    espo_edited_at: datetime | None = None,
    advo_edited_at: datetime | None = None,
) -> Decision:
    """:func:`decide` on the raw records of both systems (mapping and time conversion included).

    ``espo_edited_at``/``advo_edited_at``: when a person last changed each side, for
    ``newest_wins``. Our own writes move ``modifiedAt``/``geaendertAm`` too, so the sync passes the
    edit times it knows; without them the records' own timestamps are used (the sync check's preview).
    Raises ``MappingError`` for values one side cannot represent."""
    if espo_edited_at is None:
        espo_edited_at = parse_espo(record.get("modifiedAt"))
    if advo_edited_at is None and advo_obj:
        advo_edited_at = parse_advoware(advo_obj.get("geaendertAm"), timezone)
    return decide(
        espo_to_canonical(record),
        advoware_to_canonical(advo_obj) if advo_obj else None,
        base,
        policy=policy,
        linked=linked,
        advo_row_id=advo_obj.get("rowId") if advo_obj else None,
        known_row_id=record.get("advowareRowId"),
        espo_modified=espo_edited_at,
        advo_modified=advo_edited_at,
    )
