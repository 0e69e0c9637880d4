"""The history and the day counters behind ``history``, ``status`` and ``/status``, on a real Redis:
bounded per record (50 entries, 30 days), newest first, no client values; counters per UTC day, shared
by every client of the store; the last sync check; a Redis error never fails the sync that wrote them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.history_store import MAX_AGE_DAYS, MAX_ENTRIES, HistoryStore
from adapters.ops_counters import OpsCounters
from domain.decision import Conflict, Decision
from domain.sync_status import Action, SyncStatus
from sync.sync_journal import SyncJournal
from sync.sync_result import SyncResult
from tests.conftest import synced_record
from tests.testbed import Testbed

pytestmark = pytest.mark.redis
DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(real_redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(real_redis_url)
    await client.flushall()
    yield client
    await client.aclose()


def _update(espo_id: str = "e1", *, conflicts: int = 0) -> SyncResult:
    found = tuple(Conflict("kontakt", "emailAddress", "a@x.de", "b@x.de", "espocrm", "field_merge")
                  for _ in range(conflicts))
    decision = Decision(Action.UPDATE, to_advoware={"addressCity": "Köln"}, to_espo={"phoneNumber": "+49301"},
                        conflicts=found)
    return SyncResult(espo_id, 1001, Action.UPDATE, SyncStatus.CLEAN, decision)


async def test_history_keeps_the_newest_50_entries_without_client_values(redis: Redis) -> None:
    clock = Clock()
    journal = SyncJournal(redis, clock=clock)
    for i in range(MAX_ENTRIES + 10):
        clock.now = T0 + i
        await journal.note(_update(conflicts=1), f"t{i}")
    entries = await HistoryStore(redis, clock=clock).read("e1", limit=500)
    assert len(entries) == MAX_ENTRIES
    assert [e.trigger for e in entries[:2]] == [f"t{MAX_ENTRIES + 9}", f"t{MAX_ENTRIES + 8}"]
    assert entries[0].to_advoware == ["addressCity"] and entries[0].to_espocrm == ["phoneNumber"]
    assert entries[0].conflicts == [{"field": "emailAddress", "group": "kontakt", "winner": "espocrm",
                                     "strategy": "field_merge"}]
    stored = " ".join(_text(raw) for raw in await redis.lrange("bsync:history:e1", 0, -1))
    assert "Köln" not in stored and "a@x.de" not in stored and "+49301" not in stored
    assert 0 < await redis.ttl("bsync:history:e1") <= MAX_AGE_DAYS * DAY


async def test_history_older_than_30_days_is_not_shown(redis: Redis) -> None:
    clock = Clock()
    journal = SyncJournal(redis, clock=clock)
    await journal.note(_update(), "old")
    clock.now = T0 + MAX_AGE_DAYS * DAY - 60
    await journal.note(_update(), "recent")
    clock.now = T0 + MAX_AGE_DAYS * DAY + 60
    assert [e.trigger for e in await HistoryStore(redis, clock=clock).read("e1")] == ["recent"]


async def test_handovers_and_proved_echoes_are_not_decisions(redis: Redis) -> None:
    journal = SyncJournal(redis, clock=Clock())
    for action in (Action.SKIP_IN_SYNC, Action.COVERED_BY_HOLDER):
        await journal.note(SyncResult("e1", None, action, SyncStatus.CLEAN), "webhook_update")
    assert await HistoryStore(redis).read("e1") == []
    assert all(d.total == 0 for d in await OpsCounters(redis, clock=Clock()).days())


async def test_counters_per_utc_day_over_seven_days_shared_by_every_client(redis: Redis, real_redis_url: str) -> None:
    clock = Clock()
    journal = SyncJournal(redis, clock=clock)
    await journal.note(_update(conflicts=2), "webhook_update")
    await journal.note(SyncResult("e2", 7, Action.FAILED, SyncStatus.FAILED, message="HTTP 500"), "webhook_update")
    clock.now = T0 + 2 * DAY
    await journal.note(SyncResult("e2", 7, Action.FAILED, SyncStatus.PERMANENTLY_FAILED), "sync_check")
    await journal.note(_update(), "sync_check")
    other = Redis.from_url(real_redis_url)  # another process's client sees the same figures
    try:
        days = await OpsCounters(other, clock=clock).days()
    finally:
        await other.aclose()
    assert [d.day for d in days][-3:] == ["2026-09-21", "2026-09-22", "2026-09-23"] and len(days) == 7
    first, today = days[-3], days[-1]
    assert (first.syncs, first.conflicts, first.failures) == ({"clean": 1, "failed": 1}, 2, 1)
    assert (today.syncs, today.conflicts, today.failures) == ({"clean": 1, "permanently_failed": 1}, 0, 1)
    assert days[-2].total == 0 and days[0].total == 0


async def test_the_last_sync_check_is_kept(redis: Redis) -> None:
    counters = OpsCounters(redis, clock=Clock())
    assert await counters.last_check() is None
    await counters.save_check(scanned=12, queued=3, deletes=1, held=None)
    check = await counters.last_check()
    assert check is not None
    assert check.describe() == "2026-09-21T14:13:20+00:00: scanned 12, queued 3 records and 1 deletes"


async def test_a_store_error_never_fails_the_sync_that_wrote_it(real_redis_url: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    broken = Redis.from_url(real_redis_url.rsplit(":", 1)[0] + ":1", socket_connect_timeout=1)
    try:
        await SyncJournal(broken, clock=Clock()).note(_update(), "webhook_update")  # logs, does not raise
    finally:
        await broken.aclose()
    assert "sync history not written" in caplog.text and "espo_id=e1 betnr=1001 decision=update" in caplog.text


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)



async def test_the_sync_writes_each_decision_and_a_delete_ends_the_history(tb: Testbed) -> None:
    """Through the running testbed (webhooks, the event bus, the sync): create, an edit, the delete."""
    espo_id = (await synced_record(tb))["id"]
    tb.espo.user_edit(espo_id, addressCity="Potsdam")
    await tb.flush()
    tb.espo.user_delete(espo_id)
    await tb.flush()
    history = HistoryStore(tb.services.redis, clock=tb.clock)
    entries = await history.read(espo_id)
    assert [(e.trigger, e.action) for e in entries] == [
        ("delete", "unlinked"), ("webhook_update", "update"), ("webhook_create", "create")]
    assert entries[1].to_advoware == ["addressCity"] and entries[0].status == "deleted"
    today = (await OpsCounters(tb.services.redis, clock=tb.clock).days())[-1]
    assert today.syncs == {"clean": 2, "deleted": 1}
