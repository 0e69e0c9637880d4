"""``GET /status``: one server-rendered HTML page for operators (no front-end build, no scripts).

Protected by ``STATUS_TOKEN``: the token as a Bearer token, or as the password of basic auth (any user
name: a browser asks for it). Without ``STATUS_TOKEN`` the page is off and answers ``404`` with a
one-line hint; a wrong or missing token gets ``401``. Every value is escaped; the page shows no more
personal data than EspoCRM shows staff anyway (a record's name and its sync message).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.ops_counters import DayCounts
from domain.sync_status import SyncStatus
from entrypoints.bootstrap import Services
from entrypoints.status_facts import DEGRADED, FAILING, OK, StatusFacts, gather

DISABLED = ("status page off: set STATUS_TOKEN to a long random value, restart, and open /status with it "
            "(basic auth password, any user name; or 'Authorization: Bearer <token>')\n")
UNAUTHORIZED = "status page: wrong or missing token (STATUS_TOKEN as basic auth password or Bearer token)\n"
CHART_W, CHART_H, BAR_W = 560, 180, 22
CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#176f2c;font-weight:600}.failing{color:#b00020;font-weight:600}
.unknown{color:#8a6d00;font-weight:600}.muted{color:#666}.big{font-size:20px;font-weight:600}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}"""


def token_matches(request: Request, token: str) -> bool:
    scheme, _, cred = request.headers.get("authorization", "").partition(" ")
    given = b""
    if scheme.lower() == "bearer":  # headers arrive decoded as Latin-1: back to the bytes the client sent
        given = cred.strip().encode("latin-1")
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(cred.strip(), validate=True).partition(b":")[2]
        except binascii.Error:
            given = b""
    return bool(given) and hmac.compare_digest(given, token.encode())  # both as UTF-8 bytes


def status_routes(services: Services, host_ref: list[Any]) -> list[Route]:
    async def status(request: Request) -> Response:
        secret = services.settings.status_token
        token = secret.get_secret_value() if secret is not None else ""
        if not token:
            return PlainTextResponse(DISABLED, status_code=404)
        if not token_matches(request, token):
            return PlainTextResponse(UNAUTHORIZED, status_code=401,
                                     headers={"WWW-Authenticate": 'Basic realm="beteiligte-sync status"'})
        host = host_ref[0]
        workers = "reading" if host.workers_healthy() else "not_reading"
        facts = await gather(services, host, workers=workers)
        return HTMLResponse(render(facts), headers={"Cache-Control": "no-store"})

    return [Route("/status", status, methods=["GET"])]


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _state(state: str) -> str:
    cls = "ok" if state == OK else "failing" if state in (FAILING, DEGRADED) else "unknown"
    return f'<span class="{cls}">{_e(state)}</span>'


def render(f: StatusFacts) -> str:
    verdict = _state(OK) if not f.degraded else _state(DEGRADED) + " – see below"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>beteiligte-sync status</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>beteiligte-sync status</h1><p class='muted'>{_e(f.mode)} mode · generated {_e(f.generated_at)}"
        f" UTC · reload for fresh figures</p><p class='big'>Overall: {verdict}</p>",
        _dependencies(f), _records(f), _attention(f), _chart(f.days), _queue(f),
        "</body></html>",
    ]
    return "\n".join(parts)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _dependencies(f: StatusFacts) -> str:
    rows = [[_e(d.name), _state(d.state), _e(d.detail), _e(d.since)] for d in f.dependencies]
    return "<h2>Dependencies</h2>" + _table(["dependency", "state", "detail / last error", "since"], rows)


def _records(f: StatusFacts) -> str:
    if f.espo_error:
        return f"<h2>Records by syncStatus</h2><p class='failing'>EspoCRM could not be read: {_e(f.espo_error)}</p>"
    rows = [[_e(k or "(none)"), _e(v)] for k, v in f.counts.items()]
    total = sum(f.counts.values())
    return (f"<h2>Records by syncStatus</h2><p>{total} records in EspoCRM (read now)</p>"
            + _table(["syncStatus", "records"], rows))


