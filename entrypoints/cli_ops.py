"""Operator commands: ``status``, ``retry-failed``, ``dead-letters list | replay``, ``history <espoId>``.

They work on the shared store (``REDIS_URL`` or the embedded store; beside a sandbox ``serve``, its
simulators and store), print tables with rich, and show a progress bar (on stderr) when they walk
many records. Exit codes as in :mod:`entrypoints.check_report`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from adapters.background import bounded
from adapters.embedded_redis import StartupError
from adapters.history_store import MAX_AGE_DAYS, MAX_ENTRIES, HistoryStore
from config.settings import Settings
from domain.sync_status import ENTITY
from entrypoints.bootstrap import Services
from entrypoints.check_report import FAILED_STATUSES, ExitCode
from entrypoints.cli_console import console, printable
from entrypoints.cli_deadline import COMMAND_DEADLINE_S, DEADLINE_MARGIN_S, run_bounded
from entrypoints.runtime import build_host
from entrypoints.serve_settings import refusal
from entrypoints.startup import prepare
from entrypoints.status_facts import SERVE_GONE, StatusFacts, gather
from entrypoints.store_guard import serve_url

RETRY_CONCURRENCY = 4
HEALTH_TIMEOUT_S = 3.0
REPLAY_LOCK_S = 30.0  # the replay lock lives this long after its holder's last letter
STOP_GRACE_S = 5.0


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console(stderr=True))


def run_with_services(settings: Settings, body: Callable[[Services, Any], Awaitable[int]], *,
                      start_host: bool = False, deadline: float = COMMAND_DEADLINE_S, guard: bool = False) -> None:
    """Services (and a step host: started only when ``start_host``, i.e. this process works events).
    A started host works only the events this command emits, in this process (``own_queue``): it never
    reads serve's shared queue, so serve's events are never handled with this command's settings.
    ``guard``: the command writes, so it refuses (exit code 2, one line) while the running serve syncs
    with other settings (:mod:`entrypoints.serve_settings`). It ends within ``deadline`` seconds
    (:func:`run_bounded`)."""
    try:
        prepared = prepare(settings)
    except StartupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(ExitCode.REFUSED)
    services = prepared.services

    async def main() -> int:
        if guard and (line := await refusal(services.redis, services.store.prefix, settings)):
            click.echo(line, err=True)
            await bounded(services.aclose(), STOP_GRACE_S)
            return ExitCode.REFUSED
        host = build_host(services, cron=False, own_queue=start_host)
        if start_host:
            await services.redis.ping()  # an unreachable Redis is the command's one line, not the bus's retries
            await host.start()
        try:
            return await body(services, host)
        finally:
            if start_host:
                await host.stop(STOP_GRACE_S)  # bounded: see stephost.stopping
            await bounded(services.aclose(), STOP_GRACE_S)

    try:
        code = run_bounded(main, deadline, click.get_current_context().command_path)
    finally:
        prepared.close()
    sys.exit(code)


async def drain_with_progress(
    host: Any, timeout: float, total: int, what: str = "working off the queue",  # noqa: ASYNC109 - host.drain's
    tick: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """``host.drain(timeout)`` with a progress bar over the ``total`` events just queued; ``tick`` is
    called every quarter second meanwhile (no loop of its own to stop)."""
    with progress() as bar:
        task = bar.add_task(what, total=max(total, 1))
        drain = asyncio.create_task(host.drain(timeout))
        while not drain.done():
            await asyncio.wait({drain}, timeout=0.25)
            bar.update(task, completed=max(0, total - host.queue_depth()))
            if tick is not None:
                await tick()
        bar.update(task, completed=max(total, 1))
        return drain.result()


# -- status ----------------------------------------------------------------------------------------
@click.command()
@click.pass_obj
def status(settings: Settings) -> None:
    """What the status page shows, in the terminal. Exit code 3 while the overall state is degraded: a
    record failed, pending past its retry time or dead-lettered, or a dependency failing."""

    async def body(services: Services, host: Any) -> int:
        facts = await gather(services, host, workers=await _serve_workers(settings))
        print_status(facts, console())
        return ExitCode.RECORDS_FAILED if facts.degraded else ExitCode.OK

    run_with_services(settings, body)


async def _serve_workers(settings: Settings) -> str:
    """The event workers' state as the running ``serve`` reports it on ``/health``."""
    url = f"{serve_url(settings)}/health"  # brackets for IPv6, loopback for a wildcard HOST
    try:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S) as client:
            return str((await client.get(url)).json().get("workers") or "unknown")
    except (httpx.HTTPError, ValueError, AttributeError):
        return f"{SERVE_GONE} at {url}"


