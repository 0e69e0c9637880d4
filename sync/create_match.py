"""Before a create in Advoware: is this party already there? (issue 11, ``ON_CREATE_MATCH``)

The EspoCRM values are looked up by the strong rules (:data:`domain.matching.STRONG`) in the match
key index (:mod:`adapters.match_index`, built by ``beteiligte-sync match``), after bringing the index
up to date with one list read of Advoware's changes since an hour before its watermark
(:func:`refresh_index`). A unique candidate is read
once more (instead of the ``POST`` a create would cost) and must still match; then, by
``ON_CREATE_MATCH``:

- ``link`` (default): the record is linked to it as ``match --apply`` links a pair (values only
  Advoware has are written to EspoCRM, the first-link base is stored) and the pass decides again as
  for a linked record: the policy resolves the remaining differences;
- ``ask``: the record fails with a message naming the candidate's ``betNr``; staff decide;
- ``create``: no lookup at all (the behaviour before issue 11).

Several candidates (each read afresh first: one deleted or merged away in Advoware leaves the index
and does not count), or one already linked to another EspoCRM record, fail the record with a message
naming them (never linked, never created as another duplicate).

When no strong rule finds the party, the weak keys are looked up in the same index
(:func:`domain.match_keys.weak_lookup_keys`): a candidate that is a possible duplicate
(:func:`domain.matching.possible_duplicate`: name + e-mail or postcode without both birth dates, a
family name one letter off with first name and e-mail or postcode equal; a namesake with another
birth date than the record's is no candidate: its keys are marked by it), read afresh like the
strong ones (at most :data:`MAX_READS`; more are held as "several" unread), fails
the record in every mode but ``create``, naming its ``betNr`` and the rule: a person enters the
``betNr`` to link it, or runs ``beteiligte-sync match --create-new <id>`` when it is another party.
Candidates declined for the record (:mod:`adapters.match_declines`) never count. An index built
before the weak keys (no version) serves the strong lookup only, one before the family-name variants
(version 2) name + postcode without them, one before the birth-date marks (version 3) every
namesake as before, until ``match`` runs again.

Without the index (``match`` never ran) or without Advoware's list endpoint there is no lookup and no
extra read: the create goes ahead. An index lost with the store (Redis came back empty) is rebuilt
before the next create, which is held meanwhile (:mod:`sync.index_rebuild`). Otherwise the cost is
one list read plus the candidates' reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from adapters.errors import FatalError, NotFoundError, StaleWriteError
from adapters.match_declines import MatchDeclines
from adapters.match_index import IndexState, MatchKeyIndex
from adapters.sync_state_store import Link, SyncStateStore
from domain.beteiligte_mapper import Canonical, advoware_to_canonical
from domain.first_link import fill_from_advoware, first_base
from domain.match_keys import strong_keys, weak_lookup_keys
from domain.match_party import Party, party_from_advoware, party_from_espo
from domain.matching import STRONG, Rule, possible_duplicate, rule_for
from sync.espocrm_facts import EspoFacts
from sync.espocrm_fill import fill_espocrm
from sync.index_rebuild import IndexLost, IndexRebuild, index_entries
from sync.match_messages import MAX_NAMED, MAX_READS, numbers, possible_message
from sync.sync_log import log_record

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

INDEX_PAGE = 200
OVERLAP = timedelta(hours=1)  # read again before the watermark: the repeated autumn hour


class OnCreateMatch(StrEnum):
    LINK = "link"
    CREATE = "create"
    ASK = "ask"


class LinkedExisting(StaleWriteError):
    """The record was linked to an existing Beteiligter: read it and decide again, as a linked record
    (the sync's re-decide path; no import of the pass needed)."""


class MatchFound(FatalError):
    """A create that staff must decide (``ask``, several candidates, one linked elsewhere, or a possible
    duplicate)."""

    held = True  # the sync check looks again whether its candidates are still there (onboarding.hold_recheck)


Live = dict[int, tuple[dict[str, Any], Rule]]
Fresh = dict[int, dict[str, Any] | None]


@dataclass
class Found:
    """What a create of a record meets: live strong candidates, else possible duplicates (``None``
    as rule: more than :data:`MAX_READS`, not read)."""

    strong: Live = field(default_factory=dict)
    possible: dict[int, Rule | None] = field(default_factory=dict)

    def betnrs(self) -> set[int]:
        return set(self.strong) | set(self.possible)


def _advanced(water: str, seen: int, page: list[dict[str, Any]], *, skipped: bool) -> tuple[str, int]:
    """The watermark and how many rows stamped with it are read, after ``page``: read with
    ``skip=seen`` from ``water`` (``skipped``), or from before ``water`` and holding every row stamped
    with it (a page not full, or one reaching past ``water``)."""
    stamps = [str(o["geaendertAm"]) for o in page if o.get("geaendertAm")]
    top = max(stamps, default=water)
    if top <= water:  # nothing past the watermark
        at = sum(s == water for s in stamps)
        return water, seen + at if skipped else at
    return top, sum(s == top for s in stamps)


def _lost(espo_id: str) -> IndexLost:
    log_record(logging.WARNING, "match index lost during the lookup (store emptied): deciding again",
               espo_id=espo_id, betnr=None, decision="index_lost")
    return IndexLost("the match index vanished during the lookup (the store was emptied); decided again",
                     system="advoware")


async def refresh_index(index: MatchKeyIndex, advo: AdvowareAPI) -> list[dict[str, Any]] | None:
    """Advoware's changes since the watermark, put into the index; ``None`` when there is no index
    yet or no list endpoint. One list read from :data:`OVERLAP` before the watermark (``geaendertAm``
    is local time without offset: the hour repeated when summer time ends is stamped backwards;
    indexing a row again changes nothing). Only when that page is full and ends at or before the
    watermark, a second read continues at the watermark, skipping the rows stamped with it already
    read (a bulk change of more than :data:`INDEX_PAGE` rows with one stamp never sticks it)."""
    cursor = await index.cursor()
    if cursor is None:
        return None
    water, seen = cursor
    since = datetime.fromisoformat(water)
    try:
        page = await advo.list_beteiligte(geaendert_seit=since - OVERLAP, take=INDEX_PAGE)
        behind = len(page) == INDEX_PAGE and str(page[-1].get("geaendertAm") or "") <= water
        more = await advo.list_beteiligte(geaendert_seit=since, skip=seen, take=INDEX_PAGE) if behind else []
    except NotFoundError:
        return None
    await index.put_many(index_entries(page + more))
    moved = _advanced(water, seen, more, skipped=True) if behind else _advanced(water, seen, page, skipped=False)
    if moved != cursor:
        await index.set_watermark(*moved)
    return page + more


class CreateMatcher:
    def __init__(self, advo: AdvowareAPI, store: SyncStateStore, *, clock: Callable[[], float],
                 mode: OnCreateMatch = OnCreateMatch.LINK, espo: EspoCRMAPI | None = None,
                 facts: EspoFacts | None = None) -> None:
        self.advo = advo
        self.espo = espo
        self.facts = facts  # EspoCRM's phone setting: a value filled in is spelt as it accepts
        self.store = store
        self.clock = clock
        self.mode = mode
        self.index = MatchKeyIndex(store.redis, store.prefix)
        self.declines = MatchDeclines(store.redis, store.prefix)
        self.rebuild = IndexRebuild(advo, self.index, espo)

    async def ready_index(self, state: IndexState) -> IndexState:
        """Before a create that looks up: the index, rebuilt first when it is missing (issue 17; see
        :mod:`sync.index_rebuild`). ``create`` mode never looks up and never builds."""
        if self.mode == OnCreateMatch.CREATE:
            return state
        return await self.rebuild.ensure(state)

    async def check(self, espo_id: str, espo_vals: Canonical, state: IndexState | None = None) -> None:
        """Returns when the create may go ahead; raises :class:`LinkedExisting` or :class:`MatchFound`.
        ``state``: the index's, as the create read it (``None``: read here)."""
        if self.mode == OnCreateMatch.CREATE:
            return
        found = await self.candidates(espo_id, espo_vals, state)
        if found is None:
            return
        if found.strong:
            await self._strong(espo_id, espo_vals, found.strong)
        elif found.possible:
            log_record(logging.WARNING, "not created: may be an existing Beteiligter", espo_id=espo_id,
                       betnr=min(found.possible), decision="possible_duplicate")
            owners = {b: o for b in sorted(found.possible)[:MAX_READS]
                      if (o := await self.store.betnr_owner(b)) is not None and o != espo_id}
            raise MatchFound(possible_message(espo_id, found.possible, owners))

    async def candidates(self, espo_id: str, espo_vals: Canonical, state: IndexState | None = None) -> Found | None:
        """The candidates a create of these values meets, those declined for the record left out;
        ``None`` when there is no lookup (no index, no list endpoint, no value to look up)."""
        party = party_from_espo({"id": espo_id, **espo_vals})
        strong = strong_keys(party)
        weak = weak_lookup_keys(party, state.version if state is not None else await self.index.version())
        if not strong and not weak:
            return None
        page = await refresh_index(self.index, self.advo)
        if page is None:
            if state is not None and state.built and await self.index.watermark() is None:
                raise _lost(espo_id)
            return None
        declined = await self.declines.of(espo_id)
        fresh: Fresh = {int(o["betNr"]): o for o in page}
        strong_hits = await self.index.lookup(strong)
        weak_hits = await self.index.lookup(weak) if weak else set()
        if await self.index.watermark() is None:  # emptied while we looked: the lookups saw a part of it
            raise _lost(espo_id)
        found = Found(await self._live(party, strong_hits - declined, fresh))
        if not found.strong and weak:
            found.possible = await self._possible(party, weak_hits - declined, fresh)
        return found

    async def _strong(self, espo_id: str, espo_vals: Canonical, found: Live) -> None:
        if len(found) > 1:
            named = numbers(set(found), MAX_NAMED)
            raise MatchFound(f"not created in Advoware: matches several existing Beteiligte (betNr {named}); "
                             "link one by entering its betNr in betnr, or merge the duplicates in Advoware")
        [(betnr, (obj, rule))] = found.items()
        owner = await self.store.betnr_owner(betnr)
        if owner is not None and owner != espo_id:
            raise MatchFound(f"not created in Advoware: matches Beteiligter {betnr}, which is already linked to "
                             f"EspoCRM record {owner} (a duplicate in EspoCRM?)")
        if self.mode == OnCreateMatch.ASK:
            raise MatchFound(f"not created in Advoware: matches the existing Beteiligter {betnr} ({rule}); "
                             f"enter {betnr} in betnr to link it; if it is another party: "
                             f"beteiligte-sync match --create-new {espo_id}")
        owner = await self.store.claim_betnr(betnr, espo_id)  # atomic: a twin created at once loses here
        if owner is not None:
            raise MatchFound(f"not created in Advoware: matches Beteiligter {betnr}, which is already linked to "
                             f"EspoCRM record {owner} (a duplicate in EspoCRM?)")
        try:
            await self._link(espo_id, espo_vals, obj)
        except BaseException:
            if await self.store.get_link(espo_id) is None:
                await self.store.release_betnr(betnr, espo_id)
            raise
        log_record(logging.WARNING, "linked to an existing Beteiligter instead of creating a duplicate",
                   espo_id=espo_id, betnr=betnr, decision="link_existing", rule=rule)
        raise LinkedExisting(f"linked to the existing Beteiligter {betnr} instead of creating it",
                             system="advoware")

    async def _link(self, espo_id: str, espo_vals: Canonical, obj: dict[str, Any]) -> None:
        advo_vals = advoware_to_canonical(obj)
        fill = fill_from_advoware(espo_vals, advo_vals)
        if fill and self.espo is not None:  # values only Advoware has: never emptied by EspoCRM winning
            espo_vals = {**espo_vals, **await fill_espocrm(self.espo, self.facts, espo_id, fill, obj)}
        espo_fp, advo_fp = first_base(espo_vals, advo_vals)
        await self.store.save_link(espo_id, Link(betnr=int(obj["betNr"]), row_id=obj.get("rowId"), espo=espo_fp,
                                                 advo=advo_fp, synced_at=self.clock()))

    async def _live(self, party: Party, candidates: set[int], fresh: Fresh) -> Live:
        """The candidates that still exist and still match by a strong rule, read afresh unless the
        change page has them (a duplicate merged away in Advoware leaves the index here). More than
        :data:`MAX_READS` are not read: they are several either way."""
        if len(candidates) > MAX_READS:
            return {b: ({}, Rule.COMPANY_REGISTER) for b in candidates}
        objs = await asyncio.gather(*(self._fresh(b, fresh) for b in sorted(candidates)))
        found = {}
        for obj in objs:
            rule = rule_for(party, party_from_advoware(obj)) if obj else None
            if obj and rule in STRONG:
                found[int(obj["betNr"])] = (obj, rule)
        return found

    async def _possible(self, party: Party, candidates: set[int], fresh: Fresh) -> dict[int, Rule | None]:
        """The weak-key candidates that still exist and are a possible duplicate, read afresh (those
        the strong pass read are not read again); more than :data:`MAX_READS` are not read: a person
        decides between them anyway."""
        if len(candidates) > MAX_READS:
            return dict.fromkeys(candidates)
        objs = await asyncio.gather(*(self._fresh(b, fresh) for b in sorted(candidates)))
        found: dict[int, Rule | None] = {}
        for obj in objs:
            rule = possible_duplicate(party, party_from_advoware(obj)) if obj else None
            if obj and rule is not None:
                found[int(obj["betNr"])] = rule
        return found

    async def _fresh(self, betnr: int, fresh: Fresh) -> dict[str, Any] | None:
        if betnr not in fresh:
            fresh[betnr] = await self._read(betnr)
        return fresh[betnr]

    async def _read(self, betnr: int) -> dict[str, Any] | None:
        try:
            return await self.advo.get_beteiligter(betnr)
        except NotFoundError:
            await self.index.remove(betnr)
            return None

    async def created(self, obj: dict[str, Any], state: IndexState) -> None:
        """Index a Beteiligter we created (when the index exists), so its duplicate is found at once.
        ``state``: as read before the ``POST`` (an index built meanwhile by ``match`` finds the new
        Beteiligter itself, or its next catch-up does: it was changed after the watermark)."""
        if state.built:
            await self.index.put_many(index_entries([obj]))
