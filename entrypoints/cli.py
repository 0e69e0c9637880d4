"""The ``beteiligte-sync`` command: serve, sync-check, sync (global options and one-line errors:
:mod:`entrypoints.cli_errors`); the operator commands are in cli_ops, the sandbox ones in cli_sandbox."""

from __future__ import annotations

import asyncio
import sys
from functools import partial
from typing import Any

import click

from adapters.background import Background
from adapters.embedded_redis import EmbeddedRedis, StartupError
from config.setting_errors import LOG_LEVELS
from config.settings import Settings, load_settings
from config.version import DISTRIBUTION, package_version
from domain.sync_status import ENTITY, SyncStatus
from entrypoints.bootstrap import Services
from entrypoints.check_report import FAILED_STATUSES, ExitCode, status_report
from entrypoints.cli_deadline import DEADLINE_MARGIN_S
from entrypoints.cli_errors import DEBUG, CommandGroup, CommandRefused
from entrypoints.cli_match import match
from entrypoints.cli_ops import (
    dead_letters,
    drain_with_progress,
    history,
    retry_failed,
    run_with_services,
    status,
)
from entrypoints.cli_sandbox import sandbox
from entrypoints.cli_setup import doctor, webhooks
from entrypoints.cli_store import store
from entrypoints.log_setup import configure_logging
from entrypoints.runtime import build_host
from entrypoints.serve_settings import publish_loop
from entrypoints.startup import Prepared, check_port_free, check_tls, prepare
from entrypoints.store_guard import store_route
from stephost.host import event_loop_factory
from stephost.host import serve as serve_host
from sync.sync_check import describe_plan, run_sync_check

REFUSED_EXIT_CODE = ExitCode.REFUSED
BACKGROUND_STOP_GRACE_S = 5.0


def _prepare(settings: Settings, *, service_url: str | None = None) -> Prepared:
    """The store and services for this process; one line and exit code 2 when it must not run."""
    try:
        return prepare(settings, service_url=service_url)
    except StartupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(REFUSED_EXIT_CODE)


@click.group(cls=CommandGroup)
@click.version_option(package_version(), "--version", prog_name=DISTRIBUTION, message="%(prog)s %(version)s")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
              help="default: LOG_LEVEL, else INFO for serve and WARNING for the other commands; before or after "
                   "the subcommand")
@click.option("--debug", is_flag=True, help="print the traceback of an error to stderr")
@click.pass_context
def main(ctx: click.Context, log_level: str | None, debug: bool) -> None:
    """Keeps Beteiligte in sync between EspoCRM and Advoware."""
    ctx.meta[DEBUG] = debug
    settings = load_settings()
    quiet = "INFO" if ctx.invoked_subcommand == "serve" else "WARNING"  # a command's own output is its report
    configure_logging(log_level or settings.log_level or quiet, settings.log_format)
    ctx.obj = settings


@main.command()
@click.pass_obj
def serve(settings: Settings) -> None:
    """Run the service: HTTP, event workers and cron (sandbox mode when unconfigured)."""
    url = f"{settings.scheme}://{settings.host}:{settings.port}"
    check_tls(settings)
    check_port_free(settings)  # before anything starts: a taken port is one line and nothing to undo
    prepared = _prepare(settings, service_url=url)
    services = prepared.services
    host = build_host(services, extra_routes=[store_route(services.redis, prepared.embedded)])
    if prepared.sandbox:
        prepared.sandbox.espo.start_webhook_job(2.0)
        from entrypoints.sandbox import banner  # sandbox mode only: production never loads the simulators

        token = services.settings.status_token
        click.echo(banner(prepared.sandbox, url, token.get_secret_value() if token else ""))
    else:
        click.echo(f"beteiligte-sync listening on {url}")
    if prepared.embedded:
        click.echo(f"state: {prepared.embedded.describe()}")
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(host, prepared.embedded, services, settings.health_check_interval_seconds))
    finally:
        prepared.close()


