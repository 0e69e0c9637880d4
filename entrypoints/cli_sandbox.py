"""``beteiligte-sync sandbox ...``: act as an Advoware user on the RUNNING sandbox, and inject faults.

A sandbox ``serve`` publishes its simulators' addresses in ``STATE_DIR/sandbox/sandbox.json``
(:mod:`entrypoints.sandbox_owner`); these commands use them over HTTP (the simulators' ``/__sim``
routes), so their effect is what the running service sees. Without a sandbox ``serve`` they say so
in one line (exit code 2) and change nothing.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import click
import httpx

from adapters.embedded_redis import EmbeddedRedis
from config.settings import Settings
from entrypoints.check_report import ExitCode
from entrypoints.sandbox_owner import PUBLISHED, SIMULATOR_URL, owner_pid

SYSTEMS = {"espocrm": "espocrm_url", "advoware": SIMULATOR_URL}
TIMEOUT_S = 10.0


def _refuse(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(ExitCode.REFUSED)


def simulator_url(settings: Settings, system: str) -> str:
    """The base URL of the running sandbox's simulator of ``system``; exits 2 when none runs."""
    if not settings.sandbox:
        _refuse("sandbox commands act on the sandbox only: unset ESPOCRM_URL and ADVOWARE_URL (or use another"
                " STATE_DIR) and start it with ./dev serve")
    folder = EmbeddedRedis.for_settings(settings).folder
    pid = owner_pid(folder)
    if pid is None or not _alive(pid):
        _refuse(f"no sandbox serve is running on {folder}: start one with ./dev serve (same STATE_DIR)")
    try:
        published = json.loads((folder / PUBLISHED).read_text())
    except (OSError, ValueError):
        _refuse(f"the running sandbox's {folder / PUBLISHED} cannot be read: restart ./dev serve")
    return str(published[SYSTEMS[system]]).rstrip("/")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _call(method: str, url: str, body: Any = None) -> httpx.Response:
    try:
        return httpx.request(method, url, json=body, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        _refuse(f"the sandbox simulator at {url} does not answer ({exc}): is ./dev serve still running?")
        raise  # unreachable: _refuse exits


def parse_changes(pairs: tuple[str, ...]) -> dict[str, str | None]:
    """``field=value`` pairs; ``field=`` clears the field (null)."""
    changes: dict[str, str | None] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r}: write field=value (field= clears it)", param_hint="CHANGES")
        changes[name.strip()] = value if value != "" else None
    return changes


@click.group()
def sandbox() -> None:
    """Change the running sandbox as a person would, and inject faults (see docs/development.md: sandbox)."""


@sandbox.command("advoware-edit")
@click.argument("betnr", type=int)
@click.argument("changes", nargs=-1, required=True)
@click.pass_obj
def advoware_edit(settings: Settings, betnr: int, changes: tuple[str, ...]) -> None:
    """Edit Beteiligter BETNR in the simulated Advoware as an Advoware user: CHANGES are Advoware field
    names, e.g. ort=Potsdam telefon="+49 331 1234" (field= clears). Advoware has no webhooks: the next
    sync check brings the change to EspoCRM (SYNC_CHECK_CRON, or beteiligte-sync sync-check now)."""
    values = parse_changes(changes)
    answer = _call("PUT", f"{simulator_url(settings, 'advoware')}/__sim/records/{betnr}", values)
    if answer.status_code != 200:
        _refuse(f"Advoware refused the edit ({answer.status_code}): {answer.json().get('error', answer.text)}")
    row = answer.json()
    shown = ", ".join(f"{k}={row.get(k)!r}" for k in values)
    click.echo(f"Advoware Beteiligter {betnr} changed: {shown} (rowId {row.get('rowId')}, "
               f"geaendertAm {row.get('geaendertAm')})")
    click.echo("the next sync check brings it to EspoCRM: beteiligte-sync sync-check (or wait for SYNC_CHECK_CRON)")


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _regex(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A --path the simulator cannot compile would match every request: refused here (exit 2)."""
    try:
        return value if value is None else re.compile(value).pattern
    except re.error as exc:
        raise click.BadParameter(f"{value!r} is not a regular expression ({exc})") from None


@sandbox.command("fault")
@click.argument("system", type=click.Choice(sorted(SYSTEMS)))
@click.argument("status", type=click.IntRange(400, 599))
@click.option("--count", default=1, show_default=True, type=click.IntRange(0),
              help="How many matching requests get it; 0 = until cleared.")
@click.option("--method", default=None, type=click.Choice(HTTP_METHODS, case_sensitive=False),
              help="Only this HTTP method.")
@click.option("--path", default=None, callback=_regex,
              help="Only paths matching this regular expression, e.g. 'Beteiligte/1001$'.")
@click.option("--retry-after", default=None, type=click.IntRange(0), help="Retry-After seconds (429/503).")
@click.pass_obj
def fault(settings: Settings, system: str, status: int, count: int, method: str | None, path: str | None,
          retry_after: int | None) -> None:
    """Make the sandbox's SYSTEM simulator answer STATUS to its next API requests (the sync's)."""
    rule = {"status": status, "times": count or None, "method": method.upper() if method else None,
            "path": path, "retry_after": retry_after}
    answer = _call("POST", f"{simulator_url(settings, system)}/__sim/faults", {"rules": [rule]})
    if answer.status_code != 200:
        _refuse(f"the {system} simulator refused the fault ({answer.status_code}): {answer.text}")
    _print_rules(system, answer.json())


@sandbox.command("clear-faults")
@click.argument("system", type=click.Choice(sorted(SYSTEMS)), required=False)
@click.pass_obj
def clear_faults(settings: Settings, system: str | None) -> None:
    """Remove every injected fault of SYSTEM's simulator (of both simulators without SYSTEM)."""
    for name in [system] if system else sorted(SYSTEMS):
        answer = _call("DELETE", f"{simulator_url(settings, name)}/__sim/faults")
        _print_rules(name, answer.json())


