"""Cron scheduler: runs each cron step on its schedule (croniter, UTC), never overlapping itself.

Expressions have 5 fields, or 6 with seconds as the last field (``* * * * * *`` = every second).
The clock and the sleep function are injectable so schedules can be tested without waiting.
Stopping never relies on a cancel alone (:mod:`stephost.stopping`): the loops check a flag, a run
whose slot claim (a Redis call) outlived the stop does not start its handler, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from croniter import croniter

from stephost.discovery import Step, validate_cron_expression
from stephost.stopping import pause, stop_tasks

log = logging.getLogger("stephost.cron")

# Runs one cron step once with a fresh trace id; logs and re-raises what the handler raised.
CronRunner = Callable[[Step], Awaitable[None]]
# Claims one scheduled run (step name, the schedule's fire time) for this process: False when another
# process sharing the schedule has it already, so each slot runs once across all processes.
SlotClaim = Callable[[str, datetime], Awaitable[bool]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CronScheduler:
    def __init__(
        self,
        steps: list[Step],
        runner: CronRunner,
        overrides: dict[str, str] | None = None,
        *,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        claim: SlotClaim | None = None,
    ) -> None:
        self._claim = claim
        self._steps = {s.name: s for s in steps if s.type == "cron"}
        self._schedules: dict[str, str] = {n: s.cron or "" for n, s in self._steps.items()}
        for name, expr in (overrides or {}).items():
            if name not in self._steps:
                raise ValueError(f"cron override for unknown cron step {name!r}")
            if not validate_cron_expression(expr):
                raise ValueError(f"cron override for {name!r}: invalid cron expression {expr!r}")
            self._schedules[name] = expr
        self._runner = runner
        self._now = now
        self._sleep = sleep  # None: sleep until the next slot or the stop, whichever comes first
        self._stopping = asyncio.Event()
        self._locks = {name: asyncio.Lock() for name in self._steps}
        self._loops: list[asyncio.Task[None]] = []
        self._runs: set[asyncio.Task[None]] = set()
        self.skipped: dict[str, int] = dict.fromkeys(self._steps, 0)
        self._claim_failing: set[str] = set()  # steps whose last claim failed (logged once per outage)

    @property
    def schedules(self) -> dict[str, str]:
        return dict(self._schedules)

    @property
    def running(self) -> bool:
        """True while the schedule loops run (between start and stop)."""
        return bool(self._loops)

    def start(self) -> None:
        if self._loops:
            return
        self._stopping = asyncio.Event()
        self._loops = [
            asyncio.create_task(self._loop(name), name=f"stephost-cron-{name}") for name in self._steps
        ]

    async def stop(self, grace: float = 10.0) -> list[str]:
        """Stop scheduling; wait up to ``grace`` seconds for running cron handlers, then cancel them
        and wait ``grace`` s more (a cancel can be swallowed). Returns the names of what did not end
        (left behind, logged): it ends after its current call."""
        late = await stop_tasks(self._loops, self._stopping, grace)
        self._loops = []
        late |= await stop_tasks(set(self._runs), None, grace)
        names = sorted(task.get_name() for task in late)
        if names:
            log.error("cron tasks %s did not stop within %.0fs; left behind", ", ".join(names), 2 * grace)
        return names

    async def run_now(self, name: str) -> None:
        """Run a cron step once now, waiting for a scheduled run of it to finish first.
        Raises KeyError for an unknown step and whatever the handler raised."""
        step = self._steps.get(name)
        if step is None:
            raise KeyError(f"no cron step named {name!r}")
        async with self._locks[name]:
            await self._runner(step)

    async def _loop(self, name: str) -> None:
        itr = croniter(self._schedules[name], self._now())
        while not self._stopping.is_set():
            fire_at: datetime = itr.get_next(datetime)
            delay = (fire_at - self._now()).total_seconds()
            if delay > 0:
                await (pause(self._stopping, delay) if self._sleep is None else self._sleep(delay))
            if self._stopping.is_set():
                return
            if self._locks[name].locked():
                self.skipped[name] += 1
                log.warning("cron step %s still running at %s; skipping this run", name, fire_at.isoformat())
            else:
                task = asyncio.create_task(self._guarded_run(name, fire_at), name=f"stephost-cron-run-{name}")
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
                await asyncio.sleep(0)  # let the run take its lock before the next tick is judged
            # Never fire for a time already past (e.g. after a long sleep or clock jump).
            now = self._now()
            if itr.get_current(datetime) < now:
                itr = croniter(self._schedules[name], now)

    async def _guarded_run(self, name: str, fire_at: datetime) -> None:
        async with self._locks[name]:
            if self._claim is not None and not await self._claimed(name, fire_at):
                return
            if self._stopping.is_set():  # stopped while the claim was in flight: start nothing now
                return
            try:
                await self._runner(self._steps[name])
            except Exception:  # the runner has logged it with the run's trace id
                pass

    async def _claimed(self, name: str, fire_at: datetime) -> bool:
        assert self._claim is not None
        try:
            claimed = await self._claim(name, fire_at)
        except Exception as exc:  # the store is away: this slot is skipped, the next one tried
            # Once per outage at WARNING (a step firing every few seconds would repeat it), then DEBUG.
            level = logging.DEBUG if name in self._claim_failing else logging.WARNING
            self._claim_failing.add(name)
            log.log(level, "cron step %s: could not claim the run of %s (%s); skipping runs until the store "
                    "answers", name, fire_at.isoformat(), exc)
            return False
        if name in self._claim_failing:
            self._claim_failing.discard(name)
            log.warning("cron step %s: the store answers again, runs go on", name)
        return claimed
