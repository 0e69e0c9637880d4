"""Ids are data, never paths: the checks both API clients run on every id before it goes into a URL.

A bad id raises :class:`adapters.errors.ValidationError` (fatal: no retry until the record changes)
and nothing is sent.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import quote

from adapters.errors import ValidationError

ESPOCRM = "espocrm"
ADVOWARE = "advoware"
BETEILIGTE = "Beteiligte"
ENTITY_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
# Record ids are 17 lowercase hex characters; other installations use UUIDs or longer ids, so any id
# is accepted that cannot leave its path segment: no separators, escapes, dot segments, blanks.
MAX_ID_LENGTH = 64
ID_FORBIDDEN_CHARS = frozenset("/\\?#%")
DOT_SEGMENT = ".."


def _is_blank_or_control(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("C")


def check_id(value: Any, what: str = "record id") -> str:
    """``value`` if it is a usable EspoCRM id, else ``ValidationError`` (fatal; nothing is sent)."""
    problem = None
    if not isinstance(value, str) or not value:
        problem = "must be a non-empty string"
    elif len(value) > MAX_ID_LENGTH:
        problem = f"is longer than {MAX_ID_LENGTH} characters"
    elif any(c in ID_FORBIDDEN_CHARS or _is_blank_or_control(c) for c in value):
        problem = "contains / \\ ? # % or blank or control characters"
    elif DOT_SEGMENT in value or value == ".":
        problem = "contains a dot segment"
    if problem is not None:
        raise ValidationError(f"invalid {what} {repr(value)[:80]}: {problem}", system=ESPOCRM)
    return str(value)


def check_entity(value: Any) -> str:
    if not isinstance(value, str) or not ENTITY_NAME.fullmatch(value):
        raise ValidationError(f"invalid entity type {repr(value)[:80]}", system=ESPOCRM)
    return value


def record_path(entity: str, record_id: Any) -> str:
    """``Entity/<id>`` with the id checked and percent-encoded as one path segment."""
    return f"{check_entity(entity)}/{quote(check_id(record_id), safe='')}"


def beteiligter_path(betnr: Any) -> str:
    """``Beteiligte/<betNr>``; ``ValidationError`` (fatal, nothing sent) unless ``betnr`` is a positive int."""
    if not isinstance(betnr, int) or isinstance(betnr, bool) or betnr <= 0:
        raise ValidationError(f"invalid betNr {repr(betnr)[:80]}: must be a positive integer", system=ADVOWARE)
    return f"{BETEILIGTE}/{betnr}"
