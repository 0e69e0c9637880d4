"""``beteiligte-sync match``: propose pairs of existing records, then link the reviewed ones.

    beteiligte-sync match                       # scan both systems, print a table, write match.csv
    beteiligte-sync match --apply [FILE]        # dry run: what linking FILE's kept pairs would do
    beteiligte-sync match --apply [FILE] --yes  # link them (resumable, idempotent)
    beteiligte-sync match --import-unmatched [--yes]   # create Advoware-only parties in EspoCRM
    beteiligte-sync match --create-new ESPO_ID [...]   # another party: decline its candidates, create it

Nothing is written to either system without ``--yes``. Exit codes: 0 done, 2 refused (a review file
that cannot be trusted, no Advoware list endpoint, a store not shared with ``serve``, a system that does
not answer: one line each, no traceback), 3 some pairs
were not linked (busy, gone, linked elsewhere, an error), or a record ``--create-new`` could not
change: run it again or see the lines printed.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapters.embedded_redis import StartupError
from adapters.errors import ApiError
from config.settings import Settings
from domain.timestamps import utc_now
from entrypoints.bootstrap import Services
from entrypoints.check_report import ExitCode
from entrypoints.cli_console import console as cli_console
from entrypoints.cli_deadline import COMMAND_DEADLINE_S, run_bounded
from entrypoints.runtime import build_host
from entrypoints.startup import prepare
from onboarding.match import MatchReport, MatchUnavailable, import_unmatched, scan, verdict_order
from onboarding.match_apply import Outcome, PairLinker, apply_pairs, decline_pairs, forget_declines
from onboarding.match_create_new import create_new
from onboarding.match_file import MatchFileError, read_review, write_report

DEFAULT_FILE = "match.csv"
NOT_DONE = {Outcome.BUSY, Outcome.ERROR, Outcome.ESPO_GONE, Outcome.ADVO_GONE, Outcome.BETNR_TAKEN,
            Outcome.RECORD_LINKED_OTHER, Outcome.MISMATCH, Outcome.STILL_LINKED}


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True)


def _table(report: MatchReport, limit: int) -> Table:
    table = Table(title=f"Proposed pairs (first {limit}; all in the CSV)", show_lines=False)
    for col in ("keep", "verdict", "rule", "conf.", "EspoCRM id", "EspoCRM", "betnr", "Advoware", "note"):
        table.add_column(col, overflow="fold")
    for p in sorted(report.proposals, key=verdict_order)[:limit]:
        keep = "no" if (p.espo_ref, p.advo_ref) in report.declined else "yes" if p.verdict == "link" else ""
        table.add_row(keep, p.verdict.value, p.rule.value, f"{p.confidence:.2f}",
                      p.espo_ref, report.espo_labels.get(p.espo_ref, ""), p.advo_ref,
                      report.advo_labels.get(p.advo_ref, ""), p.note)
    return table


async def _scan(services: Services, console: Console, out: Path, limit: int) -> MatchReport:
    with console.status("reading both systems page by page …"):
        report = await scan(services.espo, services.advo, services.store)
    if limit and report.proposals:
        console.print(_table(report, limit))
    rows = write_report(out, report)
    counts = report.counts()
    console.print(f"scanned {report.advoware_scanned} Beteiligte in Advoware and {report.espocrm_scanned} "
                  f"records in EspoCRM ({report.already_linked} already linked)")
    console.print("proposals: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in
                                            ("link", "review", "ambiguous", "linked_elsewhere", "weaker")))
    console.print(f"{len(report.unmatched_advoware)} Beteiligte only in Advoware (--import-unmatched creates them "
                  "in EspoCRM)")
    console.print(f"wrote {rows} rows to {out}: review it (keep yes: one party, no: different parties, empty: "
                  f"undecided; add pairs by hand), then beteiligte-sync match --apply {out}")
    return report


async def _apply(services: Services, console: Console, file: Path, yes: bool) -> int:
    review = read_review(file)
    linker = PairLinker(services.espo, services.advo, services.store, write=yes, clock=services.sync.clock,
                        facts=services.sync.espo_facts)
    with _progress(console) as bar:
        task = bar.add_task("linking" if yes else "checking (dry run)", total=len(review.links))
        results = await apply_pairs(linker, review.links, lambda _r: bar.advance(task))
    declines = services.sync.creates.matcher.declines
    if yes:
        await forget_declines(declines, results)
    results += await decline_pairs(declines, services.store, review.declines, write=yes)
    counts = Counter(r.outcome.value for r in results)
    for r in results:
        if r.outcome in NOT_DONE:
            console.print(f"{r.outcome.value}: EspoCRM {r.pair.espo_id} / betnr {r.pair.betnr} "
                          f"(line {r.pair.line}): {r.message}", markup=False)
    differing = sum(1 for r in results if r.differences)
    fields = Counter(f for r in results for f, _, _ in r.differences)
    console.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no pairs decided in the file")
    by_field = ", ".join(f"{f} {n}" for f, n in fields.most_common())
    console.print(f"{differing} pairs differ in mapped fields ({by_field})" if differing
                  else "no pair differs in a mapped field")
    if not yes:
        console.print(f"dry run: nothing written. Link them: beteiligte-sync match --apply {file} --yes")
    else:
        console.print("the next sync of each linked record resolves the differences by the conflict policy; "
                      "run beteiligte-sync sync-check")
    return ExitCode.RECORDS_FAILED if any(r.outcome in NOT_DONE for r in results) else ExitCode.OK


async def _import(services: Services, console: Console, report: MatchReport, yes: bool) -> int:
    with _progress(console) as bar:
        task = bar.add_task("importing" if yes else "counting (dry run)", total=len(report.unmatched_advoware))
        summary = await import_unmatched(services.espo, services.advo, services.store, report.unmatched_advoware,
                                         write=yes, now=utc_now, clock=services.sync.clock,
                                         on_progress=lambda: bar.advance(task), facts=services.sync.espo_facts)
    for line in summary.failed:
        console.print(f"not imported: {line}", markup=False)
    if yes:
        console.print(f"created {summary.created} Beteiligte in EspoCRM, linked")
    else:
        console.print(f"dry run: would create {summary.would_create} records in EspoCRM; add --yes to do it")
    return ExitCode.RECORDS_FAILED if summary.failed else ExitCode.OK


async def _create_new(services: Services, console: Console, espo_ids: tuple[str, ...]) -> int:
    host = build_host(services, cron=False)  # not started: its bus only queues the syncs for serve
    failed = 0
    for espo_id in espo_ids:
        ok, line = await create_new(services.espo, services.sync.creates.matcher, host.emit, espo_id)
        failed += not ok
        console.print(line, markup=False)
    return ExitCode.RECORDS_FAILED if failed else ExitCode.OK


@click.command("match")
@click.option("--out", default=DEFAULT_FILE, show_default=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where the scan writes its review file.")
@click.option("--apply", "apply_file", is_flag=False, flag_value=DEFAULT_FILE, default=None,
              type=click.Path(dir_okay=False, path_type=Path), help="Link the kept pairs of this file (default "
              f"{DEFAULT_FILE}); a dry run without --yes.")
@click.option("--yes", is_flag=True, help="Write: without it --apply and --import-unmatched only report.")
@click.option("--import-unmatched", is_flag=True, help="Create Advoware-only parties in EspoCRM (off by default: "
              "EspoCRM is the master for which parties exist).")
@click.option("--limit", default=30, show_default=True, help="Rows of the table printed (0: none).")
@click.option("--create-new", is_flag=True, help="The ESPO_IDs are parties Advoware does not have: decline "
              "their candidates and queue their sync, which creates them.")
@click.argument("espo_ids", nargs=-1)
@click.pass_obj
def match(settings: Settings, out: Path, apply_file: Path | None, yes: bool, import_unmatched: bool,
          limit: int, create_new: bool, espo_ids: tuple[str, ...]) -> None:
    """Find the parties both systems already hold and link them."""
    console = cli_console()
    if create_new != bool(espo_ids):
        click.echo("--create-new needs the EspoCRM ids of the records to create (and ids need --create-new)",
                   err=True)
        sys.exit(ExitCode.REFUSED)
    if apply_file is not None and not apply_file.is_file():
        click.echo(f"{apply_file}: no such file: run beteiligte-sync match first (it writes {DEFAULT_FILE})", err=True)
        sys.exit(ExitCode.REFUSED)
    try:
        prepared = prepare(settings)
    except StartupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(ExitCode.REFUSED)

    async def body() -> int:
        services = prepared.services
        try:
            if create_new:
                return await _create_new(services, console, espo_ids)
            if apply_file is not None:
                code = await _apply(services, console, apply_file, yes)
                if not import_unmatched:
                    return code
            report = await _scan(services, console, out, limit if apply_file is None else 0)
            return await _import(services, console, report, yes) if import_unmatched else ExitCode.OK
        finally:
            await services.aclose()

    try:
        code: Any = run_bounded(body, COMMAND_DEADLINE_S, click.get_current_context().command_path)
    except (MatchFileError, MatchUnavailable) as exc:
        click.echo(str(exc), err=True)
        code = ExitCode.REFUSED
    except (ApiError, RedisError) as exc:  # a system or the store away: one line, run it again later
        click.echo(f"stopped: {exc}; check the connection (beteiligte-sync doctor) and run the same command "
                   "again (pairs already linked are skipped)", err=True)
        code = ExitCode.REFUSED
    finally:
        prepared.close()
    sys.exit(int(code))