def print_status(f: StatusFacts, out: Console) -> None:
    out.print(f"beteiligte-sync status ({f.mode} mode, {f.generated_at} UTC)")
    deps = Table("dependency", "state", "detail / last error", "since", title="Dependencies")
    for dep in f.dependencies:
        deps.add_row(dep.name, dep.state, dep.detail, dep.since)
    out.print(deps)
    if f.espo_error:
        out.print(f"records: EspoCRM could not be read: {f.espo_error}")
    else:
        counts = Table("syncStatus", "records", title=f"Records by syncStatus ({sum(f.counts.values())})")
        for k, v in f.counts.items():
            counts.add_row(k or "(none)", str(v))
        out.print(counts)
    if f.espo_error:
        out.print("records needing attention: unknown (EspoCRM could not be read)")
    else:
        rows = [*f.failed, *f.dead, *f.pending]
        needing = Table("espoId", "name", "state", "reason", title=f"Records needing attention ({len(rows)})")
        for r in rows:
            state = f"{r.status} (overdue)" if r.espo_id in f.overdue else r.status
            needing.add_row(r.espo_id, r.name, state, r.message)
        out.print(needing if rows else "records needing attention: none")
    days = Table("day", "syncs", "conflicts", "failures", title="Per day (UTC)")
    for d in f.days:
        days.add_row(d.day, str(d.total), str(d.conflicts), str(d.failures))
    out.print(days if f.days else f"per day: Redis could not be read: {f.redis_error}")
    out.print(f"queued events: {f.queue_depth}   dead letters: {f.dead_letters}")
    for line in f.stuck:
        out.print(f"stuck: {line}")
    out.print(f"last sync check: {f.last_check.describe() if f.last_check else 'none yet'}")
    out.print(f"Advoware change feed: {f.feed}")
    out.print(f"Advoware addresses: {f.advoware}")
    out.print(f"overall: {f.verdict}")


# -- retry-failed ----------------------------------------------------------------------------------
@click.command("retry-failed")
@click.pass_obj
def retry_failed(settings: Settings) -> None:
    """Sync every failed and permanently_failed record again now (under the same lease as serve's
    workers), whatever its backoff. Exit code 3 when any is still failed afterwards."""

    async def body(services: Services, _host: Any) -> int:
        ids = [str(r["id"]) async for r in services.espo.iter_list(
            ENTITY, select=["id", "syncStatus"], where=[{"type": "in", "attribute": "syncStatus",
                                                          "value": [str(s) for s in FAILED_STATUSES]}])]
        out = console()
        if not ids:
            out.print("no failed or permanently_failed records")
            return ExitCode.OK
        results = await _retry_all(services, ids)
        still = [line for ok, line in results if not ok]
        for _ok, line in results:
            out.print(line, markup=False)
        out.print(f"retried {len(ids)} records: {len(ids) - len(still)} ok, {len(still)} still failed")
        return ExitCode.RECORDS_FAILED if still else ExitCode.OK

    run_with_services(settings, body, guard=True)


async def _retry_all(services: Services, ids: list[str]) -> list[tuple[bool, str]]:
    gate = asyncio.Semaphore(RETRY_CONCURRENCY)
    with progress() as bar:
        task = bar.add_task("retrying failed records", total=len(ids))

        async def one(espo_id: str) -> tuple[bool, str]:
            async with gate:
                try:
                    result = await services.sync.sync(espo_id, trigger="retry_failed")
                    return result.status not in FAILED_STATUSES, result.describe()
                except Exception as exc:  # the store or EspoCRM away: this record's line, go on
                    return False, f"{espo_id} not retried: {exc}"
                finally:
                    bar.advance(task)

        return list(await asyncio.gather(*(one(i) for i in ids)))


