"""The simulated Advoware's own ``/__sim`` control routes, for testers and the sandbox CLI (issue 20):

``POST /__sim/bulk-change`` ``{"count": N | "betnrs": [...], "changes": {"ort": "X"}, "stamp": "..."}``
    a bulk job in Advoware: the same change to ``count`` rows (the lowest ``betNr`` first) or to the
    given ones, all with one ``geaendertAm``; ``stamp`` (the firm's local time) makes them a late commit
    of a transaction that began then. Answers ``{"changed": n, "geaendertAm": stamp}``.
``GET|POST /__sim/clock`` ``{"local": "2026-10-25T02:59:00", "fold": 0}`` | ``{"utc": "..."}`` |
    ``{"offset_s": s}`` | ``{"advance_s": s}``: Advoware's clock, whose local time stamps every write
    (``fold`` 1 is the second pass of the repeated autumn hour). Answers the clock's state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from simulators.advoware.fields import WRITABLE_FIELDS, FieldError
from simulators.advoware.store import BeteiligteStore, StoreError, local_stamp

Answer = tuple[int, Any]


def _body(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def bulk_change(store: BeteiligteStore, method: str, raw: bytes) -> Answer:
    body = _body(raw)
    if method != "POST" or body is None:
        return 400, {"error": 'POST a JSON object: {"count": N, "changes": {"ort": "X"}} (or "betnrs": [...])'}
    changes = body.get("changes")
    if not isinstance(changes, dict) or not changes or set(changes) - set(WRITABLE_FIELDS):
        return 400, {"error": f"changes must be an object of writable fields: {', '.join(WRITABLE_FIELDS)}"}
    if body.get("stamp") is not None and not isinstance(body["stamp"], str):
        return 400, {"error": "stamp is the firm's local time as text, YYYY-MM-DDTHH:MM:SS.fff"}
    betnrs = body.get("betnrs")
    if betnrs is None:
        count = body.get("count")
        if not isinstance(count, int) or count < 1:
            return 400, {"error": "count must be a positive number of rows (or give betnrs)"}
        betnrs = [r["betNr"] for r in store.all()[:count]]
    elif not isinstance(betnrs, list) or not all(isinstance(b, int) for b in betnrs):
        return 400, {"error": "betnrs must be a list of numbers"}
    try:
        used = store.bulk_edit(betnrs, changes, stamp=body.get("stamp"))
    except (FieldError, ValueError) as exc:
        return 400, {"error": str(exc)}
    except StoreError as exc:
        return exc.status, {"error": exc.detail}
    return 200, {"changed": len(betnrs), "geaendertAm": used}


def clock_state(store: BeteiligteStore) -> dict[str, Any]:
    now = store.now()
    return {"offset_s": store.clock_offset_s, "utc": now.isoformat(), "local": local_stamp(now, store.zone),
            "utc_offset": str(now.astimezone(store.zone).utcoffset())}


def _target(body: dict[str, Any], store: BeteiligteStore) -> datetime:
    if "local" in body:
        local = datetime.fromisoformat(str(body["local"]))
        if local.tzinfo is not None:
            raise ValueError("local is the firm's wall time without an offset (give fold 0 or 1 for the repeated hour)")
        return local.replace(tzinfo=store.zone, fold=int(body.get("fold", 0))).astimezone(UTC)
    utc = datetime.fromisoformat(str(body["utc"]))
    if utc.tzinfo is None:
        raise ValueError("utc needs an offset, e.g. 2026-10-25T00:59:00+00:00")
    return utc


def clock(store: BeteiligteStore, method: str, raw: bytes) -> Answer:
    body = _body(raw)
    if method == "GET":
        return 200, clock_state(store)
    if method != "POST" or body is None or len(body.keys() & {"local", "utc", "offset_s", "advance_s"}) != 1 \
            or ("fold" in body and "local" not in body and body["fold"]):
        return 400, {"error": 'POST one of {"local": "YYYY-MM-DDTHH:MM:SS", "fold": 0|1}, {"utc": ...}, '
                              '{"offset_s": seconds}, {"advance_s": seconds}'}
    try:
        if "offset_s" in body:
            store.clock_offset_s = float(body["offset_s"])
        elif "advance_s" in body:
            store.clock_offset_s += float(body["advance_s"])
        else:
            store.clock_offset_s = (_target(body, store) - store.clock()).total_seconds()
    except (TypeError, ValueError) as exc:
        return 400, {"error": str(exc)}
    return 200, clock_state(store)


def control_actions(store: BeteiligteStore) -> dict[str, Callable[[str, bytes], Answer]]:
    return {"/__sim/bulk-change": lambda method, raw: bulk_change(store, method, raw),
            "/__sim/clock": lambda method, raw: clock(store, method, raw)}
