"""Records held for a person before a create: are their candidates still there? (issue 11)

A create that met a possible duplicate (or several strong candidates, or one linked elsewhere) fails
the record with ``held`` and no retry until the record changes. But the reason can go away in
Advoware: the candidate is merged away, or edited until it contradicts (another birth date), or the
operator declined it (``keep=no`` in the review file). The sync check therefore asks, for each held
record, what a create would meet now (:meth:`CreateMatcher.candidates`: the one list read and at most
a few candidate reads, no write), and queues the record when nothing holds it any more.
"""

from __future__ import annotations

from typing import Any

from domain.beteiligte_mapper import MappingError, espo_to_canonical
from sync.create_match import CreateMatcher, OnCreateMatch
from sync.index_rebuild import IndexLost


class HoldRecheck:
    def __init__(self, matcher: CreateMatcher) -> None:
        self.matcher = matcher

    async def released(self, rec: dict[str, Any]) -> bool:
        """Whether a create of this held record would now go ahead, or link its one strong candidate."""
        espo_id = str(rec["id"])
        if self.matcher.mode == OnCreateMatch.CREATE:
            return True
        try:
            found = await self.matcher.candidates(espo_id, espo_to_canonical(rec))
        except MappingError:
            return False  # the sync reports that itself once the record changes
        except IndexLost:
            return False  # the store was emptied while we looked: stays held; a create rebuilds the index
        if found is None:  # no lookup (the index is gone, no list endpoint): stays held, safe
            return False
        if not found.strong and not found.possible:
            return True
        if len(found.strong) != 1 or self.matcher.mode == OnCreateMatch.ASK:
            return False
        [betnr] = found.strong
        owner = await self.matcher.store.betnr_owner(betnr)
        return owner is None or owner == espo_id
