"""The Redis bus takes over the entries of a dead worker, and only those: a live worker whose handler
runs longer than ``claimIdleSeconds`` keeps its entry (it touches it while the handler runs), so the
handler is not run a second time beside the first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stephost.config import parse_host_config
from stephost.host import StepHost
from tests.stephost_fixtures import outage as rec

pytestmark = pytest.mark.redis

CLAIM_IDLE_S = 0.3
HANDLER_S = 2.0  # several times claimIdleSeconds
DEADLINE_S = 30.0
STREAM = "c:bus:step:record"



@pytest.fixture(autouse=True)
def _fresh_records() -> Iterator[None]:
    rec.reset()
    yield
    rec.reset()


def host_for(own_redis: Any) -> StepHost:
    cfg = parse_host_config({"steps": {"dirs": [str(rec.OUTAGE_STEPS)]}, "redis": {"keyPrefix": "c"},
                             "queue": {"workers": 2, "claimIdleSeconds": CLAIM_IDLE_S}})
    return StepHost(cfg, own_redis, durable_bus=True)


async def test_a_handler_running_longer_than_claim_idle_keeps_its_entry(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host = host_for(own_redis)
    await host.start()
    try:
        await host.emit(rec.TOPIC, {"id": "long", "seconds": HANDLER_S})
        assert await host.drain(DEADLINE_S)
    finally:
        await host.stop()
    assert rec.HANDLED["long"] == 1
    assert not [r for r in caplog.records if "from a dead worker" in r.getMessage()]


async def test_a_dead_workers_entry_is_taken_over(own_redis: Any, caplog: pytest.LogCaptureFixture) -> None:
    first = host_for(own_redis)
    await first.start()  # creates the group
    await first.stop()
    await host_for(own_redis).emit(rec.TOPIC, {"id": "orphan"})  # queued while no worker runs
    taken = await own_redis.xreadgroup("workers", "gone-1/worker-0", {STREAM: ">"}, count=1)  # then it died
    assert len(taken[0][1]) == 1
    host = host_for(own_redis)
    await host.start()
    try:
        assert await host.drain(DEADLINE_S)
    finally:
        await host.stop()
    assert rec.HANDLED["orphan"] == 1
    assert [r for r in caplog.records if "from a dead worker" in r.getMessage()]
