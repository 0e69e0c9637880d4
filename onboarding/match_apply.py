"""``match --apply``: link reviewed pairs of existing records, under each record's lease.

Per pair: take the record's lease (a running sync of it waits, and we wait for none: a busy record is
reported and left for the next run), read both records, refuse what is no longer true (the record
linked meanwhile, the Beteiligter linked to another record, either gone), then store the first-link
base (:func:`domain.matching.first_base`) and write ``betnr``, ``advowareRowId`` and
``syncStatus=pending_sync`` to the EspoCRM record, and post one Note listing the differences the next
sync resolves. The base is stored first: if the EspoCRM write is lost, the sync still treats the
record as linked (a create whose release never landed), never creates it; if EspoCRM refuses the
write (4xx), the base is dropped again: the pair is reported as an error and nothing is linked. A
pair whose record already carries this ``betnr`` is done: running it again, or after an interruption,
skips it, but posts the differences Note an interrupted run still owed (kept in Redis until posted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from adapters.errors import ApiError, AuthenticationError, ForbiddenError, NotFoundError, ValidationError
from adapters.match_declines import MatchDeclines
from adapters.redis_ops import as_text
from adapters.sync_state_store import Link, SyncStateStore
from domain.beteiligte_mapper import (
    Canonical,
    MappingError,
    advoware_to_canonical,
    canonical_to_espo,
    espo_to_canonical,
    held_value,
)
from domain.first_link import differences, fill_from_advoware, first_base
from domain.match_party import party_from_advoware, party_from_espo
from domain.matching import plausible
from domain.sync_status import ENTITY, SyncStatus
from onboarding.match_file import Pair
from sync.conflict_note import shown
from sync.espocrm_facts import EspoFacts
from sync.sync_log import log_record

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

PARALLEL = 8
# Answers that say the EspoCRM write was not applied (unlike a timeout or a 5xx, whose write may have landed).
REFUSED = (ValidationError, ForbiddenError, NotFoundError, AuthenticationError)


class Outcome(StrEnum):
    LINKED = "linked"
    WOULD_LINK = "would_link"  # dry run
    ALREADY = "already_linked"  # done before (idempotent, resumable)
    RECORD_LINKED_OTHER = "record_linked_to_other"
    BETNR_TAKEN = "betnr_linked_elsewhere"
    ESPO_GONE = "espocrm_record_gone"
    ADVO_GONE = "advoware_beteiligter_gone"
    MISMATCH = "does_not_match"  # the row names two different parties (a mistyped betnr)
    BUSY = "busy"
    ERROR = "error"
    DECLINED = "declined"  # a no row: the operator says different parties (stored for the create)
    WOULD_DECLINE = "would_decline"  # dry run
    ALREADY_DECLINED = "already_declined"
    STILL_LINKED = "still_linked"  # a no row for the pair linked now: declining does not unlink


@dataclass
class ApplyResult:
    pair: Pair
    outcome: Outcome
    differences: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    message: str = ""


def note_text(betnr: int, diffs: list[tuple[str, str | None, str | None]], record: dict[str, Any],
              obj: dict[str, Any]) -> str:
    """The Note listing the differences of a linked pair, each value as its system holds it."""
    lines = [f"- **{f}**: EspoCRM {shown(held_value(f, e, record, 'espo'))} / Advoware "
             f"{shown(held_value(f, a, obj, 'advo'))}" + (" → aus Advoware übernommen" if e is None else "")
             for f, e, a in diffs]
    return (f"Mit dem bestehenden Advoware-Beteiligten {betnr} verknüpft (beteiligte-sync match). "
            "Abweichende Werte: nur in Advoware vorhandene wurden übernommen; über zwei verschiedene Werte "
            "entscheidet der nächste Abgleich nach der Konfliktregel der Gruppe:\n" + "\n".join(lines))


class PairLinker:
    def __init__(self, espo: EspoCRMAPI, advo: AdvowareAPI, store: SyncStateStore, *, write: bool,
                 clock: Callable[[], float], facts: EspoFacts | None = None) -> None:
        self.espo = espo
        self.facts = facts or EspoFacts(espo)  # enum options: values filled in go through the value map
        self.advo = advo
        self.store = store
        self.write = write
        self.clock = clock
        self.linked: dict[int, str] = {}

    async def link(self, pair: Pair) -> ApplyResult:
        token = await self.store.acquire(pair.espo_id) if self.write else "dry-run"
        if token is None:
            return ApplyResult(pair, Outcome.BUSY, message="a sync holds the record: run --apply again")
        try:
            return await self._link(pair)
        except (ApiError, MappingError) as exc:
            return ApplyResult(pair, Outcome.ERROR, message=str(exc))
        finally:
            if self.write:
                await self.store.release(pair.espo_id, token)

    async def load_linked(self) -> None:
        """Which EspoCRM record carries which ``betnr`` (one paged read before the pairs): a Beteiligter
        linked by hand or before a reset of the link store is not linked a second time."""
        where = [{"type": "isNotNull", "attribute": "betnr"}]
        self.linked = {int(r["betnr"]): str(r["id"])
                       async for r in self.espo.iter_list(ENTITY, where=where, select=["betnr"]) if r.get("betnr")}

    async def _owner(self, pair: Pair) -> str | None:
        """Another EspoCRM record linked to this Beteiligter: by our links, or by its ``betnr``."""
        for owner in (await self.store.betnr_owner(pair.betnr), self.linked.get(pair.betnr)):
            if owner is not None and owner != pair.espo_id:
                return owner
        return None

    def _note_key(self, pair: Pair) -> str:
        return f"{self.store.prefix}:match_note:{pair.espo_id}"

    async def _post_owed_note(self, pair: Pair) -> None:
        text = as_text(await self.store.redis.get(self._note_key(pair)))
        if text:
            await self.espo.post_note(ENTITY, pair.espo_id, text)
            await self.store.redis.delete(self._note_key(pair))

    async def _save_base(self, pair: Pair, obj: dict[str, Any], espo_vals: Canonical, advo_vals: Canonical) -> None:
        espo_fp, advo_fp = first_base(espo_vals, advo_vals)
        await self.store.save_link(pair.espo_id, Link(betnr=pair.betnr, row_id=obj.get("rowId"), espo=espo_fp,
                                                      advo=advo_fp, synced_at=self.clock()))

    async def _link(self, pair: Pair) -> ApplyResult:
        try:
            record = await self.espo.get(ENTITY, pair.espo_id)
        except NotFoundError:
            return ApplyResult(pair, Outcome.ESPO_GONE, message="no such EspoCRM record")
        if record.get("betnr") == pair.betnr:
            if self.write:
                await self._post_owed_note(pair)
            return ApplyResult(pair, Outcome.ALREADY)
        if record.get("betnr"):
            return ApplyResult(pair, Outcome.RECORD_LINKED_OTHER, message=f"linked to betnr {record['betnr']}")
        owner = await self._owner(pair)
        if owner is not None:
            return ApplyResult(pair, Outcome.BETNR_TAKEN, message=f"linked to EspoCRM record {owner}")
        try:
            obj = await self.advo.get_beteiligter(pair.betnr)
        except NotFoundError:
            return ApplyResult(pair, Outcome.ADVO_GONE, message="no such Beteiligter in Advoware")
        if not plausible(party_from_espo(record), party_from_advoware(obj)):
            return ApplyResult(pair, Outcome.MISMATCH, message=(
                f"line {pair.line}: EspoCRM {pair.espo_id} and Beteiligter {pair.betnr} match by no rule and their "
                "names differ: check the betnr on that line (or enter it in the record's betnr in EspoCRM)"))
        espo_vals, advo_vals = espo_to_canonical(record), advoware_to_canonical(obj)
        diffs = differences(espo_vals, advo_vals)
        if not self.write:
            return ApplyResult(pair, Outcome.WOULD_LINK, diffs)
        taken = await self.store.claim_betnr(pair.betnr, pair.espo_id)  # atomic against a concurrent link
        if taken is not None:
            return ApplyResult(pair, Outcome.BETNR_TAKEN, message=f"linked to EspoCRM record {taken}")
        try:
            return await self._write(pair, record, obj, espo_vals, advo_vals, diffs)
        except BaseException:
            if await self.store.get_link(pair.espo_id) is None:  # a lost write stays linked, and claimed
                await self.store.release_betnr(pair.betnr, pair.espo_id)
            raise

    async def _write(self, pair: Pair, record: dict[str, Any], obj: dict[str, Any], espo_vals: Canonical,
                     advo_vals: Canonical, diffs: list[tuple[str, str | None, str | None]]) -> ApplyResult:
        fill = fill_from_advoware(espo_vals, advo_vals)
        await self._save_base(pair, obj, {**espo_vals, **fill}, advo_vals)  # before: a lost write stays linked
        if diffs:  # owed until posted: a run interrupted before the Note posts it when run again
            await self.store.redis.set(self._note_key(pair), note_text(pair.betnr, diffs, record, obj))
        try:
            updated = await self.espo.update(ENTITY, pair.espo_id, {
                **canonical_to_espo(fill, obj), "betnr": pair.betnr, "advowareRowId": obj.get("rowId"),
                "syncStatus": SyncStatus.PENDING})
        except REFUSED:  # the EspoCRM write surely did not land: nothing is linked
            await self.store.drop_link(pair.espo_id)
            await self.store.redis.delete(self._note_key(pair))
            raise
        written = espo_to_canonical(updated)  # what EspoCRM made of the values filled in (it normalises some)
        await self._save_base(pair, obj, {**espo_vals, **{f: written[f] for f in fill}}, advo_vals)
        await self._post_owed_note(pair)
        log_record(logging.INFO, "linked an existing pair", espo_id=pair.espo_id, betnr=pair.betnr,
                   decision="match_apply", rule=pair.rule, differences=len(diffs))
        return ApplyResult(pair, Outcome.LINKED, diffs)


async def apply_pairs(linker: PairLinker, pairs: list[Pair],
                      on_result: Callable[[ApplyResult], None] = lambda r: None) -> list[ApplyResult]:
    """Every pair, ``PARALLEL`` at a time; ``on_result`` after each (a progress bar)."""
    await linker.facts.load()
    await linker.load_linked()
    gate = asyncio.Semaphore(PARALLEL)

    async def one(pair: Pair) -> ApplyResult:
        async with gate:
            result = await linker.link(pair)
        on_result(result)
        return result

    return list(await asyncio.gather(*(one(p) for p in pairs)))


async def decline_pairs(declines: MatchDeclines, store: SyncStateStore, pairs: list[Pair], *,
                        write: bool) -> list[ApplyResult]:
    """The ``no`` rows: each pair is stored as different parties, so the create of the record no longer
    waits for that Beteiligter (idempotent: a pair stored before is ``already_declined``). A pair that
    is linked now is not declined (``still_linked``): a ``no`` does not unlink."""
    out = []
    links = await store.get_links([p.espo_id for p in pairs])
    for pair in pairs:
        link = links.get(pair.espo_id)
        if link is not None and link.betnr == pair.betnr:
            out.append(ApplyResult(pair, Outcome.STILL_LINKED,
                                   message="linked to this Beteiligter: a no row does not unlink them; to make "
                                           "it another party, clear betnr in the EspoCRM record (the next sync "
                                           "creates it anew in Advoware)"))
            continue
        if write:
            new = await declines.add(pair.espo_id, [pair.betnr])
            outcome = Outcome.DECLINED if new else Outcome.ALREADY_DECLINED
        else:
            known = pair.betnr in await declines.of(pair.espo_id)
            outcome = Outcome.ALREADY_DECLINED if known else Outcome.WOULD_DECLINE
        out.append(ApplyResult(pair, outcome))
    return out


async def forget_declines(declines: MatchDeclines, results: list[ApplyResult]) -> None:
    """A pair linked (``yes``) takes back a decline of the same pair stored before."""
    for r in results:
        if r.outcome in (Outcome.LINKED, Outcome.ALREADY):
            await declines.forget(r.pair.espo_id, r.pair.betnr)
