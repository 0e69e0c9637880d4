"""One error tree for both API clients, grouped by what the caller should do next.

    ApiError                      base of everything a client raises
    ├── RetryableError            try again soon with backoff (timeouts, connection errors, 5xx)
    │   └── StaleWriteError       409: the other side changed in between -> re-read, re-decide
    ├── DeferredError             the system asked us to wait (429 Retry-After, 503): wait
    │                             ``retry_after`` seconds, does not count toward the retry limit
    ├── FatalError                retrying will not help until the data changes
    │   ├── ValidationError       400 validation failure
    │   ├── ForbiddenError        403
    │   ├── ReferencedError       409 on DELETE in Advoware: still referenced by a matter
    │   └── BadResponseError      the remote answered something that is not the contract (garbage)
    ├── NotFoundError             404: the caller decides what a missing record means
    └── AuthenticationError       401 even after a fresh token / wrong credentials

The HTTP status -> error mapping lives in :func:`error_for_status` and nowhere else.
Messages are meant for people (they end up in ``syncErrorMessage``) and never carry secrets; texts
taken from the remote systems' error answers pass :func:`without_personal_data` first.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from domain.beteiligte_mapper import ADVOWARE_WRITABLE, ESPO_FIELDS


class ApiError(Exception):
    """Base class. ``system`` is "espocrm" or "advoware"; ``status`` the HTTP status if any."""

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status
        self.details = details or {}

    def __str__(self) -> str:
        prefix = f"{self.system}: " if self.system else ""
        code = f"HTTP {self.status}: " if self.status else ""
        return f"{prefix}{code}{self.message}"


class RetryableError(ApiError):
    """Transient: the same call may succeed later."""


class StaleWriteError(RetryableError):
    """409 on a write: the record changed since we read it (rowId / versionNumber)."""


class OutcomeUnknownError(RetryableError):
    """A create whose answer was lost (timeout, 5xx): it may have been applied. Not repeated at once,
    only after a backoff long enough for the commit to show, when the attempt looks for it first."""


class DeferredError(ApiError):
    """The remote asked us to wait; does not count as a failure of the record."""

    def __init__(self, message: str, *, retry_after: float = 60.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class FatalError(ApiError):
    """Retrying will not help until the record changes again."""


class ValidationError(FatalError):
    """400: the remote rejected our data."""


class ForbiddenError(FatalError):
    """403: not allowed."""


class ReferencedError(FatalError):
    """409 on delete: the record is still referenced (Advoware: by a matter / Akte)."""


class BadResponseError(FatalError):
    """The remote answered something outside its contract (not JSON, wrong shape)."""


class NotFoundError(ApiError):
    """404."""


class AuthenticationError(ApiError):
    """401 that a fresh token did not cure, or wrong credentials."""


def _retry_after_seconds(headers: Any, default: float = 60.0) -> float:
    raw = headers.get("Retry-After") if headers is not None else None
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        # An HTTP-date is allowed too; parse it leniently.
        try:
            when = parsedate_to_datetime(str(raw))
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return default


def error_for_status(
    system: str,
    status: int,
    reason: str,
    *,
    method: str = "GET",
    headers: Any = None,
    details: dict[str, Any] | None = None,
) -> ApiError:
    """The single place where an HTTP status becomes an error class."""
    kw: dict[str, Any] = {"system": system, "status": status, "details": details}
    if status == 400:
        return ValidationError(reason or "validation failure", **kw)
    if status == 401:
        return AuthenticationError(reason or "authentication failed", **kw)
    if status == 403:
        return ForbiddenError(reason or "forbidden", **kw)
    if status == 404:
        return NotFoundError(reason or "not found", **kw)
    if status == 409:
        if method.upper() == "DELETE":
            return ReferencedError(reason or "still referenced", **kw)
        return StaleWriteError(reason or "modified in between", **kw)
    if status == 429:
        return DeferredError(
            reason or "rate limited", retry_after=_retry_after_seconds(headers, 60.0), **kw
        )
    if status == 503:
        return DeferredError(
            reason or "service unavailable", retry_after=_retry_after_seconds(headers, 30.0), **kw
        )
    if status == 408 or status >= 500:
        return RetryableError(reason or "server error", **kw)
    return FatalError(reason or f"unexpected HTTP {status}", **kw)


# -- personal data in the remote systems' error texts ---------------------------------------------
# An error answer may quote the values it rejected (a phone number, an e-mail address, a name). What
# stays: field names, validation types and the wording around them; what goes: quoted text, e-mail
# addresses, numbers of 4+ digits (phone, postcode, dates), and capitalised words that are neither
# field names nor common words of error messages (that is where names hide). Lower-case words stay.
REMOVED = "…"
MAX_REMOTE_TEXT = 300
_FIELD_WORDS = frozenset(
    name.lower() for name in (*ESPO_FIELDS, *ADVOWARE_WRITABLE, "betNr", "betnr", "rowId", "versionNumber",
                              "id", "syncStatus", "syncErrorMessage", "CBeteiligte", "Beteiligte", "Beteiligter"))
_COMMON_WORDS = frozenset("""
    a an the this that one or and more field fields value values invalid valid required error errors
    validation failure occurred record entity must is not does exist request bad conflict found
    forbidden unauthorized internal server service unavailable too many requests maximum minimum length
    format date phone number email e-mail address name first last birth street city postal code country
    title salutation type modified duplicate missing unknown empty long short wrong
    der die das ein eine feld felder wert werte ungültig ungültige ungültiger ungültiges pflichtfeld
    fehler datensatz datum format telefon telefonnummer adresse vorname nachname geburtsdatum straße
    strasse ort plz postleitzahl land anrede titel rechtsform handelsregisternummer registergericht
    """.split())
_EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|„[^“”]*[“”]|“[^”]*”|‘[^’]*’|«[^»]*»")
_NUMBER = re.compile(r"(?<!\w)\+?\d[\d ()/.\-]*\d(?!\w)")
_WORD = re.compile(r"[^\W\d_][\w\-]*")
_RUNS = re.compile(REMOVED + r"(?:[\s,;]*" + REMOVED + ")+")


def _quoted(match: re.Match[str]) -> str:
    inner = match.group(0)[1:-1]
    return match.group(0) if inner.lower() in _FIELD_WORDS else REMOVED


def _number(match: re.Match[str]) -> str:
    return REMOVED if sum(c.isdigit() for c in match.group(0)) >= 4 else match.group(0)


def _word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word[0].islower() or word.isupper() or word.lower() in _FIELD_WORDS or word.lower() in _COMMON_WORDS:
        return word
    return REMOVED


def without_personal_data(text: str) -> str:
    """``text`` from an error answer with the values it quoted removed (see the rules above)."""
    text = _EMAIL.sub(REMOVED, text)
    text = _QUOTED.sub(_quoted, text)
    text = _NUMBER.sub(_number, text)
    text = _WORD.sub(_word, text)
    return _RUNS.sub(REMOVED, text)[:MAX_REMOTE_TEXT]