# -- dead letters ----------------------------------------------------------------------------------
@click.group("dead-letters", invoke_without_command=True)
@click.pass_context
def dead_letters(ctx: click.Context) -> None:
    """Events that failed every attempt (kept for operators): list (the default) or replay."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(dead_letters_list)


@dead_letters.command("list")
@click.pass_obj
def dead_letters_list(settings: Settings) -> None:
    """One JSON line per dead letter, oldest first, then how many."""

    async def body(_services: Services, host: Any) -> int:
        letters = await host.dead_letters()
        for letter in letters:
            click.echo(printable(json.dumps(letter, ensure_ascii=False, default=str)))
        click.echo(f"{len(letters)} dead letters")
        return ExitCode.OK

    run_with_services(settings, body)


@dead_letters.command("replay")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the replayed events.")
@click.pass_obj
def dead_letters_replay(settings: Settings, timeout: float) -> None:
    """Queue every dead letter again (oldest first; each leaves the list once queued) and wait until
    they are worked off. Exit code 4 when --timeout ran out."""

    async def body(services: Services, host: Any) -> int:
        redis = services.redis
        async with redis.lock(f"{host.dead_letter_store.key}:replay-lock", timeout=REPLAY_LOCK_S) as lock:
            replayed = await _replay_letters(redis, host, lock)
            drained = await drain_with_progress(host, timeout, replayed, "replaying dead letters",
                                                tick=_every(REPLAY_LOCK_S / 3, lock.reacquire))
            if drained:  # worked off here (or dead-lettered again): the claimed copies may go
                await redis.delete(_claim_key(host))
        click.echo(f"replayed {replayed} dead letters" + ("" if drained else f"; timed out after {timeout} s"))
        return ExitCode.OK if drained else ExitCode.TIMED_OUT

    run_with_services(settings, body, start_host=True, deadline=timeout + DEADLINE_MARGIN_S, guard=True)


async def _replay_letters(redis: Any, host: Any, lock: Any) -> int:
    """Emit every dead letter once, to this command's own queue (worked here). Two replays reading the
    same letter before either removed it queued it twice: so one replay at a time (another waits, then
    finds what is left; a crashed one's lock expires after REPLAY_LOCK_S), and each letter is moved
    atomically to a claim list, where it stays until the replay has worked it off: a failed emit puts it
    back in front, a crash or a timeout leaves it there for the next replay (then it may be handled
    twice, never lost). ``lock``: the replay lock, held (and renewed) by the caller until it has
    worked the letters off."""
    key = host.dead_letter_store.key
    claim, replayed = _claim_key(host), 0
    while await redis.lmove(claim, key, "RIGHT", "LEFT") is not None:
        pass  # left by a replay that crashed or timed out: back in front
    while (raw := await redis.lmove(key, claim, "LEFT", "RIGHT")) is not None:
        letter = json.loads(raw)
        try:
            await host.emit(str(letter["topic"]), letter.get("data"), letter.get("trace_id"))
        except BaseException:
            await redis.lmove(claim, key, "RIGHT", "LEFT")
            raise
        replayed += 1
        await lock.reacquire()
    return replayed


def _every(seconds: float, call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    """``call``, at most once per ``seconds`` however often the result is called."""
    last = [time.monotonic()]

    async def tick() -> None:
        if time.monotonic() - last[0] >= seconds:
            last[0] = time.monotonic()
            await call()

    return tick


def _claim_key(host: Any) -> str:
    return f"{host.dead_letter_store.key}:replaying"


# -- history ---------------------------------------------------------------------------------------
@click.command()
@click.argument("espo_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help=f"How many entries (at most {MAX_ENTRIES}).")
@click.pass_obj
def history(settings: Settings, espo_id: str, limit: int) -> None:
    """The last decisions of the sync for one record, newest first (kept: 50 entries, 30 days)."""

    async def body(services: Services, _host: Any) -> int:
        store = HistoryStore(services.redis, prefix=services.store.prefix)
        entries = await store.read(espo_id, min(limit, MAX_ENTRIES))
        out = console()
        if not entries:
            out.print(f"{espo_id}: no sync recorded in the last {MAX_AGE_DAYS} days", markup=False)
            return ExitCode.OK
        table = Table(Column("when (UTC)", no_wrap=True), "trigger", "decision", "status", "fields", "conflicts",
                      "message", title=f"{espo_id} betnr={entries[0].betnr}: last {len(entries)} syncs, newest first")
        for e in entries:
            conflicts = ", ".join(f"{c['field']} ({c['group']}): {c['winner']} wins by {c['strategy']}"
                                  for c in e.conflicts) or "–"
            decision = e.action + (f" ({e.reason})" if e.reason else "")
            table.add_row(e.at[:19].replace("T", " "), e.trigger, decision, e.status, e.sides(), conflicts,
                          e.message or "–")
        out.print(table)
        return ExitCode.OK

    run_with_services(settings, body)
