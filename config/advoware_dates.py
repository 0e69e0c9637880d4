"""Date patterns of an Advoware wire profile: a small strftime-like language that formats and parses
both ways (``strptime`` reads neither 7 fraction digits nor a fixed ``T00:00:00`` reliably).

Tokens: ``%Y`` year, ``%m`` month, ``%d`` day, ``%H`` ``%M`` ``%S`` time, ``%3f`` / ``%6f`` / ``%7f``
fraction of a second with that many digits (read also with its trailing zeros trimmed, as .NET writes
it), ``%z`` offset (``+01:00``, or ``Z`` for UTC), ``%%`` a percent sign; everything else is literal
(``T00:00:00`` in a birth date is literal text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

TOKENS = {
    "%Y": (r"(?P<Y>\d{4})", "YYYY"),
    "%m": (r"(?P<m>\d{2})", "MM"),
    "%d": (r"(?P<d>\d{2})", "DD"),
    "%H": (r"(?P<H>\d{2})", "HH"),
    "%M": (r"(?P<M>\d{2})", "MM"),
    "%S": (r"(?P<S>\d{2})", "SS"),
    "%3f": (r"(?P<f>\d{3})", "fff"),
    "%6f": (r"(?P<f>\d{6})", "ffffff"),
    "%7f": (r"(?P<f>\d{7})", "fffffff"),
    "%z": (r"(?P<z>Z|[+-]\d{2}:\d{2})", "+HH:MM"),
    "%%": (r"%", "%"),
}
_TOKEN = re.compile(r"%(?:[3-7]f|.)")
DATE_PARTS = ("%Y", "%m", "%d")
TIME_PARTS = ("%H", "%M", "%S")
FRACTIONS = ("%3f", "%6f", "%7f")


class PatternError(ValueError):
    """A pattern that cannot work; the message names what is missing or unknown."""


@dataclass(frozen=True)
class DatePattern:
    pattern: str

    def parts(self) -> list[str]:
        return _TOKEN.findall(self.pattern)

    def check(self, *, with_time: bool) -> None:
        """Unknown tokens, a part twice, no day (or no time and milliseconds for a timestamp) are refused."""
        parts = self.parts()
        unknown = [p for p in parts if p not in TOKENS]
        if unknown:
            raise PatternError(f"unknown token {unknown[0]} (known: {', '.join(TOKENS)})")
        twice = sorted({p for p in parts if p != "%%" and parts.count(p) > 1})
        if twice or sum(p in FRACTIONS for p in parts) > 1:
            raise PatternError(f"a part appears twice ({', '.join(twice) or 'fraction'})")
        need = DATE_PARTS + (TIME_PARTS if with_time else ())
        missing = [p for p in need if p not in parts]
        if missing:
            raise PatternError(f"has no {', '.join(missing)} (year, month and day{', time' if with_time else ''} "
                               "are needed)")
        if with_time and not any(p in FRACTIONS for p in parts):
            raise PatternError("has no fraction of a second: use %3f, %6f or %7f (milliseconds must survive)")

    def human(self) -> str:
        """``%Y-%m-%dT00:00:00`` → ``YYYY-MM-DDT00:00:00`` (for messages)."""
        return _TOKEN.sub(lambda m: TOKENS.get(m.group(0), (None, m.group(0)))[1], self.pattern)

    def _regex(self, *, lenient: bool) -> re.Pattern[str]:
        """A fraction may come with its trailing zeros trimmed, ``.`` and all when it is zero (.NET's JSON
        writers do that); ``lenient`` also takes more digits than the pattern's (they are cut)."""
        out, pos = [], 0
        for m in _TOKEN.finditer(self.pattern):
            literal, token = self.pattern[pos:m.start()], m.group(0)
            if token in FRACTIONS:
                dot = r"\." if literal.endswith(".") else ""
                literal = literal.removesuffix(".") if dot else literal
                digits = "1,9" if lenient else f"1,{token[1]}"
                out += [re.escape(literal), rf"(?:{dot}(?P<f>\d{{{digits}}}))?"]
            else:
                out += [re.escape(literal), TOKENS[token][0]]
            pos = m.end()
        out.append(re.escape(self.pattern[pos:]))
        return re.compile("^" + "".join(out) + "$")

    def parse(self, text: str, zone: ZoneInfo, *, lenient: bool = True) -> datetime:
        """A naive wall time of ``zone``; a value with an offset is converted to ``zone``. ``ValueError``
        when the text does not have this pattern's form or is no date."""
        m = self._regex(lenient=lenient).match(text)
        if not m:
            raise ValueError(f"does not have the form {self.human()}")
        g = m.groupdict()
        fraction = (g.get("f") or "0").ljust(7, "0")
        micro = int(fraction[:6])
        when = datetime(int(g["Y"]), int(g["m"]), int(g["d"]), int(g.get("H") or 0), int(g.get("M") or 0),
                        int(g.get("S") or 0), micro)
        offset = g.get("z")
        if offset:
            when = when.replace(tzinfo=_offset(offset)).astimezone(zone).replace(tzinfo=None)
        return when

    def format(self, when: datetime, zone: ZoneInfo) -> str:
        """``when`` (naive: a wall time of ``zone``; aware: converted to ``zone``) in this pattern."""
        local = when.astimezone(zone) if when.tzinfo is not None else when.replace(tzinfo=zone)
        values = {"%Y": f"{local.year:04d}", "%m": f"{local.month:02d}", "%d": f"{local.day:02d}",
                  "%H": f"{local.hour:02d}", "%M": f"{local.minute:02d}", "%S": f"{local.second:02d}",
                  "%3f": f"{local.microsecond // 1000:03d}", "%6f": f"{local.microsecond:06d}",
                  "%7f": f"{local.microsecond:06d}0", "%z": _offset_text(local), "%%": "%"}
        return _TOKEN.sub(lambda m: values[m.group(0)], self.pattern)

    def matches(self, text: str, zone: ZoneInfo) -> bool:
        """Whether ``text`` has this form (a fraction at most as long as the pattern's: doctor tells them apart)."""
        try:
            self.parse(text, zone, lenient=False)
        except ValueError:
            return False
        return True


def _offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _offset_text(local: datetime) -> str:
    delta = local.utcoffset() or timedelta(0)
    if not delta:
        return "Z"
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# The patterns doctor tries when a value does not have the profile's form (what it then suggests).
KNOWN_TIMESTAMPS = ("%Y-%m-%dT%H:%M:%S.%3f", "%Y-%m-%dT%H:%M:%S.%7f", "%Y-%m-%dT%H:%M:%S.%6f",
                    "%Y-%m-%dT%H:%M:%S.%3f%z", "%Y-%m-%dT%H:%M:%S.%7f%z", "%Y-%m-%d %H:%M:%S.%3f")
KNOWN_DATES = ("%Y-%m-%dT00:00:00", "%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%dT00:00:00%z", "%Y-%m-%dT00:00:00.%3f")
