"""Hostile: the change feed turned off because the list ignored its since parameter must come back on by
itself once the list honours it (the finding expires in Redis), and then bring what changed while it was
off: turned off wrongly for good, Advoware's edits would wait for the sync check forever."""

from __future__ import annotations

from sync.advoware_feed import FeedState
from sync.feed_since import SINCE_RECHECK_S
from tests.test_advoware_feed import linked, poll, settled
from tests.test_advoware_feed_since import old_row
from tests.testbed import Testbed


async def test_the_feed_comes_back_when_the_finding_expires_and_brings_what_changed(firm: Testbed) -> None:
    tb = firm
    [rec] = await linked(tb, 1)
    old_row(tb)
    await settled(tb)
    feed = tb.services.feed
    assert feed is not None
    tb.advo.ignore_since = True
    await poll(tb)
    assert feed.status.state == FeedState.SINCE_IGNORED
    key = f"{tb.services.store.prefix}:feed:since_ignored"
    assert 0 < await tb.services.store.redis.ttl(key) <= SINCE_RECHECK_S  # asked again within the hour
    tb.advo.edit(rec["betnr"], ort="Während aus")  # changed while the feed is off
    tb.advo.ignore_since = False  # the firm fixed list_since_param (or Advoware now honours it)
    await tb.services.store.redis.delete(key)  # the hour is over: the key expired
    await poll(tb)
    await tb.flush()
    assert feed.status.state == FeedState.RUNNING
    assert tb.espo_record(rec["id"])["addressCity"] == "Während aus"
