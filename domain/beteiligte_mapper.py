"""Pure EspoCRM <-> Advoware transforms for CBeteiligte / Beteiligte.

Both sides are reduced to one *canonical* form: a dict keyed by the EspoCRM attribute name, holding
the EspoCRM representation of each mapped value (dates ``YYYY-MM-DD``), with empty strings and
surrounding whitespace-only values folded to ``None``. Change detection and conflict decisions work on
canonical values only, so a value means the same thing whichever side it came from. Two exceptions
to "EspoCRM's representation": enum fields with a value map (:mod:`domain.value_maps`) hold the
Advoware value, and phone numbers are compared without the spaces and separators EspoCRM strips on
save (``+49 30 1234567`` and ``+49301234567`` are one number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.phone import espo_spelling, phone_key
from domain.value_maps import MappingError, ValueMaps, load_value_maps

__all__ = ["MappingError"]

Canonical = dict[str, str | None]


@dataclass(frozen=True)
class FieldMap:
    espo: str
    advo: str
    group: str
    kind: str = "str"  # "str" | "date" | "phone" | "enum" (value map when configured)


FIELDS: tuple[FieldMap, ...] = (
    FieldMap("lastName", "name", "stammdaten"),
    FieldMap("firstName", "vorname", "stammdaten"),
    FieldMap("salutationName", "anrede", "stammdaten", "enum"),
    FieldMap("titel", "titel", "stammdaten"),
    FieldMap("rechtsform", "rechtsform", "stammdaten", "enum"),
    FieldMap("dateOfBirth", "geburtsdatum", "stammdaten", "date"),
    FieldMap("handelsregisterNummer", "handelsRegisterNummer", "stammdaten"),
    FieldMap("registergericht", "registergericht", "stammdaten"),
    FieldMap("emailAddress", "email", "kontakt"),
    FieldMap("phoneNumber", "telefon", "kontakt", "phone"),
    FieldMap("addressStreet", "strasse", "adresse"),
    FieldMap("addressPostalCode", "plz", "adresse"),
    FieldMap("addressCity", "ort", "adresse"),
    FieldMap("addressCountry", "land", "adresse"),
)

GROUPS: tuple[str, ...] = ("stammdaten", "kontakt", "adresse")
ESPO_FIELDS: frozenset[str] = frozenset(f.espo for f in FIELDS)
FIELD_GROUP: dict[str, str] = {f.espo: f.group for f in FIELDS}
_BY_ESPO: dict[str, FieldMap] = {f.espo: f for f in FIELDS}

# Writable Advoware fields we do not map: carried through every PUT unchanged.
ADVOWARE_UNMAPPED_WRITABLE: tuple[str, ...] = ("kurzname", "briefAnrede", "geburtsname", "zusatz")
ADVOWARE_WRITABLE: tuple[str, ...] = tuple(f.advo for f in FIELDS) + ADVOWARE_UNMAPPED_WRITABLE
# EspoCRM fields that reject null / empty (validation 400).
ESPO_REQUIRED: frozenset[str] = frozenset({"lastName"})

_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")

_value_maps: ValueMaps | None = None


def configure_value_maps(path: str | Path | None = None) -> ValueMaps:
    """Load the enum value maps (``config/value_maps.toml`` by default) for this process; the
    composition root calls it once. Raises ``ValueMapError`` naming the file."""
    global _value_maps
    _value_maps = load_value_maps(path, {f.espo: f.advo for f in FIELDS})
    return _value_maps


def value_maps() -> ValueMaps:
    return _value_maps if _value_maps is not None else configure_value_maps()


def _norm_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value if value.strip() else None


def _norm_date(value: Any, field: str) -> str | None:
    s = _norm_str(value)
    if s is None:
        return None
    m = _DATE.match(s)
    if not m:
        raise MappingError(f"{field}: '{s}' is not a date")
    return m.group(1)


def canonical_value(f: FieldMap, raw: Any, side: str) -> str | None:
    """One field's canonical value, read from ``side`` ("espo" or "advo")."""
    name = f.espo if side == "espo" else f.advo
    if f.kind == "date":
        return _norm_date(raw, name)
    value = _norm_str(raw)
    if value is None:
        return None
    if f.kind == "phone":
        return phone_key(value) or None  # "-", "/": no digit, no letter, no number
    if f.kind == "enum":
        table = value_maps().get(f.espo)
        if table is not None:
            return table.from_espo(value) if side == "espo" else table.from_advoware(value)
    return value


def _to_canonical(obj: dict[str, Any], side: str) -> Canonical:
    return {f.espo: canonical_value(f, obj.get(f.espo if side == "espo" else f.advo), side) for f in FIELDS}


