"""Where the change feed stands inside its overlap window, so an idle poll reads only what it has not read.

The feed reads from ``since`` (its watermark minus the overlap). The rows of that window it has read,
in list order, are the cursor's ``rows``; their count is ``n``, the last one is the anchor.

- **Tail read** (a window longer than a page, e.g. after a burst): the poll asks for ``skip = n - 1``
  and one page. Its first row must be the anchor; the rest are new. One request per idle poll however
  many rows a burst left in the window.
- **Full read** from ``since`` (rows read before are not handled again): when the window fits a page
  (one request as well), when the cursor is unknown, when the anchor moved, and before rows leave the
  window.

A row that arrives late with a stamp inside the window (the case the overlap exists for), or a row
deleted, shifts the anchor: the window is read whole at once. A row of the window changed again shows up
behind the anchor with a ``betNr`` the window holds: the anchor is then looked for that many rows
earlier (one more request); found there, nothing else moved.

Two things move rows without moving the anchor: a late row whose own earlier version was in the window
before the anchor (or a row deleted as a late one arrives), and a row changed with an earlier stamp than
the anchor's (Advoware's clock went back: the repeated autumn hour). So, like the overlap itself, the
cursor relies on this: a row is visible before rows stamped more than the overlap after it. When the
watermark moves on, the rows about to leave the window are read once more, whole (``until``): a late
row hidden so far is found then, at the latest. In the hour after the clocks went back the window is
read whole every poll (``trust=False``).

Redis keeps the rows with a token, written only when they change (an idle poll writes nothing); the
process that wrote them keeps them in memory too, another one (the feed's lease moved) loads them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Key = tuple[str, int, str]  # geaendertAm, betNr, rowId


def row_key(row: dict[str, Any]) -> Key:
    return str(row.get("geaendertAm") or ""), int(row["betNr"]), str(row.get("rowId"))


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


@dataclass
class WindowCursor:
    since: str
    token: str = ""
    rows: list[Key] = field(default_factory=list)
    known: dict[int, str] = field(default_factory=dict)  # betNr -> rowId of ``rows``
    until: str | None = None  # a full read from ``since`` is under way; then the window starts here
    seen: dict[int, str] = field(default_factory=dict)  # read before the full read: not handled again
    back: int = 0  # the next read starts this many rows before the anchor (see accept)
    rereads: int = 0  # full reads because the window changed underneath (this poll)

    @property
    def since_dt(self) -> datetime:
        return _at(self.since)

    def signature(self) -> tuple[str, str | None, int]:
        return self.since, self.until, hash(tuple(self.rows))

    @property
    def skip(self) -> int:
        return max(0, len(self.rows) - 1 - self.back)

    def begin(self, start: str, *, trust: bool, page: int) -> None:
        """Choose this poll's read for the window starting at ``start`` (watermark minus overlap).
        ``trust=False`` (the hour after the clocks went back): each read is a full one, the next one
        starting when the last is complete (a window longer than a poll's reads is still read to its end)."""
        self.rereads, self.back = 0, 0
        if not self.since or _at(start) < self.since_dt:
            self.since, self.until = start, None  # the window grew backwards (autumn): read it whole
            self._restart()
        elif self.until is not None:
            self.until = max(self.until, start, key=_at)  # a full read under way goes on
        elif not trust or (self.rows and _at(self.rows[0][0]) < _at(start)):
            self.until = start  # rows leave the window: read them once more before they do
            self._restart()
        elif _at(start) > self.since_dt:
            self.since = start
        if self.until is None and len(self.rows) < page:
            self._restart()  # the window fits a page: a full read costs the same one request

    def _restart(self) -> None:
        self.seen.update(self.known)
        self.rows, self.known, self.back = [], {}, 0

    def accept(self, page: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The rows of ``page`` not read before; ``None`` when the caller must ask again at :attr:`skip`:
        either ``back`` rows earlier (rows of the window changed again and moved behind the anchor), or
        from ``since`` (the window changed underneath: a full read)."""
        page = [r for r in page if isinstance(r.get("betNr"), int)]
        skip, back = self.skip, self.back
        self.back = 0
        if self.rows:
            anchor = self.rows[-1]
            head = page[0] if page else {}
            if head.get("betNr") == anchor[1] and str(head.get("rowId")) == anchor[2]:
                fresh = page[1:]
                again = [r["betNr"] for r in fresh if r["betNr"] in self.known]
                if len(again) == back and not self._shifted(fresh):
                    return self._take(fresh, again)
            elif back == 0 and not self._shifted(page):
                again = [r["betNr"] for r in page if r["betNr"] in self.known]
                if again and anchor[1] not in again and len(again) <= skip:
                    self.back = len(again)  # rows of the window changed again: the anchor moved up
                    return None
            self.rereads += 1
            self._restart()
            if skip > 0:
                return None
        return self._take(page, [])  # a page at skip 0 is the first of a full read

    def _shifted(self, rows: list[dict[str, Any]]) -> bool:
        """A row read before shows up again unchanged: something arrived before it."""
        return any(self.known.get(r["betNr"]) == str(r.get("rowId")) for r in rows)

    def _take(self, page: list[dict[str, Any]], moved: list[int]) -> list[dict[str, Any]]:
        if moved:
            gone = set(moved)
            self.rows = [k for k in self.rows if k[1] not in gone]
            for betnr in gone:
                self.known.pop(betnr, None)
        fresh = []
        for row in page:
            stamp, betnr, row_id = row_key(row)
            self.rows.append((stamp, betnr, row_id))
            self.known[betnr] = row_id
            if self.seen.get(betnr) != row_id:
                fresh.append(row)
        return fresh

    def finish(self) -> None:
        """The read reached the end of the list: a full read under way is complete."""
        self.seen = {}
        if self.until is not None:
            start = _at(self.until)
            drop = 0
            while drop < len(self.rows) and _at(self.rows[drop][0]) < start:
                drop += 1
            for _, betnr, _ in self.rows[:drop]:
                self.known.pop(betnr, None)
            del self.rows[:drop]
            self.since, self.until = self.until, None

    def saved(self) -> dict[str, str]:
        """The fields Redis keeps, with a new token (a process holding another one loads the rows)."""
        self.token = uuid.uuid4().hex
        window = {"since": self.since, "until": self.until, "rows": [list(k) for k in self.rows]}
        return {"token": self.token, "window": json.dumps(window)}


def _restore(token: str, window: str | None) -> WindowCursor | None:
    try:
        saved = json.loads(window or "")
        rows = [(str(s), int(b), str(r)) for s, b, r in saved["rows"]]
        until = str(saved["until"]) if saved.get("until") else None
        return WindowCursor(since=str(saved["since"]), token=token, rows=rows,
                            known={k[1]: k[2] for k in rows}, until=until)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # missing or damaged: the window is read whole


class CursorMemory:
    """This process's cursor. Redis holds its token and rows; a process that did not write the token
    it finds there (the feed's lease moved) loads the rows from Redis once."""

    def __init__(self) -> None:
        self._cursor: WindowCursor | None = None

    def forget(self) -> None:
        """A poll failed half-way: rows taken into the cursor may not have been handled. The next poll
        starts from what Redis holds (the last poll that finished)."""
        self._cursor = None

    def knows(self, token: str | None) -> bool:
        return bool(token) and self._cursor is not None and self._cursor.token == token

    def load(self, token: str | None, window: str | None) -> WindowCursor:
        """The cursor Redis names (``window`` is only read when this process does not know ``token``);
        a new one without a token: the caller then calls :meth:`WindowCursor.begin`."""
        mine = self._cursor if self.knows(token) else (_restore(token, window) if token else None)
        self._cursor = mine or WindowCursor(since="")
        return self._cursor
