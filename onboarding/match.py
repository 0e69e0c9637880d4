"""``beteiligte-sync match``: find the parties both systems already hold, and link the reviewed pairs.

- :func:`scan` pages through Advoware (list endpoint, pages of 200) into a :class:`MatchIndex` of
  normalised identities only (and the match key index the sync consults before a create), then pages
  through EspoCRM's unlinked records and looks each one up: proposals with rule, confidence, verdict.
- :func:`apply_pairs` links reviewed pairs (see :mod:`onboarding.match_apply`).
- :func:`import_unmatched` creates Advoware-only parties in EspoCRM, already linked.
The review file is :mod:`onboarding.match_file`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.errors import ApiError
from adapters.match_declines import MatchDeclines
from adapters.match_index import MatchKeyIndex
from adapters.sync_state_store import Link, SyncStateStore
from domain.beteiligte_mapper import (
    FIELDS,
    MappingError,
    advoware_to_canonical,
    canonical_to_espo,
    espo_to_canonical,
)
from domain.decision import fingerprint
from domain.match_party import party_from_advoware, party_from_espo
from domain.matching import MatchIndex, Proposal, Verdict, resolve
from domain.sync_status import ENTITY, SyncStatus
from domain.timestamps import format_espo
from sync.espocrm_facts import EspoFacts
from sync.index_rebuild import build_index, every_beteiligter
from sync.sync_log import log_record

if TYPE_CHECKING:
    from datetime import datetime

    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

ESPO_SELECT = [f.espo for f in FIELDS] + ["betnr"]


class MatchUnavailable(Exception):  # noqa: N818 - an operator's message, not a crash
    """Matching cannot run (Advoware has no list endpoint)."""


@dataclass
class MatchReport:
    proposals: list[Proposal]
    espo_labels: dict[str, str]
    advo_labels: dict[str, str]
    advoware_scanned: int = 0
    espocrm_scanned: int = 0
    already_linked: int = 0
    unmatched_advoware: set[str] = field(default_factory=set)
    declined: set[tuple[str, str]] = field(default_factory=set)  # (EspoCRM id, betNr) declined before

    def counts(self) -> Counter[str]:
        return Counter(p.verdict.value for p in self.proposals)


async def scan(espo: EspoCRMAPI, advo: AdvowareAPI, store: SyncStateStore) -> MatchReport:
    """Both systems, page by page; only normalised identities of Advoware's side stay in memory."""
    if not await advo.supports_list():
        raise MatchUnavailable("Advoware answers no list endpoint (GET Beteiligte): match needs it to page "
                               "through the Beteiligte; ask the Advoware admin to enable it")
    index = MatchIndex()
    await build_index(advo, MatchKeyIndex(store.redis, store.prefix),
                      on_each=lambda obj: index.add(party_from_advoware(obj)))
    linked: dict[str, str] = {}
    found = []
    espo_labels: dict[str, str] = {}
    scanned = 0
    async for rec in espo.iter_list(ENTITY, select=ESPO_SELECT):
        scanned += 1
        if rec.get("betnr"):
            linked[str(rec["betnr"])] = str(rec["id"])
            continue
        party = party_from_espo(rec)
        for c in index.candidates(party):
            espo_labels[party.ref] = party.label
            found.append((party.ref, c))
    proposals = resolve(found, linked)
    proposed = {p.advo_ref for p in proposals}
    unmatched = {ref for ref in index.parties if ref not in proposed and ref not in linked}
    advo_labels = {p.advo_ref: index.parties[p.advo_ref].label for p in proposals}
    declines = await MatchDeclines(store.redis, store.prefix).of_many(sorted(espo_labels))
    declined = {(p.espo_ref, p.advo_ref) for p in proposals if int(p.advo_ref) in declines.get(p.espo_ref, ())}
    return MatchReport(proposals, espo_labels, advo_labels, len(index.parties), scanned, len(linked), unmatched,
                       declined)


@dataclass
class ImportSummary:
    created: int = 0
    would_create: int = 0
    failed: list[str] = field(default_factory=list)


async def import_unmatched(espo: EspoCRMAPI, advo: AdvowareAPI, store: SyncStateStore, refs: set[str], *,
                           write: bool, now: Callable[[], datetime], clock: Callable[[], float],
                           on_progress: Callable[[], None] = lambda: None,
                           facts: EspoFacts | None = None) -> ImportSummary:
    """Create the given Advoware-only parties in EspoCRM, linked (``betnr``, base stored), ``clean``.
    Values go through the value map as the sync writes them (``facts``: EspoCRM's enum options, read
    here first, so ``Herr`` is written as the option the field offers: ``Herr`` or stock ``Mr.``); a
    value the map cannot write is reported in the dry run already. Resumable: an imported party
    carries its ``betnr`` and is no longer unmatched at the next scan."""
    summary = ImportSummary()
    facts = facts or EspoFacts(espo)
    await facts.load()
    async for obj in every_beteiligter(advo):
        if str(obj["betNr"]) not in refs:
            continue
        on_progress()
        betnr = int(obj["betNr"])
        try:
            values = advoware_to_canonical(obj)
            body = {**canonical_to_espo(values, obj, facts.phone_international), "betnr": betnr,
                    "advowareRowId": obj.get("rowId"), "syncStatus": SyncStatus.CLEAN,
                    "advowareLastSync": format_espo(now())}
            if not write:
                summary.would_create += 1
                continue
            rec = await espo.create(ENTITY, body)
            await store.save_link(str(rec["id"]), Link(betnr=betnr, row_id=obj.get("rowId"),
                                                       espo=fingerprint(espo_to_canonical(rec)),
                                                       advo=fingerprint(values), synced_at=clock()))
        except (ApiError, MappingError) as exc:
            summary.failed.append(f"betnr {betnr}: {exc}")
            continue
        summary.created += 1
        log_record(logging.INFO, "imported an Advoware-only Beteiligter into EspoCRM", espo_id=str(rec["id"]),
                   betnr=betnr, decision="import_unmatched")
    return summary


def verdict_order(p: Proposal) -> tuple[int, float]:
    order = [Verdict.LINK, Verdict.REVIEW, Verdict.AMBIGUOUS, Verdict.LINKED_ELSEWHERE, Verdict.WEAKER]
    return order.index(p.verdict), -p.confidence
