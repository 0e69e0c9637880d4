"""Cron: run_cron now, a real schedule firing, no overlapping runs, bad expressions."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest

from stephost.cron import CronScheduler
from stephost.discovery import Step, discover_steps
from stephost.host import StepHost
from tests.stephost_fixtures.support import APP_STEPS, fast_config
from tests.waiting import until


def cron_step(name: str = "tick") -> Step:
    async def handler(context: object) -> None:
        return None

    return Step(name=name, type="cron", file=Path(f"{name}_step.py"), handler=handler, config={},
                cron="0 0 1 1 *")


async def test_run_cron_runs_once_with_a_fresh_trace_id_propagated_to_events() -> None:
    async with StepHost(fast_config(), fakeredis.FakeAsyncRedis()) as host:
        await host.run_cron("tick")
        await host.run_cron("tick")
        assert await host.drain(5)
        runs = await host.state.get("tick", "runs")
        assert len(runs) == 2 and runs[0] != runs[1]
        fanout = await host.state.get("fanout", "b")
        assert fanout == {"data": {"from": "tick"}, "traceId": runs[1]}


async def test_run_cron_unknown_step() -> None:
    host = StepHost(fast_config(), fakeredis.FakeAsyncRedis())
    with pytest.raises(KeyError):
        await host.run_cron("echo")


async def test_real_schedule_fires_every_second() -> None:
    host = StepHost(fast_config(), fakeredis.FakeAsyncRedis(), cron_overrides={"tick": "* * * * * *"})
    assert host.cron.schedules["tick"] == "* * * * * *"
    async with host:
        await until(lambda: host.state.get("tick", "runs"), "the every-second schedule to fire")
    assert len(await host.state.get("tick", "runs")) >= 1


async def test_cron_disabled_schedules_nothing_but_run_cron_works() -> None:
    cfg = fast_config().model_copy(update={"cron": fast_config().cron.model_copy(update={"enabled": False})})
    host = StepHost(cfg, fakeredis.FakeAsyncRedis(), cron_overrides={"tick": "* * * * * *"})
    async with host:
        assert host.cron.running is False
        await host.run_cron("tick")
        assert len(await host.state.get("tick", "runs")) == 1


async def test_a_run_still_going_makes_the_next_tick_skip() -> None:
    clock = [datetime(2025, 1, 1, tzinfo=UTC)]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    started = 0
    release = asyncio.Event()

    async def runner(step: Step) -> None:
        nonlocal started
        started += 1
        await release.wait()

    sched = CronScheduler([cron_step()], runner, {"tick": "* * * * * *"}, now=lambda: clock[0], sleep=fake_sleep)
    sched.start()
    for _ in range(20):
        await asyncio.sleep(0)
    assert started == 1 and sched.skipped["tick"] >= 5
    release.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert started >= 2
    await sched.stop()


async def test_failing_cron_handler_is_logged_with_trace_id_and_schedule_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "failing_cron_step.py").write_text(
        "config = {'type': 'cron', 'name': 'bad', 'cron': '* * * * * *', 'emits': []}\n"
        "async def handler(context):\n    raise RuntimeError('cron broke')\n"
    )
    host = StepHost(fast_config(), fakeredis.FakeAsyncRedis(), steps=discover_steps([tmp_path]))
    with pytest.raises(RuntimeError, match="cron broke"):
        await host.run_cron("bad")
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "cron handler failed" in record.getMessage() and "trace=" in record.getMessage()


def test_bad_overrides_are_rejected() -> None:
    steps = discover_steps([APP_STEPS])
    with pytest.raises(ValueError, match="invalid cron expression"):
        StepHost(fast_config(), fakeredis.FakeAsyncRedis(), steps=steps, cron_overrides={"tick": "nope"})
    with pytest.raises(ValueError, match="unknown cron step"):
        StepHost(fast_config(), fakeredis.FakeAsyncRedis(), steps=steps, cron_overrides={"echo": "* * * * *"})
