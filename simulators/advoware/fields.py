"""The Beteiligte object of the simulated Advoware API: its fields and their validation."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

WRITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "vorname",
    "anrede",
    "titel",
    "rechtsform",
    "geburtsdatum",
    "handelsRegisterNummer",
    "registergericht",
    "email",
    "telefon",
    "strasse",
    "plz",
    "ort",
    "land",
    "kurzname",
    "briefAnrede",
    "geburtsname",
    "zusatz",
)
READ_ONLY_FIELDS: tuple[str, ...] = ("betNr", "rowId", "angelegtAm", "geaendertAm")

_BIRTH_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T00:00:00$")


class FieldError(ValueError):
    """A body that fails validation; the message is the problem+json ``detail``."""


def _check_birth_date(value: str) -> None:
    m = _BIRTH_DATE.match(value)
    if not m:
        raise FieldError("geburtsdatum must have the form YYYY-MM-DDT00:00:00")
    try:
        date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise FieldError("geburtsdatum is not a valid date") from exc


def writable_values(body: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """Validate ``body`` and return its writable fields.

    ``full=True`` (create, PUT): every writable field is returned, missing ones as ``None``, and
    ``name`` is required. ``full=False`` (a partial user edit): only the fields present.
    Read-only and unknown fields are ignored.
    """
    out: dict[str, Any] = {}
    for name in WRITABLE_FIELDS:
        if name not in body:
            if full:
                out[name] = None
            continue
        value = body[name]
        if value is not None and not isinstance(value, str):
            raise FieldError(f"{name} must be a string or null")
        if name == "geburtsdatum" and value is not None:
            _check_birth_date(value)
        out[name] = value
    if (full or "name" in body) and not (isinstance(out.get("name"), str) and out["name"].strip()):
        raise FieldError("name is required")
    return out
