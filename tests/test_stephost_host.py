"""Host lifecycle (graceful stop, serve) and the context handed to handlers."""

import asyncio
import json
import logging

import fakeredis
import httpx
import pytest

from stephost.bus_common import QueueFullError
from stephost.context import TopicNotDeclaredError
from stephost.host import StepHost, serve
from tests.stephost_fixtures.support import fast_config, free_port


async def wait_for_state(host: StepHost, group: str, key: str, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if await host.state.get(group, key) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"state {group}/{key} never set")


async def test_graceful_stop_finishes_in_flight_and_reports_unstarted(caplog: pytest.LogCaptureFixture) -> None:
    host = StepHost(fast_config(workers=1), fakeredis.FakeAsyncRedis())
    await host.start()
    await host.emit("fx.slow", {"id": 1, "seconds": 0.2})
    await host.emit("fx.slow", {"id": 2, "seconds": 0.2}, trace_id="trace-unstarted")
    await wait_for_state(host, "slow", "started-1")
    await host.stop()
    assert await host.state.get("slow", "done-1") is True
    assert await host.state.get("slow", "started-2") is None
    assert host.queue_depth() == 0
    assert any(
        "trace-unstarted" in r.getMessage() and "not delivered" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR
    )
    with pytest.raises(QueueFullError):
        await host.emit("fx.slow", {"id": 3, "seconds": 0})


async def test_stop_cancels_handlers_that_overrun_the_grace_period() -> None:
    host = StepHost(fast_config(), fakeredis.FakeAsyncRedis())
    await host.start()
    await host.emit("fx.slow", {"id": 9, "seconds": 30})
    await wait_for_state(host, "slow", "started-9")
    await asyncio.wait_for(host.stop(grace=0.05), 2)
    assert await host.state.get("slow", "done-9") is None


async def test_serve_runs_http_workers_and_stops_on_shutdown() -> None:
    host = StepHost(fast_config(), fakeredis.FakeAsyncRedis())
    port = free_port()
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(host, port=port, shutdown=shutdown))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(300):
            try:
                resp = await client.post("/chain", json={"data": {"hops": 0}})
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.01)
        assert resp.status_code == 202
    assert await host.drain(5)  # workers were started by the lifespan
    assert await host.state.get("chain", resp.json()["traceId"]) == {"hops": 2}
    shutdown.set()
    await asyncio.wait_for(task, 5)
    with pytest.raises(QueueFullError):  # lifespan stopped the host
        await host.emit("fx.chain.start", {})


async def test_context_refuses_undeclared_topics_and_emits_declared_ones() -> None:
    host = StepHost(fast_config(), fakeredis.FakeAsyncRedis())
    ctx = host.make_context(host.step("chain-first"), "trace-ctx")
    with pytest.raises(TopicNotDeclaredError, match="fx.fanout"):
        await ctx.emit({"topic": "fx.fanout", "data": {}})
    assert host.queue_depth() == 0
    with pytest.raises(TypeError):
        await ctx.emit({"data": {}})
    await ctx.emit({"topic": "fx.chain.next", "data": {"hops": 5}})
    assert host.queue_depth() == 1
    async with host:
        assert await host.drain(5)
    assert await host.state.get("chain", "trace-ctx") == {"hops": 6}


def test_logger_writes_one_structured_line_per_call(caplog: pytest.LogCaptureFixture) -> None:
    host = StepHost(fast_config(), fakeredis.FakeAsyncRedis())
    ctx = host.make_context(host.step("echo"), "trace-log")
    caplog.set_level(logging.DEBUG)
    ctx.logger.info("synced\nrecord", {"espoId": "e1", "apiKey": "s3cret", "nested": {"token": "t"}})
    ctx.logger.warn("w")
    ctx.logger.warning("w2")
    ctx.logger.error("e", None)
    ctx.logger.debug("d")
    records = [r for r in caplog.records if r.name == "stephost.step.echo"]
    assert [r.levelname for r in records] == ["INFO", "WARNING", "WARNING", "ERROR", "DEBUG"]
    first = records[0].getMessage()
    assert "\n" not in first and first.startswith("[step=echo trace=trace-log] synced\\nrecord ")
    assert json.loads(first[first.index("{"):]) == {"apiKey": "***", "espoId": "e1", "nested": {"token": "***"}}
    assert "s3cret" not in caplog.text
    assert records[0].trace_id == "trace-log" and records[0].step_fields["espoId"] == "e1"  # type: ignore[attr-defined]
