"""What a failure means for a record: retry when, count or not, and the words staff read.

Pure functions; :class:`sync.beteiligte_sync.BeteiligteSync` does the writes.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import StrEnum

from adapters.errors import (
    ApiError,
    DeferredError,
    FatalError,
    NotFoundError,
)
from domain.beteiligte_mapper import MappingError

MAX_FAILURES = 5
BACKOFF_BASE_S = 60.0
BACKOFF_MAX_S = 3600.0
# A record that gave up after transient errors is still tried this often (people were told once).
PERMANENT_RETRY_S = 6 * 3600.0


class FailureKind(StrEnum):
    """What the caller does next (the ``kind`` label of the failure metrics)."""

    DEFERRED = "deferred"  # the system asked us to wait (429/503): not counted, no status change
    RETRYABLE = "retryable"  # try again with backoff, counted toward MAX_FAILURES
    FATAL = "fatal"  # not before the record changes


@dataclass(frozen=True)
class FailurePlan:
    kind: FailureKind
    counts: bool  # counts toward MAX_FAILURES
    delay_s: float | None  # None: not before the record changes
    message: str


def classify(exc: BaseException) -> FailureKind:
    if isinstance(exc, DeferredError):
        return FailureKind.DEFERRED
    if isinstance(exc, FatalError | MappingError | NotFoundError):
        return FailureKind.FATAL
    # RetryableError, AuthenticationError (a new token may help later), and anything unexpected
    # (a bug): retry with backoff, visible to operators on the record.
    return FailureKind.RETRYABLE


def backoff_seconds(count: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    r = rng or random
    base = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, count - 1))
    return base / 2 + r.random() * base / 2


def describe(exc: BaseException) -> str:
    """A sentence for ``syncErrorMessage``: which system, what happened, what happens next."""
    if isinstance(exc, MappingError):
        return f"Daten passen nicht zur Gegenseite: {exc}. Bitte Datensatz korrigieren."
    if isinstance(exc, ApiError):
        text = str(exc)
    else:
        text = f"internal error ({type(exc).__name__}): {exc}"
    return without_paths(text)[:480]


# An absolute path of this server (a socket, the state folder, a config file): staff read the message in
# EspoCRM, so the server's layout stays out of it; the operator's log has the error with its ids.
_SERVER_PATH = re.compile(r"(?<![\w:/.])(?:/[\w.@+~-]+){2,}/?")


def without_paths(text: str) -> str:
    return _SERVER_PATH.sub("(server path)", text)


def plan_failure(exc: BaseException, count_before: int, rng: random.Random | None = None) -> FailurePlan:
    kind = classify(exc)
    msg = describe(exc)
    if kind == FailureKind.DEFERRED:
        wait = exc.retry_after if isinstance(exc, DeferredError) else 60.0
        return FailurePlan(kind, False, wait, f"{msg} - waiting {wait:.0f} s before the next attempt")
    count = count_before + 1
    if kind == FailureKind.FATAL:
        return FailurePlan(kind, True, None, f"{msg} - no retry until the record changes")
    if count >= MAX_FAILURES:
        return FailurePlan(kind, True, PERMANENT_RETRY_S, f"{msg} - gave up after {count} attempts")
    delay = backoff_seconds(count, rng)
    return FailurePlan(kind, True, delay, f"{msg} - attempt {count} of {MAX_FAILURES}, retry in {delay:.0f} s")