async def _serve(host: Any, embedded: EmbeddedRedis | None, services: Services, every: float) -> None:
    """The host, the dependency checks (now and every ``every`` s), serve's published sync settings
    (:mod:`entrypoints.serve_settings`) and (embedded store) a supervisor that starts the redis-server
    again if it dies."""
    if services.advoware_endpoints is not None:  # discovery by Kanzlei: its one INFO line, or one line why not
        await services.advoware_endpoints.announce()
    loops = [Background(partial(services.dependencies.run, every), "dependency-checks"),
             Background(partial(publish_loop, services.redis, services.store.prefix, services.settings, every),
                        "serve-settings")]
    if embedded:
        loops.append(Background(embedded.supervise, "embedded-store-supervisor"))
    try:
        await serve_host(host)
    finally:
        for loop in loops:  # a flag each loop checks, then a bounded wait: a cancel alone can be swallowed
            await loop.stop(BACKGROUND_STOP_GRACE_S)


@main.command("sync-check")
@click.option("--dry-run", is_flag=True, help="Show what would be done per record and field; write nothing.")
@click.option("--confirm-mass-change", is_flag=True, help="Go ahead although the mass-change guard holds.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the queued records.")
@click.pass_obj
def sync_check(settings: Settings, dry_run: bool, confirm_mass_change: bool, timeout: float) -> None:
    """Run one sync check now and wait until every record it found has been handled. Exit code 3
    while any record is failed or permanently_failed afterwards, 4 when --timeout ran out."""

    async def body(services: Services, host: Any) -> int:
        if dry_run:
            plan = await services.checker.plan(confirm=confirm_mass_change, record=False)
            click.echo("\n".join(describe_plan(plan)))
            return ExitCode.OK
        plan, queued = await run_sync_check(services.checker, services.metrics,
                                            lambda ev: host.emit(ev["topic"], ev["data"]), confirm=confirm_mass_change)
        drained = await drain_with_progress(host, timeout, queued)
        report = await status_report(services.espo)
        work, deletes = (len(plan.safe_work()), 0) if plan.held else (len(plan.work), len(plan.deletes))
        click.echo(f"sync check: scanned {plan.scanned}, queued {work} records and {deletes} deletes")
        click.echo("\n".join(report.lines()))
        if plan.held:  # the risky records wait for an operator; every other one was synced
            click.echo(f"HELD: {plan.held}", err=True)
            return ExitCode.REFUSED
        if not drained:
            click.echo(f"timed out after {timeout} s with {host.queue_depth()} events still queued", err=True)
            return ExitCode.TIMED_OUT
        return ExitCode.RECORDS_FAILED if report.failed else ExitCode.OK

    run_with_services(settings, body, start_host=True, deadline=timeout + DEADLINE_MARGIN_S, guard=not dry_run)


@main.command()
@click.argument("espo_id")
@click.pass_obj
def sync(settings: Settings, espo_id: str) -> None:
    """Sync one record now and print the decision taken. Exit code 2 when EspoCRM has no such record
    or cannot be read, 3 when the record is failed afterwards."""

    async def body(services: Services, _host: Any) -> int:
        result = await services.sync.sync(espo_id, trigger="cli")
        if result.status == SyncStatus.DELETED:
            # A wrong ESPOCRM_URL path 404s on every route too: the list read raises its NotFoundError,
            # whose one line names ESPOCRM_URL instead of the id.
            await services.espo.list(ENTITY, select=["id"], max_size=1)
            raise CommandRefused(f"no CBeteiligte with id {espo_id!r} in EspoCRM (never there, or deleted): check "
                                 "the id (the last part of the record's address in EspoCRM)")
        click.echo(result.describe())
        if result.status == SyncStatus.UNKNOWN:
            return ExitCode.REFUSED
        return ExitCode.RECORDS_FAILED if result.status in FAILED_STATUSES else ExitCode.OK

    run_with_services(settings, body, start_host=True, guard=True)


main.add_command(store)
main.add_command(doctor)
main.add_command(webhooks)
main.add_command(status)
main.add_command(retry_failed)
main.add_command(dead_letters)
main.add_command(history)
main.add_command(sandbox)
main.add_command(match)

if __name__ == "__main__":
    main()
