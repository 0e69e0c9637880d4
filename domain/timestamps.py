"""Timestamps of both systems, converted to aware UTC datetimes.

EspoCRM: ``YYYY-MM-DD HH:MM:SS``, always UTC. Advoware: ``YYYY-MM-DDTHH:MM:SS.fff``, naive local
time of the firm (``ADVOWARE_TIMEZONE``, default Europe/Berlin). In the autumn hour that occurs twice
the earlier instant (summer time, ``fold=0``) is taken; a wall time inside the spring gap does not
exist and is read with the offset in force before the jump (CET). Neither ambiguity can flip a change decision: changes
are detected from ``rowId`` and fingerprints, times only order conflicting edits for ``newest_wins``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

ESPO_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_espo(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value[:19], ESPO_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def format_espo(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(ESPO_FORMAT)


def parse_advoware(value: str | None, tz: str = "Europe/Berlin") -> datetime | None:
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return None
    if naive.tzinfo is not None:  # tolerate an offset if the real system ever sends one
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=ZoneInfo(tz), fold=0).astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)