def espo_item_canonical(item: dict[str, Any]) -> Canonical:
    """Canonical values of the mapped attributes a webhook item carries (only those); a value that
    cannot be mapped is left out, so the sync reads the record and reports it."""
    out: Canonical = {}
    for f in FIELDS:
        if f.espo in item:
            try:
                out[f.espo] = canonical_value(f, item[f.espo], "espo")
            except MappingError:
                continue
    return out


def espo_to_canonical(record: dict[str, Any]) -> Canonical:
    """Mapped values of an EspoCRM record, canonical."""
    return _to_canonical(record, "espo")


def advoware_to_canonical(obj: dict[str, Any]) -> Canonical:
    """Mapped values of an Advoware Beteiligter, canonical (dates as ``YYYY-MM-DD``)."""
    return _to_canonical(obj, "advo")


def source_spelling(f: FieldMap, value: str | None, source: dict[str, Any] | None, side: str) -> Any:
    """The value as the source record (read from ``side``) holds it, when it is the decided ``value``:
    a phone number keeps its formatting. Anything else is written as decided."""
    if f.kind != "phone" or value is None or not source:
        return value
    raw = source.get(f.espo if side == "espo" else f.advo)
    return raw if isinstance(raw, str) and canonical_value(f, raw, side) == value else value


def held_value(field: str, value: str | None, source: dict[str, Any] | None, side: str) -> str | None:
    """``field``'s value for people to read (a Note): as the record of ``side`` ("espo" or "advo")
    holds it, when that is the canonical ``value`` a decision compared; otherwise ``value``. So a
    phone number reads as it was typed (not its compare key ``+49…``), an enum as that system's
    option (``Mrs.``, not the Advoware value it maps to). A date stays ``YYYY-MM-DD`` (Advoware's
    ``T00:00:00`` is nobody's typing)."""
    f = _BY_ESPO.get(field)
    if f is None or f.kind == "date" or not source:
        return value
    raw = source.get(f.espo if side == "espo" else f.advo)
    if not isinstance(raw, str) or not raw.strip():
        return value
    try:
        same = canonical_value(f, raw, side) == value
    except MappingError:
        return value
    return raw if same else value


def spelled(values: Canonical, source: dict[str, Any] | None, side: str) -> Canonical:
    """``values`` with each phone number as the source record holds it (what a write sends)."""
    return {k: source_spelling(_BY_ESPO[k], v, source, side) if k in _BY_ESPO else v for k, v in values.items()}


def canonical_to_advoware(values: Canonical, current: dict[str, Any] | None = None,
                          source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Full ``PUT``/``POST`` body: mapped fields from ``values``, every other writable field carried
    over from ``current`` (Advoware's PUT is a full replacement), plus ``rowId`` when known.
    ``source``: the EspoCRM record the values came from; its phone number is sent as it is there."""
    current = current or {}
    body: dict[str, Any] = {k: current.get(k) for k in ADVOWARE_UNMAPPED_WRITABLE}
    for f in FIELDS:
        v = source_spelling(f, values[f.espo], source, "espo") if f.espo in values else current.get(f.advo)
        if f.kind == "date" and v is not None:
            v = f"{_norm_date(v, f.espo)}T00:00:00"
        body[f.advo] = v
    if not body.get("name"):
        raise MappingError("lastName is empty: Advoware requires a name")
    if current.get("rowId"):
        body["rowId"] = current["rowId"]
    return body


def canonical_to_espo(values: Canonical, source: dict[str, Any] | None = None,
                      phone_international: bool | None = None) -> dict[str, Any]:
    """EspoCRM write body for the given canonical fields. ``None`` is never sent for a field EspoCRM
    requires: that is a mapping error the caller reports instead of a 400 from EspoCRM. ``source``:
    the Advoware Beteiligter the values came from; its phone number is sent as it is there, in a form
    EspoCRM accepts under its "International phone numbers" setting (:func:`domain.phone.espo_spelling`)."""
    body: dict[str, Any] = {}
    for field, v in values.items():
        f = _BY_ESPO.get(field)
        if f is None:
            continue
        if v is None and field in ESPO_REQUIRED:
            raise MappingError(f"{field} would become empty: EspoCRM requires it")
        if f.kind == "phone" and v is not None:
            body[field] = espo_spelling(str(source_spelling(f, v, source, "advo")), phone_international)
            continue
        table = value_maps().get(field) if f.kind == "enum" else None
        body[field] = table.espo_value(v) if table is not None and v is not None else v
    return body


def mapped_changes(update_item: dict[str, Any]) -> set[str]:
    """Mapped attributes named in an EspoCRM update webhook item."""
    return {k for k in update_item if k in ESPO_FIELDS}
