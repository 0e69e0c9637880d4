"""What one pass decides (issue 17): on the stored base of its pair, or, when there is none, on what
the record itself carries.

- A stored base for the record's ``betnr``: the three-way decision (:func:`domain.decision.decide`).
- No base for the pair (:func:`domain.first_link.without_base` tells which case):
  - Advoware's ``rowId`` as recorded on the record: EspoCRM's differences win;
  - our write was the record's last save: Advoware's differences win (an Advoware edit is never
    taken for a conflict EspoCRM wins because Redis came back empty);
  - otherwise (a ``betnr`` typed by hand or changed by a person, or both sides may have changed): the
    pair must be one party by the matching rules ``match --apply`` uses, else nothing is written and
    the record fails naming both ids and the differing fields (:class:`NotTheSameParty`); if it is,
    it is decided as a first link (:func:`domain.first_link.decide_first_link`): an empty value never
    overwrites one, two different values go through the group's strategy and are reported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.errors import FatalError
from adapters.sync_state_store import Link
from domain.beteiligte_mapper import advoware_to_canonical, espo_to_canonical
from domain.conflict_policy import ConflictPolicy
from domain.decision import Decision, decide_records
from domain.first_link import (
    FIRST_LINK_REASON,
    NoBase,
    base_from_record,
    decide_first_link,
    identity_differences,
    without_base,
)

MAX_FIELDS_NAMED = 8


class NotTheSameParty(FatalError):
    """The ``betnr`` in the record names a Beteiligter the matching rules do not take for the same
    party (a typo, another client): nothing is written to either system."""


def decide_pass(record: dict[str, Any], betnr: int | None, advo_obj: dict[str, Any] | None, link: Link | None, *,
                relinked: bool,
                policy: ConflictPolicy, timezone: str, espo_edited_at: datetime | None,
                advo_edited_at: datetime | None, api_user_id: str | None) -> Decision:
    """The decision of one pass; ``betnr``: the record's (or, when its release never landed, the
    link's), ``link``: the stored link of that ``betnr`` (``None``: no base for this pair),
    ``relinked``: a link was stored for another ``betnr``."""
    if link is not None or advo_obj is None or betnr is None:
        return decide_records(record, advo_obj, link.base() if link else None, policy=policy,
                              linked=betnr is not None, timezone=timezone,
                              espo_edited_at=espo_edited_at, advo_edited_at=advo_edited_at)
    how = without_base(record, advo_obj.get("rowId"), api_user_id, relinked=relinked)
    if how in (NoBase.ADVOWARE_UNCHANGED, NoBase.ESPOCRM_UNCHANGED):
        base = base_from_record(how, espo_to_canonical(record), advoware_to_canonical(advo_obj))
        return decide_records(record, advo_obj, base, policy=policy, linked=True, timezone=timezone,
                              espo_edited_at=espo_edited_at, advo_edited_at=advo_edited_at)
    differing = identity_differences(record, advo_obj)
    if differing is not None:
        named = ", ".join(differing[:MAX_FIELDS_NAMED]) + (" …" if len(differing) > MAX_FIELDS_NAMED else "")
        why = f"they differ in {named}" if differing else "too little in common to tell"
        raise NotTheSameParty(
            f"EspoCRM record {record['id']} and Advoware Beteiligter {betnr} (its betnr) are not the same party "
            f"by the matching rules ({why}); nothing was written to either system. "
            "Check the betnr; if it is right, enter the same first name and birth date (or e-mail or "
            "postcode) in both systems first", system="advoware")
    reason = FIRST_LINK_REASON if how == NoBase.FIRST_LINK else "no base: both sides may have changed"
    return decide_first_link(espo_to_canonical(record), advoware_to_canonical(advo_obj), policy=policy,
                             espo_modified=espo_edited_at, advo_modified=advo_edited_at, reason=reason)
