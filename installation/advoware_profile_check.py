"""``doctor --advoware``: what one Beteiligter and the list endpoint, as the wire answers them, say about
the wire profile (:mod:`config.advoware_profile`). Pure: the reads are the doctor's
(:mod:`entrypoints.doctor_advoware`). One line per field; field names and formats only, never a value
(a name or a birth date is personal data)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from config.advoware_dates import KNOWN_DATES, KNOWN_TIMESTAMPS, DatePattern
from config.advoware_profile import DATE_FIELD, FIELDS, TIMESTAMP_FIELDS, AdvowareProfile, Casing
from installation.setup_report import Line, Status, fail, ok, warn

PROFILE_KEYS = "profile keys to change"
LIST_ANSWER = "list answer"
SINCE_SLACK = timedelta(minutes=1)  # rows this much older than the since asked for: the parameter is ignored


@dataclass
class Changes:
    """The profile keys doctor suggests, in the order found (a key once)."""

    keys: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, value: str) -> str:
        self.keys.setdefault(key, value)
        return f"{key} = {value}"

    def line(self, source: str, *, failed: bool = False) -> Line:
        """``failed``: a check above failed without naming a key (then the profile is not said to fit)."""
        if not self.keys and failed:
            return fail(PROFILE_KEYS, "none found, but checks above failed: their fixes say what to do")
        if not self.keys:
            return ok(PROFILE_KEYS, f"none: the profile {source} fits what Advoware answered")
        settings = "; ".join(f"{k} = {v}" for k, v in self.keys.items())
        return fail(PROFILE_KEYS, settings, f"set them in a copy of {source} and point ADVOWARE_PROFILE at the "
                                            "copy, then run doctor --advoware again")


def _casing_of(name: str, wire: str) -> Casing | None:
    if wire == name:
        return Casing.CAMEL
    if wire == name[:1].upper() + name[1:]:
        return Casing.PASCAL
    return None


def field_lines(p: AdvowareProfile, obj: dict[str, Any], zone: ZoneInfo, changes: Changes) -> list[Line]:
    """A line per field of the profile: found under its name, under another spelling, or missing. When
    most fields are found in the other casing, ``casing`` is the change; the rest get a [fields] entry."""
    by_lower = {k.lower(): k for k in obj}
    elsewhere = {name: by_lower.get(p.wire_name(name).lower()) for name in FIELDS if p.wire_name(name) not in obj}
    counts = Counter(_casing_of(n, w) for n, w in elsewhere.items() if w)
    best, many = counts.most_common(1)[0] if counts else (None, 0)
    flip = best if best is not None and best != p.casing and many > len(FIELDS) // 2 else None
    lines = []
    for name in FIELDS:
        wire, check = p.wire_name(name), f"field {name}"
        if wire in obj:
            lines.append(_value_line(p, check, wire, name, obj[wire], zone, changes))
            continue
        other = elsewhere[name]
        if other is None:
            placeholder = '"<its name in your Advoware>"'
            lines.append(fail(check, f"missing: the answer has no {wire} (nor another spelling of it)",
                              f"{changes.add(f'[fields] {name}', placeholder)} (ask the Advoware administrator)"))
            continue
        if flip is not None and _casing_of(name, other) == flip and name not in p.fields:  # [fields] wins
            key = changes.add("casing", f'"{flip}"')
        else:
            key = changes.add(f"[fields] {name}", f'"{other}"')
        text = f"found as {other}, the profile expects {wire} → {key}"
        if name in TIMESTAMP_FIELDS or name == DATE_FIELD:
            text += "; " + _date_line(p, check, other, name, obj[other], zone, changes).text
        lines.append(fail(check, text))
    return lines


def _value_line(p: AdvowareProfile, check: str, wire: str, name: str, value: Any, zone: ZoneInfo,
                changes: Changes) -> Line:
    if name == "betNr" and not (isinstance(value, int) and not isinstance(value, bool)):
        return fail(check, f"present as {wire}, but not a number", "the sync needs Advoware's numeric key")
    if name == "rowId" and not (isinstance(value, str) and value):
        return fail(check, f"present as {wire}, but empty or not text", "the sync needs a row version on every "
                                                                         "Beteiligter (ask the administrator)")
    if name in TIMESTAMP_FIELDS or name == DATE_FIELD:
        return _date_line(p, check, wire, name, value, zone, changes)
    return ok(check, f"present as {wire}")


def _date_line(p: AdvowareProfile, check: str, wire: str, name: str, value: Any, zone: ZoneInfo,
               changes: Changes) -> Line:
    key = "geburtsdatum_format" if name == DATE_FIELD else "geaendert_am_format"
    pattern: DatePattern = getattr(p, key)
    if value is None:
        return warn(check, f"present as {wire}, empty in this Beteiligter: its format was not checked",
                    "run doctor --advoware --betnr N with a Beteiligter that has one")
    if isinstance(value, str) and pattern.matches(value, zone):
        return ok(check, f"present as {wire}, format {pattern.human()} matches")
    known = KNOWN_DATES if name == DATE_FIELD else KNOWN_TIMESTAMPS
    fits = next((DatePattern(k) for k in known if isinstance(value, str) and DatePattern(k).matches(value, zone)),
                None)
    if fits is None:
        return fail(check, f"present as {wire}, but not in the form {pattern.human()} nor a known one",
                    f"write its pattern as {key} (docs/advoware.md: date patterns)")
    suggestion = changes.add(key, f'"{fits.pattern}"')
    return fail(check, f"present as {wire}, in the form {fits.human()}, not {pattern.human()} → {suggestion}")


def unprobed_lines(p: AdvowareProfile) -> list[Line]:
    """What a read cannot tell: the answers to writes, and the zone of timestamps without an offset."""
    how = ("not probed (it would write): after doctor passes, link one test Beteiligter and sync it once; a "
           "wrong value fails that sync with a syncErrorMessage naming")
    zone = "timezone" if p.timezone else "ADVOWARE_TIMEZONE"
    return [
        Line(Status.SKIP, "PUT answer", f"put_answer = \"{p.put_answer}\": {how} 'PUT Beteiligte/{{betNr}}: "
                                        "expected ... (put_answer of ADVOWARE_PROFILE)'"),
        Line(Status.SKIP, "POST answer", f"post_answer = \"{p.post_answer}\", post_returns_row_id = "
                                         f"{str(p.post_returns_row_id).lower()}: not probed (it would write); "
                                         "post_returns_row_id = true is safe either way (an answer without rowId costs "
                                         "one GET per create), false always reads the new Beteiligter once; a wrong "
                                         f"post_answer fails the first create with a syncErrorMessage naming it"),
        Line(Status.SKIP, "time zone", f"{zone} is not probed: it must be the zone Advoware writes geaendertAm in "
                                       "(ask the administrator; with %z in geaendert_am_format the stamps carry it)"),
    ]


@dataclass(frozen=True)
class ListShape:
    """What a list request answered: a bare array (``key`` None), an object holding the rows under ``key``,
    an object with several lists (``choices``), or no list at all (``is_list`` False)."""

    is_list: bool
    key: str | None = None
    choices: tuple[str, ...] = ()

    def rows(self, answer: Any) -> list[Any] | None:
        """``answer``'s rows read in this shape; None when it has another one."""
        if self.key is None:
            return answer if isinstance(answer, list) and not self.choices else None
        rows = answer.get(self.key) if isinstance(answer, dict) else None
        return rows if isinstance(rows, list) else None

    def words(self) -> str:
        return "a bare JSON array" if self.key is None else f'an object with the rows under "{self.key}"'


