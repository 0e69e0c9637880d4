"""The simulated Advoware's wire as a profile (:mod:`config.advoware_profile`) spells it.

The store keeps the rows in the internal form (camelCase, ``YYYY-MM-DDTHH:MM:SS.fff`` local,
``YYYY-MM-DDT00:00:00``); the HTTP layer answers and reads them in the profile's names and formats.
Written apart from the client's translation (adapters/advoware_profile_wire.py), so a mistake in
one shows in the tests instead of cancelling out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.responses import JSONResponse, Response

from config.advoware_dates import DatePattern
from config.advoware_profile import AdvowareProfile, PostAnswer
from simulators.advoware.fields import FieldError

STORE_STAMP = DatePattern("%Y-%m-%dT%H:%M:%S.%3f")
STORE_DATE = DatePattern("%Y-%m-%dT00:00:00")
STAMPS = ("angelegtAm", "geaendertAm")
BIRTH = "geburtsdatum"


class SimWire:
    def __init__(self, profile: AdvowareProfile, zone: ZoneInfo) -> None:
        self.profile = profile
        self.zone = zone
        self.names = profile.wire_names()
        self.internal = {wire: name for name, wire in self.names.items()}
        self.identity = (all(k == v for k, v in self.names.items()) and profile.geaendert_am_format == STORE_STAMP
                         and profile.geburtsdatum_format == STORE_DATE)

    def row_out(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.identity:  # today's contract: the store's rows are the wire's
            return row
        out: dict[str, Any] = {}
        for name, value in row.items():
            if isinstance(value, str) and name in STAMPS:
                value = self.profile.geaendert_am_format.format(STORE_STAMP.parse(value, self.zone), self.zone)
            elif isinstance(value, str) and name == BIRTH and STORE_DATE.matches(value, self.zone):
                value = self.profile.geburtsdatum_format.format(STORE_DATE.parse(value, self.zone), self.zone)
            out[self.names.get(name, name)] = value
        return out

    def body_in(self, body: dict[str, Any]) -> dict[str, Any]:
        """A request body in the store's names; names the profile does not know are dropped (as the
        real API ignores unknown properties), so a camelCase body to a PascalCase API loses its fields."""
        out: dict[str, Any] = {}
        for wire, value in body.items():
            name = self.internal.get(wire)
            if name is None:
                continue
            if name == BIRTH and isinstance(value, str):
                value = self._birth_in(wire, value)
            out[name] = value
        return out

    def _birth_in(self, wire: str, value: str) -> str:
        pattern = self.profile.geburtsdatum_format
        if pattern == STORE_DATE:
            return value  # the store checks it and names its own form
        try:
            return STORE_DATE.format(pattern.parse(value, self.zone), self.zone)
        except ValueError:
            raise FieldError(f"{wire} must have the form {pattern.human()}") from None

    def list_answer(self, rows: list[dict[str, Any]], total: Callable[[], int]) -> Any:
        """A list page as the profile's ``list_items`` says: a bare array, or an object holding the rows
        under that key beside a ``totalCount`` (as .NET's paged answers do)."""
        out = [self.row_out(r) for r in rows]
        key = self.profile.list_items
        return out if key is None else {key: out, "totalCount": total()}

    def created(self, row: dict[str, Any], url: str) -> Response:
        """The answer to a create: the object, or (``post_answer = "location"``) 201 with a Location
        header naming the new Beteiligter and no body."""
        if self.profile.post_answer == PostAnswer.LOCATION:
            return Response(status_code=201, headers={"Location": f"{url.split('?')[0].rstrip('/')}/{row['betNr']}"})
        return JSONResponse(self.row_out(row), status_code=201)

    def since_in(self, raw: str) -> datetime:
        try:
            return self.profile.geaendert_am_format.parse(raw.strip(), self.zone)
        except ValueError:
            parsed = datetime.fromisoformat(raw.strip())
            return parsed.astimezone(self.zone).replace(tzinfo=None) if parsed.tzinfo else parsed

    def detail(self, message: str) -> str:
        """A validation message of the store with the field named as on the wire."""
        first, sep, rest = message.partition(" ")
        return f"{self.names.get(first, first)}{sep}{rest}"
