"""The sync check's reads, streamed: both systems page by page at the same time, never all records.

Per EspoCRM page, everything EspoCRM and our store can tell is decided at once (never synced, retry
due, stuck, changed in EspoCRM, ...); what only Advoware can tell (its twin missing or changed, a
failed record's twin moved) is kept as a small note per record (its id, ``betnr`` and a hash of the
``rowId`` it had at the last sync). Advoware's list is read at the same time, keeping a hash of each
twin's ``rowId``. Once both are read, a note whose twin kept its ``rowId`` is in sync (Advoware's
fast path); the few others, and the work items that need their twin for the preview (dry run, mass-
change guard), get their twin: one ``GET`` each when that is fewer requests than a second pass over
Advoware's list, otherwise that pass, keeping only the twins asked for. Memory: a few dozen bytes per
record instead of both systems' records. Without a list endpoint, each EspoCRM page's linked twins are
read with single ``GET``s right away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.errors import NotFoundError
from adapters.sync_state_store import Link, RetryState, SyncStateStore
from domain.beteiligte_mapper import MappingError, advoware_to_canonical, espo_to_canonical
from domain.decision import fingerprint
from sync.check_plan import CheckPlan, WorkItem
from sync.sync_failure_writer import espo_fingerprint

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

log = logging.getLogger(__name__)
K = TypeVar("K")
ENTITY = "CBeteiligte"
PAGE = 200
PROGRESS_EVERY_PAGES = 25
DROP_GRACE_S = 5.0  # a dropped read-ahead page is waited for this long at most
# (work item, EspoCRM record, link, twin) -> the item with what a sync would do
Preview = Callable[[WorkItem, dict[str, Any], Link | None, dict[str, Any] | None], WorkItem]


@dataclass(slots=True)
class Note:
    """A record whose verdict needs its Advoware twin: ``retry`` set for a failed record."""

    espo_id: str
    betnr: int
    row_hash: int | None  # hash of the rowId of the last sync (link) or of the failure (retry)
    retry: RetryState | None = None


@dataclass
class Pending:
    """A work item waiting for its twin (the preview needs it)."""

    item: WorkItem
    rec: dict[str, Any]


@dataclass
class Scan:
    espo: EspoCRMAPI
    advo: AdvowareAPI
    store: SyncStateStore
    preview: Preview
    get_concurrency: int
    plan: CheckPlan
    now: float
    select: list[str]
    notes: list[Note] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # EspoCRM ids (hex) as ints: for links whose record is gone
    rows: dict[int, int | None] = field(default_factory=dict)  # betNr -> hash(rowId), from Advoware's list
    advo_pages: int = 0
    espo_pages: int = 0
    # Held records (a possible duplicate): asked again whether anything still holds them (onboarding.hold_recheck)
    recheck: Callable[[dict[str, Any]], Awaitable[bool]] | None = None
    held: list[Pending] = field(default_factory=list)

    # -- reading --------------------------------------------------------------------------------
    async def read_espocrm(self, twins_now: bool = False) -> None:
        """Page by page, the next page asked for while this one is judged (one page read ahead)."""
        offset = 0
        ahead: asyncio.Future[dict[str, Any]] | None = self._espo_list(offset)
        try:
            while ahead is not None:
                page = await ahead
                records: list[dict[str, Any]] = page["list"]
                offset += len(records)
                more = len(records) == PAGE and offset < int(page["total"])
                ahead = self._espo_list(offset) if more else None
                if not records:
                    break
                self.espo_pages += 1
                await self._espo_page(records, twins_now)
                self._progress()
        finally:
            await _drop(ahead)

    def _espo_list(self, offset: int) -> asyncio.Future[dict[str, Any]]:
        return asyncio.ensure_future(self.espo.list(ENTITY, select=self.select, order_by="createdAt", order="asc",
                                                    max_size=PAGE, offset=offset))

    async def read_advoware(self) -> None:
        """Page by page, one page read ahead; only a hash of each ``rowId`` is kept."""
        skip = 0
        ahead: asyncio.Future[list[dict[str, Any]]] | None = self._advo_list(skip)
        try:
            while ahead is not None:
                page = await ahead
                skip += len(page)
                ahead = self._advo_list(skip) if len(page) == PAGE else None
                for obj in page:
                    self.rows[int(obj["betNr"])] = _hash(obj.get("rowId"))
                if page:
                    self.advo_pages += 1
                    self._progress()
        finally:
            await _drop(ahead)

    def _advo_list(self, skip: int) -> asyncio.Future[list[dict[str, Any]]]:
        return asyncio.ensure_future(self.advo.list_beteiligte(skip=skip, take=PAGE))

    def _progress(self) -> None:
        if (self.espo_pages + self.advo_pages) % PROGRESS_EVERY_PAGES == 0:
            log.info("sync check: %d EspoCRM records read (%d pages), %d Advoware Beteiligte, %d to sync so far",
                     self.plan.scanned, self.espo_pages, len(self.rows), len(self.plan.work) + len(self.pending))

    async def _espo_page(self, records: list[dict[str, Any]], twins_now: bool) -> None:
        ids = [r["id"] for r in records]
        links = await self.store.get_links(ids)
        await self.store.upgrade_links(links)  # bases from before the fingerprint key: keyed, no plain one stays
        retries = await self.store.get_retries(ids)
        locked = await self.store.locked_ids([r["id"] for r in records if r.get("syncStatus") == "syncing"])
        self.plan.scanned += len(records)
        self.seen.update(id_int(i) for i in ids)
        for rec in records:
            if rec.get("betnr"):
                self.plan.linked += 1
            self._judge(rec, links.get(rec["id"]), retries.get(rec["id"]), rec["id"] in locked)
        if twins_now:  # no list endpoint: this page's twins now, one GET each
            await self.resolve(get_only=True)

    def _judge(self, rec: dict[str, Any], link: Link | None, retry: RetryState | None, locked: bool) -> None:
        """Everything EspoCRM and the store tell; a :class:`Note` when Advoware must tell the rest."""
        espo_id, status = rec["id"], rec.get("syncStatus")
        betnr = int(rec["betnr"]) if rec.get("betnr") else None

        def work(reason: str) -> None:
            self.pending.append(Pending(WorkItem(espo_id, betnr, reason), rec))

        if status == "syncing":
            if not locked:
                work("stuck in syncing without a lock")
            return
        if retry is not None:
            # a create linked to an existing Beteiligter whose release failed: the record has no betnr yet
            twin = betnr if betnr is not None else (link.betnr if link is not None else None)
            if retry.fatal or status == "permanently_failed":
                if espo_fingerprint(rec) != retry.espo_fp:
                    work("changed since it failed")
                elif retry.held and twin is None:
                    self.held.append(Pending(WorkItem(espo_id, betnr, "held: nothing holds it any more"), rec))
                elif twin is not None:
                    self.notes.append(Note(espo_id, twin, _hash(retry.advo_row_id), retry))
                elif not retry.fatal and retry.next_at <= self.now:
                    work("slow retry after giving up")
            elif retry.next_at <= self.now:
                work(f"retry due ({status})")
            return
        if status in ("pending_sync", "failed", "permanently_failed"):
            return work(f"status {status}")
        if betnr is None:
            return work("never synced")
        if link is None:
            return work("no base of the last sync")
        if link.betnr != betnr:
            return work("relinked to another betnr")
        try:
            if fingerprint(espo_to_canonical(rec)) != link.espo:
                return work("changed in EspoCRM")
        except MappingError:
            return work("unreadable EspoCRM values")
        self.notes.append(Note(espo_id, betnr, _hash(link.row_id)))

    # -- after both reads ------------------------------------------------------------------------
    async def resolve(self, *, get_only: bool = False) -> None:
        """Settle the notes and preview the work with the twins needed (``get_only``: no list read)."""
        notes, self.notes = self.notes, []
        pending, self.pending = self.pending, []
        pending += await self._released()
        if not get_only:  # the rowId fast path: a twin that kept its rowId was not written
            notes = [n for n in notes if n.retry is not None or n.row_hash is None or n.betnr not in self.rows
                     or self.rows[n.betnr] != n.row_hash]
        wanted = {n.betnr for n in notes} | {p.item.betnr for p in pending if p.item.betnr is not None}
        twins = await self._twins(wanted, get_only)
        links = await self.store.get_links([n.espo_id for n in notes] + [p.item.espo_id for p in pending])
        found = [(n, reason) for n in notes
                 if (reason := self._verdict(n, links.get(n.espo_id), twins.get(n.betnr))) is not None]
        records = await gather_limited(self.get_concurrency, [self._get_record(n.espo_id) for n, _ in found])
        pending += [Pending(WorkItem(n.espo_id, n.betnr, reason), records[n.espo_id])
                    for n, reason in found if records.get(n.espo_id) is not None]
        for p in pending:
            twin = twins.get(p.item.betnr) if p.item.betnr is not None else None
            self.plan.work.append(self.preview(p.item, p.rec, links.get(p.item.espo_id), twin))

    async def _released(self) -> list[Pending]:
        held, self.held = self.held, []
        if self.recheck is None or not held:
            return []
        recheck = self.recheck
        free = await gather_limited(self.get_concurrency, [_ask(recheck, p) for p in held])
        return [p for p in held if free.get(p.item.espo_id)]

    def _verdict(self, note: Note, link: Link | None, twin: dict[str, Any] | None) -> str | None:
        if note.retry is not None:
            retry = note.retry
            if twin is not None and _hash(twin.get("rowId")) != note.row_hash:
                return "changed since it failed"
            if retry.fatal or retry.next_at > self.now:
                return None
            return "slow retry after giving up"
        if link is None:  # the link went away meanwhile (a sync or a delete): the sync decides
            return None
        if twin is None:
            return "missing in Advoware"
        if twin.get("rowId") != link.row_id and fingerprint(advoware_to_canonical(twin)) != link.advo:
            return "changed in Advoware"
        return None

    async def _twins(self, betnrs: set[int], get_only: bool) -> dict[int, dict[str, Any] | None]:
        if not betnrs:
            return {}
        known = betnrs if get_only else {b for b in betnrs if b in self.rows}
        if not get_only and len(known) > max(1, len(self.rows) // PAGE):  # a pass is fewer requests
            twins: dict[int, dict[str, Any] | None] = {}
            async for obj in self.advo.iter_beteiligte(page_size=PAGE):
                if int(obj["betNr"]) in known:
                    twins[int(obj["betNr"])] = obj
            return twins
        return await gather_limited(self.get_concurrency, [self._get_twin(b) for b in known])

    async def _get_record(self, espo_id: str) -> tuple[str, dict[str, Any] | None]:
        try:
            return espo_id, await self.espo.get(ENTITY, espo_id)
        except NotFoundError:  # deleted since the list: the delete webhook (or the next check) has it
            return espo_id, None

    async def _get_twin(self, betnr: int) -> tuple[int, dict[str, Any] | None]:
        try:
            return betnr, await self.advo.get_beteiligter(betnr)
        except NotFoundError:
            return betnr, None


async def _drop(ahead: asyncio.Future[Any] | None) -> None:
    """A failed page stops a read: the page asked for ahead is dropped, its answer too. Waited for at
    most DROP_GRACE_S (a cancel can be swallowed: see :mod:`adapters.background`), then left behind."""
    if ahead is not None:
        ahead.cancel()
        await asyncio.wait({ahead}, timeout=DROP_GRACE_S)
        ahead.add_done_callback(lambda f: None if f.cancelled() else f.exception())


async def gather_limited(limit: int, calls: list[Awaitable[tuple[K, Any]]]) -> dict[K, Any]:
    """Run ``calls`` with at most ``limit`` at once; their ``(key, value)`` answers as a dict."""
    sem = asyncio.Semaphore(limit)

    async def one(call: Awaitable[tuple[K, Any]]) -> tuple[K, Any]:
        async with sem:
            return await call

    return dict(await asyncio.gather(*(one(c) for c in calls)))


def _hash(row_id: Any) -> int | None:
    return None if row_id is None else hash(str(row_id))


def id_int(espo_id: str) -> int:
    """An EspoCRM id (17 hex digits) as an int: a third of the memory of the string in a set."""
    try:
        return int(espo_id, 16)
    except ValueError:
        return hash(espo_id)


async def _ask(recheck: Callable[[dict[str, Any]], Awaitable[bool]], p: Pending) -> tuple[str, bool]:
    return p.item.espo_id, await recheck(p.rec)