def _print_rules(system: str, state: dict[str, Any]) -> None:
    rules = state.get("rules") or []
    click.echo(f"{system} simulator: {len(rules)} fault rule(s) active")
    for r in rules:
        times = "until cleared" if r.get("times") is None else f"{r['times']} more request(s)"
        where = f"{r.get('method') or 'any method'} {r.get('path') or 'any path'}"
        click.echo(f"  {r.get('status')} for {where}, {times}")


@sandbox.command("bulk-change")
@click.argument("count", type=click.IntRange(1))
@click.argument("changes", nargs=-1, required=True)
@click.option("--stamp", default=None, help="geaendertAm for all (the firm's local time): a late commit.")
@click.pass_obj
def bulk_change(settings: Settings, count: int, changes: tuple[str, ...], stamp: str | None) -> None:
    """A bulk job in the simulated Advoware: CHANGES (e.g. ort=Potsdam) to COUNT Beteiligte at once, all
    with one geaendertAm (the change feed reads them page by page, ADVOWARE_POLL_SECONDS)."""
    body = {"count": count, "changes": parse_changes(changes), "stamp": stamp}
    answer = _call("POST", f"{simulator_url(settings, 'advoware')}/__sim/bulk-change", body)
    if answer.status_code != 200:
        _refuse(f"Advoware refused the bulk change ({answer.status_code}): {answer.json().get('error', answer.text)}")
    done = answer.json()
    click.echo(f"Advoware: {done['changed']} Beteiligte changed at geaendertAm {done['geaendertAm']}")


@sandbox.command("clock")
@click.option("--local", "local", default=None, help="Set Advoware's wall time, e.g. 2026-10-25T02:59:00.")
@click.option("--fold", default=0, type=click.IntRange(0, 1), show_default=True,
              help="With --local in the repeated autumn hour: 0 = the first pass (summer time), 1 = the second.")
@click.option("--offset", "offset_s", default=None, type=float, help="Advoware's clock this many seconds ahead.")
@click.option("--advance", "advance_s", default=None, type=float, help="Move Advoware's clock this many seconds on.")
@click.pass_obj
def clock(settings: Settings, local: str | None, fold: int, offset_s: float | None, advance_s: float | None) -> None:
    """Show or set the simulated Advoware's clock (its geaendertAm stamps): clock skew, daylight saving."""
    given = {k: v for k, v in {"local": local, "offset_s": offset_s, "advance_s": advance_s}.items() if v is not None}
    if len(given) > 1:
        raise click.UsageError("give one of --local, --offset, --advance (or none to show the clock)")
    url = f"{simulator_url(settings, 'advoware')}/__sim/clock"
    answer = _call("POST", url, {**given, "fold": fold}) if given else _call("GET", url)
    if answer.status_code != 200:
        _refuse(f"the Advoware simulator refused the clock ({answer.status_code}): {answer.json().get('error')}")
    state = answer.json()
    click.echo(f"Advoware's clock: {state['local']} local (UTC{state['utc_offset']}), "
               f"{state['offset_s']:+.0f} s from this machine's")
