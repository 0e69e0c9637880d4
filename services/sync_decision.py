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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mappers.beteiligte_mapper import (
    FIELD_GROUP,
    FIELDS,
    GROUPS,
    Canonical,
    advoware_to_canonical,
    espo_item_canonical,
    espo_to_canonical,
)
from services.conflict_policy import ConflictPolicy
from services.sync_status import Action
from services.timestamps import parse_advoware, parse_espo

ESPO, ADVO = "espocrm", "advoware"
# A base fingerprint that matches no value: "this side changed, not yet applied to the other".
PENDING = "pending"
UNMAPPABLE = "unmappable"  # in a webhook's fingerprints: a value that cannot be mapped


def fingerprint_value(value: str | None) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


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
            seen[f] = UNMAPPABLE  # a value the sync must read and report: never "already synced"
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


def _newer(espo_modified: datetime | None, advo_modified: datetime | None) -> str:
    if espo_modified and advo_modified and advo_modified > espo_modified:
        return ADVO
    return ESPO


def _group_winner(strategy: str, espo_modified: datetime | None, advo_modified: datetime | None) -> str:
    if strategy == "advoware_wins":
        return ADVO
    if strategy == "newest_wins":
        return _newer(espo_modified, advo_modified)
    return ESPO


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
    ``advowareRowId``), used only when ``base`` is lost.
    """
    if not linked:
        return Decision(Action.CREATE, to_advoware=dict(espo), reason="not linked yet")
    if advo is None:
        return Decision(Action.ADVOWARE_MISSING, reason="linked Beteiligter no longer exists in Advoware")

    e_changed = _changed(espo, base.espo if base else None)
    a_changed = _changed(advo, base.advo if base else None)
    if a_changed is None and known_row_id is not None and advo_row_id == known_row_id:
        a_changed = set()  # base lost, but Advoware was not written since our last sync

    differing = {f for f in espo if espo[f] != advo.get(f)}
    # Unknown change sets (no base) degrade to "every differing field may have changed there".
    e_set = differing if e_changed is None else e_changed
    a_set = differing if a_changed is None else a_changed

    to_advo: dict[str, str | None] = {}
    to_espo: dict[str, str | None] = {}
    conflicts: list[Conflict] = []

    for group in GROUPS:
        fields = [f.espo for f in FIELDS if f.group == group]
        e_g = [f for f in fields if f in e_set]
        a_g = [f for f in fields if f in a_set]
        gp = policy.for_group(group)
        both = bool(e_g) and bool(a_g) and any(espo[f] != advo[f] for f in set(e_g) | set(a_g))
        if not both:
            for f in e_g:
                if espo[f] != advo[f]:
                    to_advo[f] = espo[f]
            for f in a_g:
                if espo[f] != advo[f]:
                    to_espo[f] = advo[f]
            continue
        if gp.strategy == "field_merge":
            for f in fields:
                in_e, in_a = f in e_set, f in a_set
                if espo[f] == advo[f] or not (in_e or in_a):
                    continue
                if in_e and not in_a:
                    to_advo[f] = espo[f]
                elif in_a and not in_e:
                    to_espo[f] = advo[f]
                else:
                    winner = _group_winner(gp.tiebreak, espo_modified, advo_modified)
                    _apply(f, winner, espo, advo, to_advo, to_espo)
                    conflicts.append(Conflict(group, f, espo[f], advo[f], winner, "field_merge"))
            continue
        winner = _group_winner(gp.strategy, espo_modified, advo_modified)
        loser_changed = a_g if winner == ESPO else e_g
        for f in sorted(set(e_g) | set(a_g), key=fields.index):
            if espo[f] == advo[f]:
                continue
            _apply(f, winner, espo, advo, to_advo, to_espo)
            if f in loser_changed:
                conflicts.append(Conflict(group, f, espo[f], advo[f], winner, gp.strategy))

    reason = "" if base else "no base: full compare"
    action = Action.UPDATE if (to_advo or to_espo) else Action.NOOP
    return Decision(
        action,
        to_advoware=to_advo,
        to_espo=to_espo,
        conflicts=tuple(conflicts),
        espo_changed=frozenset(e_set & set(FIELD_GROUP)),
        advo_changed=frozenset(a_set & set(FIELD_GROUP)),
        reason=reason,
    )


def _apply(
    f: str,
    winner: str,
    espo: Canonical,
    advo: Canonical,
    to_advo: dict[str, str | None],
    to_espo: dict[str, str | None],
) -> None:
    if winner == ESPO:
        to_advo[f] = espo[f]
    else:
        to_espo[f] = advo[f]


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
