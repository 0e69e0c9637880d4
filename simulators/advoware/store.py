"""State of the simulated Advoware: the Beteiligte table, guarded by one lock.

Used from the uvicorn thread (HTTP) and from test code (direct methods) at the same time.
"""

from __future__ import annotations

import base64
import copy
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.advoware.fields import writable_values
from simulators.sorted_index import SortedIndex

STAMP_LENGTH = len("2026-01-01T00:00:00.000")  # fixed width: text order is time order


class StoreError(Exception):
    """A request the store refuses; becomes a problem+json answer."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def _utc_now() -> datetime:
    return datetime.now(UTC)


def local_stamp(instant: datetime, zone: ZoneInfo) -> str:
    """Aware instant -> the firm's local wall time, naive, ``YYYY-MM-DDTHH:MM:SS.fff``."""
    local = instant.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def _is_stamp(raw: str) -> bool:
    try:
        return datetime.fromisoformat(raw).tzinfo is None
    except ValueError:
        return False


def parse_since(raw: str, zone: ZoneInfo) -> datetime:
    """``geaendertSeit`` as a naive local datetime; an aware value is converted to the zone."""
    parsed = datetime.fromisoformat(raw.strip())
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(zone).replace(tzinfo=None)
    return parsed


class BeteiligteStore:
    def __init__(self, *, timezone: str, clock: Callable[[], datetime] | None = None) -> None:
        self.zone = ZoneInfo(timezone)
        self.clock = clock or _utc_now
        self.clock_offset_s = 0.0  # Advoware's clock ahead (+) or behind (-) the service's
        self._rows: dict[int, dict[str, Any]] = {}
        self._referenced: set[int] = set()
        self._next_betnr = 10001
        self._row_version = 0x1F40
        self._lock = threading.Lock()
        # the list order (geaendertAm, betNr) as an index, kept on every write; a stamp of another
        # width (a year before 1000) would make text order differ from time order: then every list sorts
        self._order = SortedIndex()
        self._indexed = True

    def now(self) -> datetime:
        """Advoware's clock: the service's plus :attr:`clock_offset_s`."""
        return self.clock() + timedelta(seconds=self.clock_offset_s)

    # -- helpers (call with the lock held) -------------------------------------------------
    def _stamp(self) -> str:
        return local_stamp(self.now(), self.zone)

    def _new_row_id(self) -> str:
        self._row_version += 1
        return base64.b64encode(self._row_version.to_bytes(8, "big")).decode()

    def _index(self, row: dict[str, Any]) -> None:
        self._indexed = self._indexed and len(row["geaendertAm"]) == STAMP_LENGTH
        self._order.add((row["geaendertAm"], row["betNr"]))

    def _unindex(self, row: dict[str, Any]) -> None:
        self._order.remove((row["geaendertAm"], row["betNr"]))

    def _require(self, betnr: int) -> dict[str, Any]:
        row = self._rows.get(betnr)
        if row is None:
            raise StoreError(404, "Not Found", f"Beteiligter {betnr} does not exist.")
        return row

    # -- operations --------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        values = writable_values(body, full=True)
        with self._lock:
            betnr = self._next_betnr
            self._next_betnr += 1
            stamp = self._stamp()
            row = {"betNr": betnr, **values, "rowId": self._new_row_id(), "angelegtAm": stamp,
                   "geaendertAm": stamp}
            self._rows[betnr] = row
            self._index(row)
            return copy.deepcopy(row)

    def get(self, betnr: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._rows.get(betnr)
            return copy.deepcopy(row) if row is not None else None

    def replace(self, betnr: int, body: dict[str, Any]) -> dict[str, Any]:
        """Full replacement of the writable fields, guarded by the caller's ``rowId``."""
        with self._lock:
            row = self._require(betnr)
            values = writable_values(body, full=True)
            sent = body.get("rowId")
            if sent != row["rowId"]:
                what = "missing" if sent is None else "stale"
                raise StoreError(409, "Conflict", f"rowId is {what}: Beteiligter {betnr} was changed "
                                                  "in between; read it again")
            self._unindex(row)
            row.update(values)
            row["rowId"] = self._new_row_id()
            row["geaendertAm"] = self._stamp()
            self._index(row)
            return copy.deepcopy(row)

    def edit(self, betnr: int, changes: dict[str, Any]) -> dict[str, Any]:
        """A user's edit in Advoware: only the given fields change."""
        values = writable_values(changes, full=False)
        with self._lock:
            row = self._rows.get(betnr)
            if row is None:
                raise KeyError(betnr)
            self._unindex(row)
            row.update(values)
            row["rowId"] = self._new_row_id()
            row["geaendertAm"] = self._stamp()
            self._index(row)
            return copy.deepcopy(row)

    def bulk_edit(self, betnrs: list[int], changes: dict[str, Any], *, stamp: str | None = None) -> str:
        """A bulk job in Advoware: the same change to many rows at once, all with one ``geaendertAm``
        (rows sharing a stamp, across list pages); returns the stamp. With ``stamp`` the rows carry that
        one, however late they commit (a transaction that began earlier: a row arriving late)."""
        values = writable_values(changes, full=False)
        if stamp is not None and (len(stamp) != STAMP_LENGTH or not _is_stamp(stamp)):
            raise ValueError(f"stamp {stamp!r}: expected YYYY-MM-DDTHH:MM:SS.fff (the firm's local time)")
        with self._lock:
            stamp = stamp or self._stamp()
            for betnr in betnrs:
                row = self._require(betnr)
                self._unindex(row)
                row.update(values)
                row["rowId"] = self._new_row_id()
                row["geaendertAm"] = stamp
                self._index(row)
            return stamp

    def delete(self, betnr: int, *, force: bool = False) -> None:
        with self._lock:
            self._require(betnr)
            if betnr in self._referenced and not force:
                raise StoreError(409, "Conflict", f"Beteiligter {betnr} is still referenced by a matter "
                                                  "(Akte) and cannot be deleted.")
            self._unindex(self._rows.pop(betnr))
            self._referenced.discard(betnr)

    def set_referenced(self, betnr: int, referenced: bool) -> None:
        with self._lock:
            if betnr not in self._rows:
                raise KeyError(betnr)
            if referenced:
                self._referenced.add(betnr)
            else:
                self._referenced.discard(betnr)

    def query(self, *, since: datetime | None, skip: int, take: int) -> list[dict[str, Any]]:
        """Rows changed at or after ``since`` by ``geaendertAm, betNr``: a seek in the index and the
        page, like the database; a copy of the page only."""
        with self._lock:
            if not self._indexed:
                return self._sorted_query(since, skip, take)
            start = 0 if since is None else self._order.first_at_least(
                since, key=lambda k: datetime.fromisoformat(k[0]))
            # every value is a str, an int or None: a flat copy is a full one, at a tenth of deepcopy's cost
            return [dict(self._rows[k[1]]) for k in self._order.ascending(start + skip, take)]

    def _sorted_query(self, since: datetime | None, skip: int, take: int) -> list[dict[str, Any]]:
        rows = list(self._rows.values())
        if since is not None:
            rows = [r for r in rows if datetime.fromisoformat(r["geaendertAm"]) >= since]
        rows.sort(key=lambda r: (r["geaendertAm"], r["betNr"]))
        return [copy.deepcopy(r) for r in rows[skip : skip + take]]

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r) for r in sorted(self._rows.values(), key=lambda r: r["betNr"])]

