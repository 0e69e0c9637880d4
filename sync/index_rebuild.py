"""The match key index, built from every Advoware Beteiligter: by ``beteiligte-sync match``, and again by
the sync itself when a create finds the index lost with the store (issue 17: Redis came back empty).

The create lookup (:mod:`sync.create_match`) finds an existing party only through the index. Without
it, a new EspoCRM copy of an existing Advoware client would be created a second time. A missing index
is either one never built (``match`` never ran: the create goes ahead without a lookup, as before) or
one lost with the store. Everything in Redis goes at once, so the store carries a mark,
``bsync:store_since``, set the first time a create finds it missing on a store that is new: EspoCRM
has no linked record (``betnr`` set) yet. A create that finds neither the index nor the mark while
EspoCRM has linked records is on an emptied store: :meth:`IndexRebuild.ensure` rebuilds the index
first (``ON_CREATE_MATCH`` ``link`` or ``ask``; ``create`` never looks). One process builds at a time
(the lock ``bsync:mbuild``, extended batch by batch); a create arriving meanwhile waits up to
:data:`WAIT_S`, and is otherwise held: the record stays ``pending_sync`` with a readable
``syncErrorMessage`` (:class:`IndexRebuilding`, not counted as a failure) and the sync check tries it
again. Without Advoware's list endpoint no index can exist; the create goes ahead as before.

Limit: a store emptied before EspoCRM held any linked record looks new; an index ``match`` built on
it is then not rebuilt (run ``match`` again).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.errors import DeferredError, StaleWriteError
from adapters.match_index import IndexState, MatchKeyIndex
from adapters.redis_ops import delete_if_equals, extend_if_equals
from domain.match_keys import strong_keys, weak_keys
from domain.match_party import party_from_advoware
from domain.sync_status import ENTITY

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

log = logging.getLogger(__name__)

INDEX_BATCH = 500
EMPTY_WATERMARK = "1900-01-01T00:00:00.000"
PAGE = 200  # Advoware's largest page
OVERLAP = 20  # parties each page re-reads of the one before (see every_beteiligter)
LOCK_TTL_MS = 120_000  # extended after every batch: a builder that died frees it after this
WAIT_S = 4.0  # a create waits this long for another process's build before it is held
POLL_S = 0.2
RETRY_AFTER_S = 60.0


def index_entries(objs: list[dict[str, Any]]) -> list[tuple[int, list[str]]]:
    out = []
    for o in objs:
        party = party_from_advoware(o)
        out.append((int(o["betNr"]), strong_keys(party) + weak_keys(party)))
    return out


class IndexLost(StaleWriteError):
    """The index vanished while a create looked up in it (the store was emptied meanwhile): the record
    is decided again, and that create finds no index and rebuilds it."""


class IndexRebuilding(DeferredError):
    """A create held until the match index is rebuilt (not counted as a failure of the record)."""


async def every_beteiligter(advo: AdvowareAPI, page_size: int = PAGE) -> AsyncIterator[dict[str, Any]]:
    """Every Beteiligter, paged by ``skip`` in ``geaendertAm`` order, pages overlapping by
    :data:`OVERLAP`. Staff editing a Beteiligter already read moves it to the end and shifts the rest
    forward: with plain pages the next one would skip a party. A page is trusted only when it holds an
    anchor, a party read before and unchanged since (everything before it in the order was read then);
    without one the scan steps back a page. An edited party is yielded again, with its new values."""
    seen: dict[int, str] = {}
    skip = 0
    while True:
        page = await advo.list_beteiligte(skip=skip, take=page_size)
        anchored = skip == 0 or any(seen.get(int(o["betNr"])) == str(o.get("geaendertAm")) for o in page)
        if not anchored and page:
            skip = max(0, skip - page_size)
            continue
        for obj in page:
            stamp = str(obj.get("geaendertAm"))
            if seen.get(int(obj["betNr"])) != stamp:
                seen[int(obj["betNr"])] = stamp
                yield obj
        if len(page) < page_size:
            return
        skip += len(page) - OVERLAP


async def build_index(advo: AdvowareAPI, keys: MatchKeyIndex, *,
                      on_each: Callable[[dict[str, Any]], None] = lambda _obj: None,
                      on_batch: Callable[[], Any] | None = None) -> int:
    """Every Beteiligter into the index, the ones gone since an earlier build out, then the watermark
    (the index counts as built only from here on). Returns how many were indexed."""
    batch: list[dict[str, Any]] = []
    water = ""
    seen: set[int] = set()
    async for obj in every_beteiligter(advo):
        on_each(obj)
        seen.add(int(obj["betNr"]))
        batch.append(obj)
        water = max(water, str(obj.get("geaendertAm") or ""))
        if len(batch) >= INDEX_BATCH:
            await keys.put_many(index_entries(batch))
            batch = []
            if on_batch is not None:
                await on_batch()
    await keys.put_many(index_entries(batch))
    await keys.prune(seen)  # Beteiligte gone since an earlier build leave the index
    await keys.complete(water or EMPTY_WATERMARK)  # the index exists, even of an empty Advoware
    return len(seen)


class IndexRebuild:
    def __init__(self, advo: AdvowareAPI, index: MatchKeyIndex, espo: EspoCRMAPI | None = None, *,
                 wait_s: float = WAIT_S) -> None:
        self.advo = advo
        self.index = index
        self.espo = espo
        self.wait_s = wait_s

    @property
    def _lock(self) -> str:
        return f"{self.index.prefix}:mbuild"

    @property
    def _since(self) -> str:
        return f"{self.index.prefix}:store_since"

    async def ensure(self, state: IndexState) -> IndexState:
        """The index's state, rebuilt first when the store lost it; raises :class:`IndexRebuilding`
        while another process builds it for longer than :data:`WAIT_S`."""
        if state.built or (not state.other_key and await self.index.redis.exists(self._since)):
            return state
        if not (state.other_key or await self._emptied()) or not await self.advo.supports_list():
            await self._mark()
            return state
        token = secrets.token_hex(8)
        if await self.index.redis.set(self._lock, token, nx=True, px=LOCK_TTL_MS):
            try:
                state = await self._build(token)
                await self._mark()
                return state
            finally:
                await delete_if_equals(self.index.redis, self._lock, token)
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            state = await self.index.state()
            if state.built:
                return state
        raise IndexRebuilding("not created in Advoware yet: the match index that finds an existing Beteiligter "
                              "before a create is being rebuilt (the sync's store was emptied); held until it "
                              "is complete, never created blindly", retry_after=RETRY_AFTER_S, system="advoware")

    async def _emptied(self) -> bool:
        """No mark, and EspoCRM already holds linked records: the store lost what it had."""
        if self.espo is None:
            return False
        page = await self.espo.list(ENTITY, where=[{"type": "isNotNull", "attribute": "betnr"}], select=["id"],
                                    max_size=1)
        return bool(page.get("total") or page.get("list"))

    async def _mark(self) -> None:
        await self.index.redis.set(self._since, datetime.now(UTC).isoformat(timespec="seconds"), nx=True)

    async def _build(self, token: str) -> IndexState:
        started = time.monotonic()
        log.warning("match index lost with the store (Redis came back empty): rebuilding it from Advoware; "
                    "creates wait for it")

        async def still_mine() -> None:
            await extend_if_equals(self.index.redis, self._lock, token, LOCK_TTL_MS)

        count = await build_index(self.advo, self.index, on_batch=still_mine)
        log.warning("match index rebuilt: %d Beteiligte in %.1f s", count, time.monotonic() - started)
        return await self.index.state()
