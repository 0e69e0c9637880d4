"""Advoware wire profiles: how one firm's Advoware spells the Beteiligte resource (docs/advoware.md).

A profile is a TOML file (``ADVOWARE_PROFILE``: a path, or the name of a file shipped in
``config/advoware_profiles/``). The client (:mod:`adapters.advoware_api`) and the simulator read the
same file; the rest of the service sees only the internal camelCase records. Unknown keys and
impossible combinations are refused with the file and line (:class:`ProfileError`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.advoware_dates import DatePattern, PatternError

SHIPPED = Path(__file__).resolve().parent / "advoware_profiles"
DEFAULT_PROFILE = "default"

# The fields of a Beteiligter by their internal names (spec §2.2); a profile names them on the wire.
FIELDS: tuple[str, ...] = (
    "betNr", "rowId", "name", "vorname", "anrede", "titel", "rechtsform", "geburtsdatum",
    "handelsRegisterNummer", "registergericht", "email", "telefon", "strasse", "plz", "ort", "land",
    "kurzname", "briefAnrede", "geburtsname", "zusatz", "angelegtAm", "geaendertAm",
)
TIMESTAMP_FIELDS = ("angelegtAm", "geaendertAm")
DATE_FIELD = "geburtsdatum"


class Casing(StrEnum):
    CAMEL = "camel"
    PASCAL = "pascal"


class PutAnswer(StrEnum):
    ARRAY = "array"  # [ {the object} ]
    OBJECT = "object"  # {the object}
    NONE = "none"  # no body (200 or 204): the client reads the object with one GET


class PostAnswer(StrEnum):
    BODY = "body"  # the created object (201 or 200)
    LOCATION = "location"  # 201, Location: .../Beteiligte/{betNr}, any body: the client reads the object (one GET)


class ProfileError(ValueError):
    """A profile that cannot be used: one line with the file, the line and the fix."""


@dataclass(frozen=True)
class AdvowareProfile:
    source: str
    resource_path: str = "api/v1/advonet/Beteiligte"
    casing: Casing = Casing.CAMEL
    fields: dict[str, str] = field(default_factory=dict)  # internal name → wire name, overriding casing
    put_answer: PutAnswer = PutAnswer.ARRAY
    post_returns_row_id: bool = True
    post_answer: PostAnswer = PostAnswer.BODY
    list_path: str | None = "api/v1/advonet/Beteiligte"  # None: no list endpoint
    list_since_param: str = "geaendertSeit"
    list_skip_param: str = "skip"
    list_take_param: str = "take"
    list_max_take: int = 200
    list_items: str | None = None  # the key of the list answer's object holding the rows (None: a bare array)
    geaendert_am_format: DatePattern = DatePattern("%Y-%m-%dT%H:%M:%S.%3f")
    geburtsdatum_format: DatePattern = DatePattern("%Y-%m-%dT00:00:00")
    timezone: str | None = None  # None: ADVOWARE_TIMEZONE decides
    _internal: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._internal.update({wire: name for name, wire in self.wire_names().items()})

    def wire_name(self, name: str) -> str:
        if name in self.fields:
            return self.fields[name]
        return name[:1].upper() + name[1:] if self.casing == Casing.PASCAL else name

    def wire_names(self) -> dict[str, str]:
        return {name: self.wire_name(name) for name in FIELDS}

    def internal_name(self, wire: str) -> str:
        return self._internal.get(wire, wire)

    @property
    def has_list(self) -> bool:
        return self.list_path is not None


# key → (type, allowed values or None); the table [fields] is checked on its own.
KEYS: dict[str, tuple[type | tuple[type, ...], tuple[str, ...] | None]] = {
    "resource_path": (str, None),
    "casing": (str, tuple(Casing)),
    "put_answer": (str, tuple(PutAnswer)),
    "post_returns_row_id": (bool, None),
    "post_answer": (str, tuple(PostAnswer)),
    "list_endpoint": ((bool, str), None),
    "list_since_param": (str, None),
    "list_skip_param": (str, None),
    "list_take_param": (str, None),
    "list_max_take": (int, None),
    "list_items": (str, None),
    "geaendert_am_format": (str, None),
    "geburtsdatum_format": (str, None),
    "timezone": (str, None),
    "fields": (dict, None),
}


def resolve(name_or_path: str) -> Path:
    """A shipped profile's name (``default``, ``pascal-object``, ``no-list``) or a file's path."""
    shipped = SHIPPED / f"{name_or_path.removesuffix('.toml')}.toml"
    given = Path(name_or_path).expanduser()
    if "/" not in name_or_path and shipped.is_file() and not (name_or_path.endswith(".toml") and given.exists()):
        return shipped  # "pascal-object" or "pascal-object.toml"; a file of that name in the folder wins
    return given


@lru_cache(maxsize=32)
def load_profile(name_or_path: str = DEFAULT_PROFILE) -> AdvowareProfile:
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Windows editors save a byte order mark
    except OSError as exc:
        shipped = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.toml")))
        raise ProfileError(f"{path}: cannot be read ({exc.strerror or exc}): give a TOML file's path or one of "
                           f"{shipped}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\s*\(at line (\d+), column \d+\)", str(exc))
        where, why = (f"{path}:{at.group(1)}", str(exc)[: at.start()]) if at else (str(path), str(exc))
        raise ProfileError(f"{where}: not TOML ({why})") from None
    return _build(str(path), text, data)


def _line(text: str, key: str, table: str | None = None) -> int:
    """The line a key is set on (tomllib keeps no positions): the first ``key =`` in its table."""
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1)
            continue
        if current == table and re.match(rf'^"?{re.escape(key)}"?\s*=', stripped):
            return number
        if current is None and table and re.match(rf'^{re.escape(table)}\s*\.\s*"?{re.escape(key)}"?\s*=', stripped):
            return number  # a dotted key: fields.betNr = "BetNr"
    return 1


class _Where:
    def __init__(self, source: str, text: str) -> None:
        self.source, self.text = source, text

    def error(self, key: str, message: str, table: str | None = None) -> ProfileError:
        return ProfileError(f"{self.source}:{_line(self.text, key, table)}: {key}: {message}")


def _build(source: str, text: str, data: dict[str, Any]) -> AdvowareProfile:
    at = _Where(source, text)
    for key, value in data.items():
        if key not in KEYS:
            raise at.error(key, f"unknown key (known: {', '.join(KEYS)})")
        kind, allowed = KEYS[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise at.error(key, f"has the wrong type ({type(value).__name__})")
        if allowed is not None and value not in allowed:
            raise at.error(key, f"{value!r} is not one of {', '.join(allowed)}")
    resource = str(data.get("resource_path", AdvowareProfile.resource_path)).strip("/")
    if not resource:
        raise at.error("resource_path", "is empty: e.g. api/v1/advonet/Beteiligte")
    listing = data.get("list_endpoint", True)
    if isinstance(listing, str) and not listing.strip().strip("/"):
        raise at.error("list_endpoint", "is empty: true, false or the list's path relative to ADVOWARE_URL")
    for key in ("resource_path", "list_endpoint"):
        if isinstance(data.get(key), str) and re.search(r"://|[?#\s]", data[key].strip()):
            raise at.error(key, "is a path relative to ADVOWARE_URL, without scheme, host or query (e.g. "
                                "api/v1/advonet/Beteiligte); the address goes into ADVOWARE_URL")
    list_path = resource if listing is True else listing.strip().strip("/") if isinstance(listing, str) else None
    fields = _fields(at, data.get("fields", {}))
    profile = AdvowareProfile(
        source=source, resource_path=resource, casing=Casing(data.get("casing", Casing.CAMEL)), fields=fields,
        put_answer=PutAnswer(data.get("put_answer", PutAnswer.ARRAY)),
        post_answer=PostAnswer(data.get("post_answer", PostAnswer.BODY)),
        post_returns_row_id=data.get("post_returns_row_id", data.get("post_answer") != PostAnswer.LOCATION),
        list_path=list_path, list_items=str(data.get("list_items", "")).strip() or None,
        **{k: data[k] for k in ("list_since_param", "list_skip_param", "list_take_param", "list_max_take")
           if k in data},
        geaendert_am_format=_pattern(at, data, "geaendert_am_format", with_time=True),
        geburtsdatum_format=_pattern(at, data, "geburtsdatum_format", with_time=False),
        timezone=_zone(at, data.get("timezone")),
    )
    _check_combinations(at, profile, data)
    return profile


def _fields(at: _Where, table: dict[str, Any]) -> dict[str, str]:
    for name, wire in table.items():
        if name not in FIELDS:
            raise at.error(name, f"is not a field of a Beteiligter (fields: {', '.join(FIELDS)})", "fields")
        if not isinstance(wire, str) or not wire.strip():
            raise at.error(name, "must be the field's name on the wire, a non-empty string", "fields")
    return {name: wire.strip() for name, wire in table.items()}


def _pattern(at: _Where, data: dict[str, Any], key: str, *, with_time: bool) -> DatePattern:
    default: DatePattern = getattr(AdvowareProfile, key)
    pattern = DatePattern(data[key]) if key in data else default
    try:
        pattern.check(with_time=with_time)
    except PatternError as exc:
        raise at.error(key, str(exc)) from None
    return pattern


def _zone(at: _Where, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise at.error("timezone", f"{value!r} is not a time zone: use an IANA name such as Europe/Berlin") from None
    return value


def _check_combinations(at: _Where, p: AdvowareProfile, data: dict[str, Any]) -> None:
    by_wire: dict[str, str] = {}  # by the wire name in lower case: .NET binds JSON names case-insensitively
    for name, wire in p.wire_names().items():
        other = by_wire.get(wire.lower())
        if other is not None:
            key = name if name in p.fields else other
            same = "" if p.wire_name(other) == wire else f" (Advoware does not tell {p.wire_name(other)} from {wire})"
            raise at.error(key, f"{name} and {other} would both be {wire!r} on the wire{same}",
                           "fields" if key in p.fields else None)
        by_wire[wire.lower()] = name
    if p.list_path is not None:
        for key in ("list_since_param", "list_skip_param", "list_take_param"):
            if not getattr(p, key).strip():
                raise at.error(key if key in data else "list_endpoint",
                               f"the list endpoint needs a {key.removeprefix('list_').removesuffix('_param')} "
                               "parameter: name it, or set list_endpoint = false")
        params = [p.list_since_param, p.list_skip_param, p.list_take_param]
        if len(set(params)) < len(params):
            raise at.error("list_take_param" if "list_take_param" in data else "list_endpoint",
                           "two list parameters have the same name")
        if not 1 <= p.list_max_take <= 10_000:
            raise at.error("list_max_take", "must be between 1 and 10000")
    elif p.list_items is not None:
        raise at.error("list_items", "names the rows' key in the list's answer, but list_endpoint = false: "
                                     "leave list_items out, or name the list endpoint")
    if p.post_answer == PostAnswer.LOCATION and p.post_returns_row_id:
        raise at.error("post_returns_row_id", 'post_answer = "location" answers no rowId: set '
                                              "post_returns_row_id = false (or leave it out)")
