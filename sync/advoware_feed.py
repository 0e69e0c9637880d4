"""Advoware's changes within seconds (issue 20): Advoware has no webhooks, so one process at a time (the
feed's cron step, ``ADVOWARE_POLL_SECONDS``) reads the list endpoint from its watermark and queues a
sync of every linked Beteiligter whose ``rowId`` is not the one of its last sync; the changes of parties
no record links go into the match index. The full sync check stays the safety net.

Time: ``geaendertAm`` is the firm's local time without an offset, several rows share one stamp, and the
clocks of Advoware and of this service differ. So each poll reads from the watermark minus
:data:`OVERLAP` (and minus :data:`DST_OVERLAP` in the hour after the clocks went back, whose stamps
repeat), and a row read again is recognised by its ``rowId`` (the link's, or the ones queued already),
not by its stamp. The watermark is the newest stamp read, never later: rows that arrive later with the
same or an earlier stamp fall inside the next read. Our clock matters only without a watermark: then
the feed starts :data:`START_MARGIN` back.

Cost: an idle poll is one list request and no write; a burst is read :data:`PAGE` rows at a time, at
most :data:`PAGES_PER_POLL` pages that queue syncs per poll and only while fewer than :data:`BACKLOG`
events wait in the queue, so a bulk change in Advoware cannot flood the queue. Rows read once are not
read again while nothing changes in the overlap window (:mod:`sync.feed_cursor`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from adapters.advoware_api import AdvowareAPI
from adapters.advoware_listing import LIST_RECHECK_S
from adapters.match_index import MatchKeyIndex
from adapters.redis_ops import as_text
from adapters.sync_state_store import SyncStateStore
from sync.feed_cursor import CursorMemory
from sync.feed_since import SinceFlag, SinceIgnored, rows_before, since_reason
from sync.index_rebuild import index_entries

log = logging.getLogger(__name__)

FEED_TOPIC = "vmh.beteiligte.sync_check"
FEED_TRIGGER = "advoware_feed"
PAGE = 200
PAGES_PER_POLL = 5  # pages that queue syncs, per poll
READS_PER_POLL = 50  # list reads per poll at most (a window read again queues little: see _read)
BACKLOG = 200  # events queued for the sync: the feed reads no further page until fewer are waiting
# Rows may commit a little after their stamp, or share the newest stamp read: each poll reads this far
# back. Kept short: every row in it is read again by every poll (after a burst, for this long).
OVERLAP = timedelta(seconds=30)
# Without a watermark the feed starts this far back in Advoware's time: our clock and Advoware's differ.
START_MARGIN = timedelta(minutes=5)
DST_OVERLAP = timedelta(minutes=61)  # the hour after the clocks went back: its stamps repeat
QUEUED_MEMORY = 50_000  # betNr -> rowId queued recently: a row read again in the overlap is not queued twice
HOUR_KEEP_S = 2 * 86400


class FeedState(StrEnum):
    OFF = "off"  # ADVOWARE_POLL_SECONDS=0
    NO_LIST = "no_list_endpoint"  # this Advoware does not offer the list endpoint: the full check only
    SINCE_IGNORED = "since_ignored"  # its list ignores the since parameter (sync/feed_since.py): the full check only
    RUNNING = "running"
    FAILING = "failing"


@dataclass
class PollResult:
    state: FeedState
    requests: int = 0
    rows: int = 0
    queued: int = 0
    indexed: int = 0
    watermark: str | None = None
    more: bool = False  # the budget ran out before the end: the next poll goes on
    rereads: int = 0  # times the overlap window was read again from its start (something changed in it)
    error: str = ""


@dataclass
class FeedStatus:
    """What the status page shows of the feed (this process's view)."""

    state: FeedState = FeedState.RUNNING
    last_poll: datetime | None = None
    watermark: str | None = None
    changes_last_hour: int = 0
    error: str = ""
    queued_row: dict[int, str] = field(default_factory=dict)


def overlap(now: datetime, zone: ZoneInfo) -> timedelta:
    """:data:`OVERLAP`, or :data:`DST_OVERLAP` while the firm's clocks went back within the last hour."""
    before = (now - DST_OVERLAP).astimezone(zone).utcoffset()
    after = now.astimezone(zone).utcoffset()
    return DST_OVERLAP if before is not None and after is not None and after < before else OVERLAP


def local_naive(now: datetime, zone: ZoneInfo) -> datetime:
    return now.astimezone(zone).replace(tzinfo=None)


class AdvowareFeed:
    def __init__(self, advo: AdvowareAPI, store: SyncStateStore, index: MatchKeyIndex, *, timezone: str,
                 poll_seconds: int, clock: Callable[[], float]) -> None:
        self.advo = advo
        self.store = store
        self.index = index
        self.zone = ZoneInfo(timezone)
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.status = FeedStatus(state=FeedState.OFF if poll_seconds == 0 else FeedState.RUNNING)
        # Events waiting in the sync's queue (the step host's, set by the runtime): a burst reads on only
        # while fewer than BACKLOG wait, so a webhook never queues behind more than that of the feed's.
        self.queue_depth: Callable[[], int] = lambda: 0
        self._key = f"{store.prefix}:feed"
        self._cursor = CursorMemory()
        param = advo.profile.list_since_param
        self._since = SinceFlag(store.redis, store.prefix, param)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def poll(self, emit: Callable[[dict[str, Any]], Awaitable[None]]) -> PollResult:
        if self.poll_seconds == 0:
            return PollResult(FeedState.OFF)
        if not await self.advo.supports_list():
            if self.status.state != FeedState.NO_LIST:
                declared = self.advo.profile.has_list
                log.warning("advoware feed off: %s; its changes reach EspoCRM at the sync check only "
                            "(SYNC_CHECK_CRON)", f"the list endpoint ADVOWARE_PROFILE names answered 404 (asked "
                            f"again after {LIST_RECHECK_S:.0f} s; doctor --advoware checks list_endpoint and "
                            "resource_path)" if declared else "this Advoware has no list endpoint")
            self.status.state = FeedState.NO_LIST
            return PollResult(FeedState.NO_LIST)
        if await self._since.is_set():
            return self._since_off()
        now = self._now()
        water = await self._watermark(now)
        result = PollResult(FeedState.RUNNING, watermark=water)
        try:
            await self._read(water, now, emit, result)
        except SinceIgnored:
            await self._since.set()
            return self._since_off()
        except Exception as exc:  # Advoware or Redis away: the next poll tries again from the same watermark
            self._cursor.forget()
            result.state, result.error = FeedState.FAILING, f"{type(exc).__name__}: {exc}"[:300]
        self._remember(result, now)
        return result

    async def _watermark(self, now: datetime) -> str:
        stored = as_text(await self.store.redis.hget(self._key, "water"))
        if stored:
            return stored
        start = (local_naive(now, self.zone) - START_MARGIN).isoformat(timespec="milliseconds")
        log.warning("advoware feed: no watermark (first start, or the store was emptied): reading Advoware's "
                    "changes from %s on; the next sync check catches up on anything older", start)
        await self.store.redis.hset(self._key, "water", start)
        return start

    async def _read(self, water: str, now: datetime, emit: Callable[[dict[str, Any]], Awaitable[None]],
                    result: PollResult) -> None:
        """From the cursor on (see :mod:`sync.feed_cursor`): one page when nothing changed, up to
        :data:`PAGES_PER_POLL` in a burst (the next poll goes on where this one stopped)."""
        back = overlap(now, self.zone)
        start = (datetime.fromisoformat(water) - back).isoformat(timespec="milliseconds")
        token = as_text(await self.store.redis.hget(self._key, "token"))
        window = None if self._cursor.knows(token) else as_text(await self.store.redis.hget(self._key, "window"))
        cursor = self._cursor.load(token, window)
        before = cursor.signature()
        cursor.begin(start, trust=back == OVERLAP, page=PAGE)
        newest, busy = water, 0
        while True:
            if busy == PAGES_PER_POLL or result.requests == READS_PER_POLL or self.queue_depth() >= BACKLOG:
                result.more = True  # webhooks keep their turn: the next poll goes on from the cursor
                break
            page = await self.advo.list_beteiligte(geaendert_seit=cursor.since_dt, skip=cursor.skip, take=PAGE)
            result.requests += 1
            if rows_before(page, cursor.since_dt - back):
                raise SinceIgnored
            fresh = cursor.accept(page)
            if fresh is None:  # the window changed underneath: ask again (see WindowCursor.accept)
                continue
            result.rows += len(fresh)
            queued = result.queued
            await self._handle(fresh, emit, result)
            busy += result.queued > queued  # a page read again queues nothing: it costs a read, not the budget
            newest = max([newest, *(str(r.get("geaendertAm") or "") for r in fresh)])
            if len(page) < PAGE:
                cursor.finish()
                break
        result.rereads = cursor.rereads
        if newest != water or not cursor.token or cursor.signature() != before:
            fields: dict[str, str] = {"water": newest, **cursor.saved()}
            await self.store.redis.hset(self._key, mapping=fields)  # type: ignore[arg-type]
        result.watermark = newest

    async def _handle(self, page: list[dict[str, Any]], emit: Callable[[dict[str, Any]], Awaitable[None]],
                      result: PollResult) -> None:
        betnrs = [int(r["betNr"]) for r in page if isinstance(r.get("betNr"), int)]
        owners = await self.store.owners(betnrs)
        links = await self.store.get_links([o for o in owners.values() if o])
        unlinked = []
        for row in page:
            betnr, row_id = row.get("betNr"), row.get("rowId")
            if not isinstance(betnr, int):
                continue
            owner = owners.get(betnr)
            if owner is None:
                unlinked.append(row)
                continue
            link = links.get(owner)
            if (link is not None and link.row_id == row_id) or self.status.queued_row.get(betnr) == row_id:
                continue  # synced already, or queued by an earlier poll
            await emit({"topic": FEED_TOPIC, "data": {"id": owner, "trigger": FEED_TRIGGER}})
            self._queued(betnr, str(row_id))
            result.queued += 1
        if unlinked and (await self.index.state()).built:
            await self.index.put_many(index_entries(unlinked))
            result.indexed += len(unlinked)
        if result.queued:
            hour = self._now().strftime("%Y-%m-%dT%H")
            await self.store.redis.hincrby(f"{self._key}:hours", hour, result.queued)
            await self.store.redis.expire(f"{self._key}:hours", HOUR_KEEP_S)

    def _queued(self, betnr: int, row_id: str) -> None:
        memo = self.status.queued_row
        memo[betnr] = row_id
        if len(memo) > QUEUED_MEMORY:
            del memo[next(iter(memo))]

    def _since_off(self) -> PollResult:
        reason = since_reason(self._since.param)
        if self.status.state != FeedState.SINCE_IGNORED:
            log.warning("advoware feed off: %s", reason)
        self._cursor.forget()
        self.status.state, self.status.error = FeedState.SINCE_IGNORED, reason
        return PollResult(FeedState.SINCE_IGNORED, error=reason)

    async def since_ignored(self) -> str | None:
        """Why the feed is off when some process found the list ignoring its since parameter (else None)."""
        return since_reason(self._since.param) if await self._since.is_set() else None

    def _remember(self, result: PollResult, now: datetime) -> None:
        s = self.status
        if result.state == FeedState.FAILING and s.state != FeedState.FAILING:
            log.warning("advoware feed failing: %s (polled again every %d s; the sync check stays the safety net)",
                        result.error, self.poll_seconds)
        elif result.state == FeedState.RUNNING and s.state in (FeedState.FAILING, FeedState.NO_LIST,
                                                               FeedState.SINCE_IGNORED):
            log.warning("advoware feed running again")
        s.state, s.last_poll, s.error = result.state, now, result.error
        s.watermark = result.watermark or s.watermark

    async def changes_last_hour(self) -> int:
        hour = self._now().strftime("%Y-%m-%dT%H")
        return int(as_text(await self.store.redis.hget(f"{self._key}:hours", hour)) or 0)

    def lag_seconds(self) -> float | None:
        """Now minus the watermark (in the firm's zone): how far behind Advoware the feed has read."""
        if not self.status.watermark:
            return None
        stamp = datetime.fromisoformat(self.status.watermark).replace(tzinfo=self.zone)
        return max(0.0, (self._now() - stamp.astimezone(UTC)).total_seconds())


async def run_poll(feed: AdvowareFeed, emit: Callable[[dict[str, Any]], Awaitable[None]], metrics: Any) -> PollResult:
    """One poll with its metrics (the feed step's handler)."""
    result = await feed.poll(emit)
    metrics.feed_polls.labels(str(result.state)).inc()
    lag = feed.lag_seconds()
    if lag is not None:
        metrics.feed_lag.set(lag)
    return result
