"""A Redis error in the middle of a sync (Redis stopped or killed, a connection closed) is the
service's own trouble, not the record's: the event is retried by the bus and the record ends clean,
instead of being marked ``failed`` and left for the next sync check."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.sync_state_store import Link
from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed


async def test_a_redis_error_mid_sync_is_retried_by_the_bus_not_put_on_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_tb = await start_fast_testbed()
    try:
        store = fast_tb.services.store
        save_link = store.save_link
        failures: list[str] = []

        async def save_link_once_failing(espo_id: str, link: Link, **clear: bool) -> Any:
            if not failures:  # right after the Advoware create: the link is not saved yet
                failures.append(espo_id)
                raise RedisConnectionError("Connection closed by server.")
            return await save_link(espo_id, link, **clear)

        monkeypatch.setattr(store, "save_link", save_link_once_failing)
        rec = fast_tb.espo.seed(**SAMPLE)
        await fast_tb.flush()
        after = fast_tb.espo_record(rec["id"])
        assert failures == [rec["id"]]
        assert after["syncStatus"] == "clean", after["syncErrorMessage"]
        assert [b["betNr"] for b in fast_tb.advo.all()] == [after["betnr"]]  # the create was adopted
    finally:
        await fast_tb.close()
