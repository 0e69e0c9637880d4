"""The Redis bus takes over the entries of a dead worker, and only those: a live worker whose handler
runs longer than ``claimIdleSeconds`` keeps its entry (it touches it while the handler runs), so the
handler is not run a second time beside the first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from stephost.config import parse_host_config
from stephost.host import StepHost
from tests.redis_server import redis_server
from tests.stephost_fixtures import outage as rec

pytestmark = pytest.mark.redis

CLAIM_IDLE_S = 0.3
HANDLER_S = 2.0  # several times claimIdleSeconds
DEADLINE_S = 30.0
STREAM = "c:bus:step:record"


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    with redis_server() as url:
        redis = aioredis.from_url(url)
        yield redis
        await redis.aclose()


@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    rec.reset()
    yield
    rec.reset()


def host_for(client: Any) -> StepHost:
    cfg = parse_host_config({"steps": {"dirs": [str(rec.OUTAGE_STEPS)]}, "redis": {"keyPrefix": "c"},
                             "queue": {"workers": 2, "claimIdleSeconds": CLAIM_IDLE_S}})
    return StepHost(cfg, client, durable_bus=True)


async def test_a_handler_running_longer_than_claim_idle_keeps_its_entry(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host = host_for(client)
    await host.start()
    try:
        await host.emit(rec.TOPIC, {"id": "long", "seconds": HANDLER_S})
        assert await host.drain(DEADLINE_S)
    finally:
        await host.stop()
    assert rec.HANDLED["long"] == 1
    assert not [r for r in caplog.records if "from a dead worker" in r.getMessage()]


async def test_a_dead_workers_entry_is_taken_over(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    first = host_for(client)
    await first.start()  # creates the group
    await first.stop()
    await host_for(client).emit(rec.TOPIC, {"id": "orphan"})  # queued while no worker runs
    taken = await client.xreadgroup("workers", "gone-1/worker-0", {STREAM: ">"}, count=1)  # then it died
    assert len(taken[0][1]) == 1
    host = host_for(client)
    await host.start()
    try:
        assert await host.drain(DEADLINE_S)
    finally:
        await host.stop()
    assert rec.HANDLED["orphan"] == 1
    assert [r for r in caplog.records if "from a dead worker" in r.getMessage()]
