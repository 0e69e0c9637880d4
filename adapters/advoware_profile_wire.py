"""The edge between a firm's Advoware wire profile (:mod:`config.advoware_profile`) and the internal
records: camelCase names, ``geaendertAm``/``angelegtAm`` as ``YYYY-MM-DDTHH:MM:SS.fff`` in the firm's
local time, ``geburtsdatum`` as ``YYYY-MM-DDT00:00:00``. Only :mod:`adapters.advoware_api` uses it, so
the rest of the service never sees the wire's spelling."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from adapters.errors import BadResponseError, OutcomeUnknownError
from config.advoware_dates import DatePattern
from config.advoware_profile import DATE_FIELD, TIMESTAMP_FIELDS, AdvowareProfile

SYSTEM = "advoware"
INTERNAL_STAMP = DatePattern("%Y-%m-%dT%H:%M:%S.%3f")
INTERNAL_DATE = DatePattern("%Y-%m-%dT00:00:00")


class ProfileWire:
    """Translates bodies to the wire and answers from it; ``zone`` is the firm's."""

    def __init__(self, profile: AdvowareProfile, zone: ZoneInfo) -> None:
        self.profile = profile
        self.zone = zone
        self._identity = (profile.wire_names() == {k: k for k in profile.wire_names()}
                          and profile.geaendert_am_format == INTERNAL_STAMP
                          and profile.geburtsdatum_format == INTERNAL_DATE)

    def to_wire(self, body: dict[str, Any]) -> dict[str, Any]:
        """An internal body in the profile's names; a birth date in its format (a value that is not an
        internal date goes as it is: Advoware refuses it with its own message)."""
        if self._identity:
            return body
        out: dict[str, Any] = {}
        for name, value in body.items():
            if name == DATE_FIELD and isinstance(value, str) and INTERNAL_DATE.matches(value, self.zone):
                value = self.profile.geburtsdatum_format.format(INTERNAL_DATE.parse(value, self.zone), self.zone)
            out[self.profile.wire_name(name)] = value
        return out

    def from_wire(self, data: Any, what: str) -> Any:
        """An answer's object (or each object of an array) with internal names and formats."""
        if self._identity:
            return data
        if isinstance(data, list):
            return [self.from_wire(item, what) for item in data]
        if not isinstance(data, dict):
            return data
        out = {self.profile.internal_name(k): v for k, v in data.items()}
        for name in TIMESTAMP_FIELDS:
            if name in out:
                out[name] = self._convert(out[name], self.profile.geaendert_am_format, INTERNAL_STAMP, name,
                                          "geaendert_am_format", what)
        if DATE_FIELD in out:
            out[DATE_FIELD] = self._convert(out[DATE_FIELD], self.profile.geburtsdatum_format, INTERNAL_DATE,
                                            DATE_FIELD, "geburtsdatum_format", what)
        return out

    def rows(self, data: Any, what: str) -> Any:
        """A list answer's rows: the answer itself (a bare array), or the list under ``list_items``. Any
        other shape is a bad response naming the key to change."""
        key = self.profile.list_items
        if key is None:
            if isinstance(data, list):
                return data
            found = list_keys(data)
            fix = f'list_items = "{found[0]}"' if len(found) == 1 else "list_items to the key holding the rows"
            raise BadResponseError(f"{what}: expected a JSON array, got {shape(data)} (set {fix} in "
                                   "ADVOWARE_PROFILE; doctor --advoware names it)", system=SYSTEM)
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            why = "no key " + repr(key) if isinstance(data, dict) and key not in data else shape(data)
            raise BadResponseError(f'{what}: expected an object with the rows as a list under "{key}", got {why} '
                                   f'(list_items = "{key}" of ADVOWARE_PROFILE; "" for a bare array; doctor '
                                   "--advoware names it)", system=SYSTEM)
        return data[key]

    @staticmethod
    def created_betnr(location: str | None, status: int) -> int:
        """The new betNr from the ``Location`` of a create's answer (``post_answer = "location"``): its last
        path segment, a positive integer. Anything else: the create may have been applied, its number is
        unknown (the create path then looks for it before trying again, never doubling it)."""
        segment = unquote(urlsplit(location or "").path.rstrip("/").rpartition("/")[2])
        if re.fullmatch(r"[0-9]{1,18}", segment) and int(segment) > 0:
            return int(segment)
        got = "no Location header" if not location else "a Location not ending in a betNr"
        raise OutcomeUnknownError(f'POST Beteiligte answered {status} with {got} (post_answer = "location" of '
                                  'ADVOWARE_PROFILE; if it answers the created object, set post_answer = "body")',
                                  system=SYSTEM, status=status)

    def since(self, when: datetime) -> str:
        """The list's since parameter: an aware instant in the firm's zone; a naive one is local already.
        With an offset on the wire, a naive wall time the clocks skip or repeat goes as the earlier of the
        instants it can mean (a lower bound may read a row again, never skip one)."""
        pattern = self.profile.geaendert_am_format
        if when.tzinfo is None and "%z" in pattern.parts():
            when = min(when.replace(tzinfo=self.zone, fold=fold).astimezone(UTC) for fold in (0, 1))
        return pattern.format(when, self.zone)

    def _convert(self, value: Any, wire: DatePattern, internal: DatePattern, name: str, key: str,
                 what: str) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return internal.format(wire.parse(value, self.zone), self.zone)
        except ValueError:
            raise BadResponseError(f"{what}: {self.profile.wire_name(name)} does not have the form "
                                   f"{wire.human()} ({key} of the profile; run doctor --advoware)",
                                   system=SYSTEM) from None


def list_keys(data: Any) -> list[str]:
    """The keys of an object whose values are lists (where a wrapped list answer keeps its rows)."""
    return [k for k, v in data.items() if isinstance(v, list)] if isinstance(data, dict) else []


def shape(data: Any) -> str:
    """A JSON answer's shape in words, for messages (never its values)."""
    if isinstance(data, list):
        return "a JSON array"
    if isinstance(data, dict):
        found = list_keys(data)
        return f"an object with the list-valued keys {', '.join(found)}" if found else "an object without a list"
    return "no JSON array or object" if data is not None else "an empty answer"