def _attention(f: StatusFacts) -> str:
    rows = [*f.failed, *f.dead, *f.pending]
    head = f"<h2>Records needing attention ({'?' if f.espo_error else len(rows)})</h2>"
    if f.espo_error:
        return head + "<p class='unknown'>unknown: EspoCRM could not be read</p>"
    if not rows:
        return head + "<p class='ok'>none: every record's latest change reached the other system</p>"
    table = [[_e(r.name), _status_cell(r.status, r.espo_id in f.overdue), _e(r.message),
              f"<a href='{_e(r.link)}'>open {_e(r.espo_id)} in EspoCRM</a>"] for r in rows]
    return (head + _table(["record", "state", "reason", "EspoCRM"], table)
            + "<p class='muted'>Fix the cause, then: <code>beteiligte-sync retry-failed</code> (failed records),"
              " <code>beteiligte-sync dead-letters replay</code> (dead letters); what happened to one record:"
              " <code>beteiligte-sync history &lt;espoId&gt;</code></p>")


def _status_cell(status: str, overdue: bool) -> str:
    if status == SyncStatus.PENDING:
        return _e(status) + (" <b class='failing'>(past its retry time)</b>" if overdue else "")
    return f"<b class='failing'>{_e(status)}</b>"


def _chart(days: list[DayCounts]) -> str:
    head = "<h2>Conflicts and failures per day (last 7 days, UTC)</h2>"
    if not days:
        return head + "<p class='failing'>counters unavailable (Redis)</p>"
    if not any(d.conflicts or d.failures for d in days):
        return head + f"<p class='ok'>none ({sum(d.total for d in days)} syncs)</p>"
    top = max([1] + [max(d.conflicts, d.failures) for d in days])
    slot = CHART_W // len(days)
    bars = []
    for i, d in enumerate(days):
        x = i * slot + 10
        for j, (value, colour, what) in enumerate(((d.conflicts, "#e08a00", "conflicts"),
                                                     (d.failures, "#b00020", "failures"))):
            h = round((CHART_H - 40) * value / top)
            bx, by = x + j * (BAR_W + 2), CHART_H - 20 - h
            bars.append(f"<rect x='{bx}' y='{by}' width='{BAR_W}' height='{h}' fill='{colour}'>"
                        f"<title>{_e(d.day)}: {value} {what}</title></rect>"
                        f"<text x='{bx + BAR_W / 2}' y='{by - 3}' font-size='11' text-anchor='middle'>{value}</text>")
        bars.append(f"<text x='{x + BAR_W}' y='{CHART_H - 5}' font-size='11' text-anchor='middle'>"
                    f"{_e(d.day[5:])}</text>")
    svg = (f"<svg role='img' aria-label='conflicts and failures per day' width='{CHART_W}' height='{CHART_H}' "
           f"viewBox='0 0 {CHART_W} {CHART_H}'><line x1='0' y1='{CHART_H - 20}' x2='{CHART_W}' "
           f"y2='{CHART_H - 20}' stroke='#999'/>{''.join(bars)}</svg>")
    legend = ("<p class='legend'><span style='background:#e08a00'></span>conflicts"
              "<span style='background:#b00020'></span>failures</p>")
    rows = [[_e(d.day), _e(d.total), _e(", ".join(f"{k} {v}" for k, v in sorted(d.syncs.items())) or "–"),
             _e(d.conflicts), _e(d.failures)] for d in days]
    return head + svg + legend + _table(["day", "syncs", "by outcome", "conflicts", "failures"], rows)


def _queue(f: StatusFacts) -> str:
    if f.redis_error:
        return f"<h2>Queue</h2><p class='failing'>Redis could not be read: {_e(f.redis_error)}</p>"
    check = f.last_check.describe() if f.last_check else "no sync check has run yet"
    held = f.last_check is not None and f.last_check.held
    dead = f"{f.dead_letters} (list: <code>beteiligte-sync dead-letters list</code>)" if f.dead_letters else "0"
    rows = [["queued events", _e(f.queue_depth)], ["dead letters", dead],
            ["last sync check", f"<span class='{'failing' if held else ''}'>{_e(check)}</span>"],
            ["stuck (past their bound)", "<br>".join(f"<span class='failing'>{_e(line)}</span>"
                                                     for line in f.stuck) or "none"],
            ["Advoware change feed", _e(f.feed)], ["Advoware addresses", _e(f.advoware)]]
    return "<h2>Queue and sync check</h2>" + _table(["what", "now"], rows)
