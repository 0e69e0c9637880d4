"""The messages of a create held for a person (issue 11): one line each, cut at 480 characters by
:mod:`sync.sync_failures`, so the numbers are limited and the advice comes last."""

from __future__ import annotations

from domain.matching import Rule

MAX_READS = 5  # candidates read to drop those gone from Advoware; more are ambiguous anyway
MAX_NAMED = 10  # betNrs a "several" message names before "and N more" (it must stay one short line)


def numbers(betnrs: set[int], limit: int = MAX_READS) -> str:
    """The lowest ``limit`` betNrs, then how many more: a message is cut at 480 characters
    (:mod:`sync.sync_failures`), and its advice comes after the numbers."""
    nums = sorted(betnrs)
    more = f" and {len(nums) - limit} more" if len(nums) > limit else ""
    return ", ".join(str(b) for b in nums[:limit]) + more


def possible_message(espo_id: str, possible: dict[int, Rule | None], owners: dict[int, str] | None = None) -> str:
    """The record's ``syncErrorMessage`` when it may be an existing Beteiligter (one line). ``owners``:
    candidates linked to another EspoCRM record, named so and never advised to be linked again."""
    owners = owners or {}
    rules = ", ".join(sorted({r.value for r in possible.values() if r is not None})) or "weak keys"
    nums = sorted(possible)
    named = ", ".join(f"{b} (linked to EspoCRM record {owners[b]})" if b in owners else str(b)
                      for b in nums[:MAX_READS])
    named += f" and {len(nums) - MAX_READS} more" if len(nums) > MAX_READS else ""
    free = [b for b in nums if b not in owners]
    if not owners:
        which = f"enter {nums[0]} in betnr to link it; if it is another party" if len(nums) == 1 else \
            "enter the right one's betNr in betnr to link it; if it is none of them"
    elif free:
        which = ("enter the right one's betNr in betnr to link it (one linked to another record: merge this "
                 "record into that one instead); if it is none of them")
    else:
        which = "a duplicate in EspoCRM? merge this record into that one; if it is another party"
    return (f"not created in Advoware: may be the existing Beteiligte betNr {named} ({rules}, too little to link "
            f"without a person); {which}: beteiligte-sync match --create-new {espo_id}")
