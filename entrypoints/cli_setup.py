"""``beteiligte-sync doctor`` and ``beteiligte-sync webhooks register|list``: setting up and checking.

Exit codes: ``doctor`` 0 when no check failed (warnings allowed), 1 on any ✗. ``webhooks``: 0 done,
1 EspoCRM refused or failed, 2 must not run (not configured, no public URL, store unusable).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click

from adapters.embedded_redis import EmbeddedRedis, StartupError
from adapters.errors import ApiError
from adapters.webhook_secrets import WebhookSecretStore
from config.settings import Settings
from entrypoints.bootstrap import espo_client
from entrypoints.cli_deadline import COMMAND_DEADLINE_S, run_bounded
from entrypoints.doctor import DEFAULT_TIMEOUT_S, Doctor
from entrypoints.sandbox_owner import attach, owner_pid
from entrypoints.setup_store import OpenStore, open_store
from installation.setup_report import Status, exit_code
from installation.webhook_setup import describe_registered, describe_webhook, list_webhooks, register, secret_sources

REFUSED_EXIT_CODE = 2
FAILED_EXIT_CODE = 1
URL_SCHEMES = ("http://", "https://")
T = TypeVar("T")


def _public_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith(URL_SCHEMES):
        raise click.BadParameter("must start with http:// or https://")
    return value.rstrip("/") if value else value


PUBLIC_URL_HELP = ("the address EspoCRM reaches this service by, e.g. https://sync.kanzlei.example "
                   "(default: PUBLIC_URL)")


def _tolerant_stdout() -> None:
    """✓ ⚠ ✗ → on a terminal that cannot show them become ``?``, never a traceback."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")


@click.command()
@click.option("--public-url", callback=_public_url, help=PUBLIC_URL_HELP + " or derived from HOST/PORT")
@click.option("--timeout", default=DEFAULT_TIMEOUT_S, show_default=True, help="seconds per check")
@click.option("--debug", is_flag=True, help="print the traceback of an unexpected error to stderr")
@click.option("--advoware", is_flag=True, help="only Advoware: probe its wire against ADVOWARE_PROFILE, field by "
                                               "field, with reads only (docs/advoware.md)")
@click.option("--betnr", type=click.IntRange(min=1), help="with --advoware: the Beteiligter to read (default: the "
                                                          "first of the list)")
@click.pass_obj
def doctor(settings: Settings, public_url: str | None, timeout: float, debug: bool, advoware: bool,
           betnr: int | None) -> None:
    """Check EspoCRM, Advoware and the store; one line per check with the fix. Exit 1 on any ✗.

    Creates, edits and deletes one test record in EspoCRM (the API user's rights). With --advoware:
    only Advoware, reads only, and which keys of the wire profile to change."""
    _tolerant_stdout()
    if betnr is not None and not advoware:
        _refuse("--betnr goes with --advoware")
    if settings.sandbox:
        settings = sandbox_settings(settings)
    check = Doctor(settings, public_url=public_url, timeout=timeout, debug=debug)
    work = (lambda: check.run_advoware(betnr)) if advoware else check.run
    lines = run_bounded(work, COMMAND_DEADLINE_S, click.get_current_context().command_path)
    for line in lines:
        for text in line.render():
            click.echo(text)
    counts = {s: sum(1 for line in lines if line.status == s) for s in Status}
    click.echo(f"{counts[Status.OK]} ok, {counts[Status.WARN]} warnings, {counts[Status.FAIL]} failed"
               + (f", {counts[Status.SKIP]} not checked" if counts[Status.SKIP] else ""))
    sys.exit(exit_code(lines))


@click.group()
def webhooks() -> None:
    """The three EspoCRM webhooks of this service (CBeteiligte.create, .update, .delete)."""


def sandbox_settings(settings: Settings) -> Settings:
    """Sandbox mode: the settings of the running sandbox serve's simulators, so doctor checks them the
    way it checks a firm's systems; unchanged (doctor then says how to start one) when none runs."""
    folder = EmbeddedRedis.for_settings(settings).folder
    if owner_pid(folder) is None:
        return settings
    try:
        return attach(folder, settings, wait=0)
    except StartupError:
        return settings


def _refuse(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(REFUSED_EXIT_CODE)


def _with_espocrm(settings: Settings, work: Callable[[Any, WebhookSecretStore], Awaitable[T]]) -> T:
    """Run ``work(espo, stored secrets)`` against the configured EspoCRM and the store serve uses."""
    if settings.sandbox or not settings.espocrm_url or not settings.espocrm_api_key:
        _refuse("ESPOCRM_URL and ESPOCRM_API_KEY are not set (in sandbox mode the sandbox registers its own"
                " webhooks)")
    try:
        store: OpenStore = open_store(settings, timeout=settings.http_timeout_seconds)
    except StartupError as exc:
        _refuse(str(exc))

    async def run() -> T:
        try:
            async with espo_client(settings) as espo:
                return await work(espo, WebhookSecretStore(store.redis))
        finally:
            await store.aclose()

    try:
        return run_bounded(run, COMMAND_DEADLINE_S, click.get_current_context().command_path)
    except ApiError as exc:
        click.echo(f"EspoCRM: {exc}", err=True)
        sys.exit(FAILED_EXIT_CODE)


@webhooks.command("register")
@click.option("--public-url", callback=_public_url, help=PUBLIC_URL_HELP)
@click.pass_obj
def register_command(settings: Settings, public_url: str | None) -> None:
    """Create the three webhooks as the API user (reusing existing ones) and store their secrets."""
    url = public_url or (settings.public_url or "").rstrip("/")
    if not url:
        _refuse("--public-url (or PUBLIC_URL) is needed: the address EspoCRM sends the webhooks to")
    _tolerant_stdout()
    results, forgotten = _with_espocrm(
        settings, lambda espo, store: register(espo, store, url, settings.webhook_secrets()))
    for r in results:
        click.echo(describe_registered(r))
    if forgotten:
        click.echo(f"forgot the stored secrets of webhooks EspoCRM no longer has: {', '.join(forgotten)}")
    click.echo("secrets stored in the service's store: serve accepts these webhooks without ESPOCRM_WEBHOOK_SECRETS")


@webhooks.command("list")
@click.pass_obj
def list_command(settings: Settings) -> None:
    """The webhooks EspoCRM shows the API user, and where their secrets are known (never the secrets)."""

    async def work(espo: Any, store: WebhookSecretStore) -> list[str]:
        hooks = (await list_webhooks(espo)).hooks
        sources = secret_sources(await store.load(), settings.webhook_secrets())
        return [describe_webhook(h, sources) for h in hooks]

    _tolerant_stdout()
    rows = _with_espocrm(settings, work)
    for row in rows:
        click.echo(row)
    click.echo(f"{len(rows)} webhooks")