def list_shape(answer: Any, declared: str | None) -> ListShape:
    """The shape of a list answer; the profile's ``list_items`` wins among several list-valued keys."""
    if isinstance(answer, list):
        return ListShape(True)
    keys = [k for k, v in answer.items() if isinstance(v, list)] if isinstance(answer, dict) else []
    if declared in keys or len(keys) == 1:
        return ListShape(True, declared if declared in keys else keys[0])
    return ListShape(bool(keys), choices=tuple(keys))


def shape_lines(p: AdvowareProfile, path: str, shape: ListShape, changes: Changes) -> list[Line]:
    """Whether the list answers in the shape ``list_items`` declares, and the value to set when not."""
    if shape.choices:
        key = changes.add("list_items", f'"<one of {", ".join(shape.choices)}>"')
        return [fail(LIST_ANSWER, f"GET {path} answers an object with several lists ({', '.join(shape.choices)}) "
                                  f"→ {key}", "set list_items to the key holding the Beteiligte")]
    if shape.key == p.list_items:
        return [ok(LIST_ANSWER, f"{shape.words()}, as list_items says")]
    expected = ListShape(True, p.list_items).words()
    key = changes.add("list_items", f'"{shape.key or ""}"')
    return [fail(LIST_ANSWER, f"GET {path} answers {shape.words()}, the profile expects {expected} → {key}")]


def older_rows(p: AdvowareProfile, rows: list[Any], since: datetime, zone: ZoneInfo) -> int:
    """How many rows (of a list asked for the changes since ``since``, a wall time of ``zone``) changed more
    than :data:`SINCE_SLACK` before it: an Advoware that honours its since parameter answers none."""
    patterns = [p.geaendert_am_format, *(DatePattern(k) for k in KNOWN_TIMESTAMPS)]
    older = 0
    for row in rows:
        by_lower = {str(k).lower(): v for k, v in row.items()} if isinstance(row, dict) else {}
        stamp = by_lower.get(p.wire_name("geaendertAm").lower(), by_lower.get("geaendertam"))
        if not isinstance(stamp, str):
            continue  # no stamp to tell by
        for pattern in patterns:
            try:
                older += pattern.parse(stamp, zone) < since - SINCE_SLACK
                break
            except ValueError:
                continue
    return older
