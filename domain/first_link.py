"""Linking two existing records (issues 11 and 17): which values differ, what base the first sync
starts from, which values only one side has, whether the two are one party at all, and how a record
whose base is missing is decided. Pure, no I/O; used by ``match --apply``, the create check and the
sync pass (a ``betnr`` typed by hand, a base lost with Redis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.beteiligte_mapper import FIELD_GROUP, Canonical, advoware_to_canonical, espo_to_canonical
from domain.conflict_policy import ConflictPolicy
from domain.decision import Base, Decision, Mark, decide, fingerprint, fingerprint_value
from domain.match_party import party_from_advoware, party_from_espo
from domain.matching import plausible
from domain.sync_status import Action, SyncStatus


def differences(espo: Canonical, advo: Canonical) -> list[tuple[str, str | None, str | None]]:
    """Mapped fields whose canonical values differ: (field, EspoCRM value, Advoware value)."""
    return [(f, espo.get(f), advo.get(f)) for f in FIELD_GROUP if espo.get(f) != advo.get(f)]


def first_base(espo: Canonical, advo: Canonical) -> tuple[dict[str, str], dict[str, str]]:
    """The base stored when two existing records are linked, so that the first sync resolves their
    differences: a value only one side has goes to the other side; two different values count as
    changed on both sides, so the group's conflict strategy decides (and a Note reports it)."""
    espo_fp, advo_fp = fingerprint(espo), fingerprint(advo)
    for f, e, a in differences(espo, advo):
        if e is None or a is None:
            espo_fp[f] = advo_fp[f] = fingerprint_value(None)
        else:
            espo_fp[f] = advo_fp[f] = Mark.OWED
    return espo_fp, advo_fp


def fill_from_advoware(espo: Canonical, advo: Canonical) -> Canonical:
    """The values only Advoware has: written to EspoCRM when a pair is linked, so that no value is
    lost when the first sync lets EspoCRM's side of a group win (EspoCRM is the master for stammdaten,
    and an empty EspoCRM field would otherwise empty the Advoware one)."""
    return {f: a for f, e, a in differences(espo, advo) if e is None and a is not None}


def fill_from_espocrm(espo: Canonical, advo: Canonical) -> Canonical:
    """The values only EspoCRM has (the mirror of :func:`fill_from_advoware`)."""
    return {f: e for f, e, a in differences(espo, advo) if a is None and e is not None}


FIRST_LINK_REASON = "first link"


def decide_first_link(espo: Canonical, advo: Canonical, *, policy: ConflictPolicy,
                      espo_modified: datetime | None = None, advo_modified: datetime | None = None,
                      reason: str = FIRST_LINK_REASON) -> Decision:
    """The decision for a pair without a base of its own (a ``betnr`` typed by hand, a relink, a base
    lost while both sides may have changed): a value only one side has goes to the other side (an
    empty value never overwrites one, whatever a group's strategy); two different values count as
    changed on both sides, so the group's strategy decides and each is a conflict (reported in a
    Note). The caller has made sure the two are one party (:func:`identity_differences`)."""
    to_espo, to_advo = fill_from_advoware(espo, advo), fill_from_espocrm(espo, advo)
    espo_full, advo_full = {**espo, **to_espo}, {**advo, **to_advo}
    espo_fp, advo_fp = first_base(espo_full, advo_full)
    d = decide(espo_full, advo_full, Base(espo_fp, advo_fp, None), policy=policy, linked=True,
               espo_modified=espo_modified, advo_modified=advo_modified)
    to_espo.update(d.to_espo)
    to_advo.update(d.to_advoware)
    changed = frozenset(f for f, _, _ in differences(espo, advo))
    return replace(d, action=Action.UPDATE if (to_espo or to_advo) else Action.NOOP, to_espo=to_espo,
                   to_advoware=to_advo, espo_changed=changed, advo_changed=changed, reason=reason)


def identity_differences(record: dict[str, Any], advo_obj: dict[str, Any]) -> list[str] | None:
    """``None`` when the EspoCRM record and the Beteiligter may be one party by the rules ``match
    --apply`` checks a kept pair with (:func:`domain.matching.plausible`); otherwise the mapped fields
    in which they differ, those holding two different values first (names, never values: the list
    goes into ``syncErrorMessage`` and the log)."""
    if plausible(party_from_espo(record), party_from_advoware(advo_obj)):
        return None
    diffs = differences(espo_to_canonical(record), advoware_to_canonical(advo_obj))
    return ([f for f, e, a in diffs if e is not None and a is not None]
            + [f for f, e, a in diffs if e is None or a is None])


class NoBase(StrEnum):
    """How a linked record without a stored base is decided (issue 17: Redis came back empty, or a
    ``betnr`` typed by hand)."""

    ADVOWARE_UNCHANGED = "advoware_unchanged"  # rowId as recorded: EspoCRM's differences win
    ESPOCRM_UNCHANGED = "espocrm_unchanged"  # our write was the record's last save: Advoware's win
    FIRST_LINK = "first_link"  # identity verified by the matching rules, then decide_first_link
    BOTH_MAY_HAVE_CHANGED = "both_may_have_changed"  # the same, reported as a lost base, not a first link


def without_base(record: dict[str, Any], advo_row_id: str | None, api_user_id: str | None, *,
                 relinked: bool) -> NoBase:
    """What the record itself still tells when the base of its pair is missing.

    - ``relinked`` (the stored link names another ``betnr``) or never synced (no ``advowareLastSync``:
      a ``betnr`` typed into a new record, or a pair ``match --apply`` linked): a first link.
    - Advoware's ``rowId`` is the one recorded at the last sync (``advowareRowId``): the same row,
      not written since (a ``rowId`` is a row version, never another Beteiligter's).
    - Otherwise Advoware moved, or the ``betnr`` names another Beteiligter. When the record's last
      save was ours (``modifiedById`` is the API user) and it is ``clean``, no person saved it after
      our last write, so no person changed its ``betnr`` either: Advoware was edited.
    - Anything else (a person saved it, the API user unknown, a failure pending) may be a new
      ``betnr`` or edits on both sides: decided like a first link, whose identity check refuses
      another party (``BOTH_MAY_HAVE_CHANGED``).
    """
    if relinked or not record.get("advowareLastSync"):
        return NoBase.FIRST_LINK
    known = record.get("advowareRowId")
    if known and advo_row_id == known:
        return NoBase.ADVOWARE_UNCHANGED
    ours = api_user_id is not None and record.get("modifiedById") == api_user_id
    if ours and record.get("syncStatus") == SyncStatus.CLEAN:
        return NoBase.ESPOCRM_UNCHANGED
    return NoBase.BOTH_MAY_HAVE_CHANGED


def base_from_record(how: NoBase, espo: Canonical, advo: Canonical) -> Base:
    """The base a decision stands on when it was lost and one side is known unchanged since the last
    sync: that side's values are the base of both, so every difference is the other side's change
    (no conflict). Never stored: the pass stores what it decided on."""
    if how in (NoBase.FIRST_LINK, NoBase.BOTH_MAY_HAVE_CHANGED):
        raise ValueError("a first link has no base to stand on: decide_first_link")
    same = fingerprint(advo if how == NoBase.ADVOWARE_UNCHANGED else espo)
    return Base(dict(same), dict(same), None)
