"""The model's own copy of the service contract's field table, and how it reads values.

Copied here on purpose: the model reads both systems through this copy, never through the production
mapper, so a field the mapper drops or maps wrongly shows up as a disagreement.
"""

from __future__ import annotations

import re
from typing import Any

from domain.beteiligte_mapper import ADVOWARE_UNMAPPED_WRITABLE

Value = str | None
ESPO_UNMAPPED: tuple[str, ...] = ("description", "beteiligtenRolle")
ADVO_UNMAPPED: tuple[str, ...] = ADVOWARE_UNMAPPED_WRITABLE
# (EspoCRM field, Advoware field, group, kind)
CONTRACT: tuple[tuple[str, str, str, str], ...] = (
    ("lastName", "name", "stammdaten", "str"), ("firstName", "vorname", "stammdaten", "str"),
    ("salutationName", "anrede", "stammdaten", "str"), ("titel", "titel", "stammdaten", "str"),
    ("rechtsform", "rechtsform", "stammdaten", "str"), ("dateOfBirth", "geburtsdatum", "stammdaten", "date"),
    ("handelsregisterNummer", "handelsRegisterNummer", "stammdaten", "str"),
    ("registergericht", "registergericht", "stammdaten", "str"),
    ("emailAddress", "email", "kontakt", "str"), ("phoneNumber", "telefon", "kontakt", "phone"),
    ("addressStreet", "strasse", "adresse", "str"), ("addressPostalCode", "plz", "adresse", "str"),
    ("addressCity", "ort", "adresse", "str"), ("addressCountry", "land", "adresse", "str"),
)
MAPPED: tuple[str, ...] = tuple(e for e, _, _, _ in CONTRACT)
TO_ADVO: dict[str, str] = {e: a for e, a, _, _ in CONTRACT}
KIND: dict[str, str] = {e: k for e, _, _, k in CONTRACT}
FIELD_GROUP: dict[str, str] = {e: g for e, _, g, _ in CONTRACT}
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    g: tuple(e for e, _, gg, _ in CONTRACT if gg == g) for g in sorted({g for _, _, g, _ in CONTRACT})
}
_PHONE_SEPARATORS = re.compile(r"[\s\-()/.]")


def _canon(value: Any, kind: str) -> Value:
    """The model's own reading of a value: blank is empty, dates without time, phones without separators."""
    if value is None or not str(value).strip():
        return None
    text = str(value)
    if kind == "date":
        return text[:10]
    return _PHONE_SEPARATORS.sub("", text) if kind == "phone" else text


def espo_to_canonical(rec: dict[str, Any]) -> dict[str, Value]:
    return {e: _canon(rec.get(e), k) for e, _, _, k in CONTRACT}


def advoware_to_canonical(obj: dict[str, Any]) -> dict[str, Value]:
    return {e: _canon(obj.get(a), k) for e, a, _, k in CONTRACT}


REQUIRED = frozenset({"lastName"})  # never cleared: both systems require it
ANREDEN = ("Herr", "Frau", "Divers", "Firma")
RECHTSFORMEN = ("natürliche Person", "GmbH", "AG", "KG", "e.V.", "GbR")
