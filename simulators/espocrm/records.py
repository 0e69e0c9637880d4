"""EspoCRM simulator: the CBeteiligte and Note stores with EspoCRM's validation rules (spec §1.1).

Not thread-safe on its own; :class:`~simulators.espocrm.simulator.EspoCRMSimulator` holds the lock.
Every write returns a :class:`Change` that the webhook dispatcher turns into queued events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

ENTITY = "CBeteiligte"
SYNC_STATUSES = ("pending_sync", "syncing", "clean", "failed", "permanently_failed")

# Writable attributes in record order, with their kind. Order matters: it is the attribute order of
# every record and webhook item, and the order in which validation reports the first failure.
ATTRIBUTE_KINDS: dict[str, str] = {
    "salutationName": "str",
    "firstName": "str",
    "lastName": "str",
    "titel": "str",
    "rechtsform": "str",
    "dateOfBirth": "date",
    "handelsregisterNummer": "str",
    "registergericht": "str",
    "emailAddress": "str",
    "phoneNumber": "str",
    "addressStreet": "str",
    "addressPostalCode": "str",
    "addressCity": "str",
    "addressCountry": "str",
    "description": "str",
    "beteiligtenRolle": "str",
    "betnr": "int",
    "advowareRowId": "str",
    "syncStatus": "enum",
    "advowareLastSync": "datetime",
    "syncRetryCount": "int",
    "syncErrorMessage": "str",
}
SYSTEM_ATTRIBUTES = ("createdAt", "modifiedAt", "createdById", "modifiedById", "versionNumber")
# Everything a record carries, for select/orderBy/where.
ALL_ATTRIBUTES: dict[str, str] = {
    "id": "str",
    "name": "str",
    **ATTRIBUTE_KINDS,
    "createdAt": "datetime",
    "modifiedAt": "datetime",
    "createdById": "str",
    "modifiedById": "str",
    "versionNumber": "int",
}
DEFAULTS: dict[str, Any] = {"syncStatus": "pending_sync", "syncRetryCount": 0}

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$")


class EspoValidationError(ValueError):
    """400 ``Field validation failure``; ``type`` is EspoCRM's validation type (required, valid)."""

    def __init__(self, entity: str, field: str, type_: str) -> None:
        self.entity, self.field, self.type = entity, field, type_
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        return f"Field validation failure; entityType: {self.entity}, field: {self.field}, type: {self.type}."

    def body(self) -> dict[str, Any]:
        return {
            "messageTranslation": {
                "label": "validationFailure",
                "scope": None,
                "data": {"field": self.field, "type": self.type},
            }
        }


class RecordNotFound(LookupError):
    def __init__(self, record_id: str) -> None:
        self.record_id = record_id
        super().__init__(f"Record {record_id} does not exist.")


class VersionConflict(Exception):
    """409 ``modified``: ``values`` holds the stored values of the conflicting fields."""

    def __init__(self, values: dict[str, Any], version_number: int) -> None:
        self.values, self.version_number = values, version_number
        super().__init__("modified")


@dataclass(frozen=True)
class Change:
    """One create/update/delete, as the webhook item EspoCRM would queue for it."""

    event: str  # "CBeteiligte.create" | ".update" | ".delete"
    item: dict[str, Any]
    actor: str  # user id that made the change


def _valid_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _normalize_datetime(value: str) -> str | None:
    if not _DATETIME.match(value):
        return None
    full = value if len(value) == 19 else value + ":00"
    try:
        datetime.strptime(full, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return full


def clean_value(entity: str, field: str, kind: str, value: Any) -> Any:
    """Validate one incoming value; returns the value to store or raises EspoValidationError."""
    if value is None:
        if field == "lastName":
            raise EspoValidationError(entity, field, "required")
        if kind == "enum":
            raise EspoValidationError(entity, field, "valid")
        return None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EspoValidationError(entity, field, "valid")
        return value
    if not isinstance(value, str):
        raise EspoValidationError(entity, field, "valid")
    if field == "lastName" and value == "":
        raise EspoValidationError(entity, field, "required")
    if kind == "date" and value != "" and not _valid_date(value):
        raise EspoValidationError(entity, field, "valid")
    if kind == "date" and value == "":
        return None
    if kind == "datetime":
        if value == "":
            return None
        normalized = _normalize_datetime(value)
        if normalized is None:
            raise EspoValidationError(entity, field, "valid")
        return normalized
    if kind == "enum" and value not in SYNC_STATUSES:
        raise EspoValidationError(entity, field, "valid")
    return value


def _derived_name(rec: dict[str, Any]) -> str:
    return " ".join(p for p in (rec.get("firstName"), rec.get("lastName")) if p)


def _record_view(rec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rec["id"], "name": rec["name"]}
    for attr in ATTRIBUTE_KINDS:
        out[attr] = rec.get(attr)
    for attr in SYSTEM_ATTRIBUTES:
        out[attr] = rec[attr]
    return out


class BeteiligteStore:
    """CBeteiligte records in creation order, keyed by id."""

    def __init__(self, *, new_id: Callable[[], str], now: Callable[[], str]) -> None:
        self._new_id = new_id
        self._now = now
        self._records: dict[str, dict[str, Any]] = {}

    def _clean(self, data: dict[str, Any]) -> dict[str, Any]:
        # Unknown and system attributes are ignored silently, like EspoCRM does.
        return {
            field: clean_value(ENTITY, field, kind, data[field])
            for field, kind in ATTRIBUTE_KINDS.items()
            if field in data
        }

    def get(self, record_id: str) -> dict[str, Any] | None:
        rec = self._records.get(record_id)
        return _record_view(rec) if rec is not None else None

    def all(self) -> list[dict[str, Any]]:
        return [_record_view(r) for r in self._records.values()]

    def create(self, data: dict[str, Any], actor: str) -> tuple[dict[str, Any], Change]:
        if "lastName" not in data:
            raise EspoValidationError(ENTITY, "lastName", "required")
        values = {**DEFAULTS, **self._clean(data)}
        now = self._now()
        rec: dict[str, Any] = {"id": self._new_id(), **values}
        rec["name"] = _derived_name(rec)
        rec.update(createdAt=now, modifiedAt=now, createdById=actor, modifiedById=actor, versionNumber=1)
        self._records[rec["id"]] = rec
        view = _record_view(rec)
        return view, Change(f"{ENTITY}.create", dict(view), actor)

    def update(
        self,
        record_id: str,
        data: dict[str, Any],
        actor: str,
        *,
        version_number: int | None = None,
    ) -> tuple[dict[str, Any], Change | None]:
        rec = self._records.get(record_id)
        if rec is None:
            raise RecordNotFound(record_id)
        if version_number is not None and version_number != rec["versionNumber"]:
            differing = {
                f: rec.get(f) for f in ATTRIBUTE_KINDS if f in data and data[f] != rec.get(f)
            }
            if differing:
                raise VersionConflict(differing, rec["versionNumber"])
        values = self._clean(data)
        changed = {f: v for f, v in values.items() if rec.get(f) != v}
        if not changed:
            return _record_view(rec), None
        new_name = _derived_name({**rec, **changed})
        rec.update(changed)
        item: dict[str, Any] = {f: rec[f] for f in ATTRIBUTE_KINDS if f in changed}
        if new_name != rec["name"]:
            rec["name"] = new_name
            item = {"name": new_name, **item}
        rec.update(modifiedAt=self._now(), modifiedById=actor, versionNumber=rec["versionNumber"] + 1)
        item["id"] = record_id
        return _record_view(rec), Change(f"{ENTITY}.update", item, actor)

    def delete(self, record_id: str, actor: str) -> Change:
        if self._records.pop(record_id, None) is None:
            raise RecordNotFound(record_id)
        return Change(f"{ENTITY}.delete", {"id": record_id}, actor)


NOTE_ATTRIBUTES: dict[str, str] = {
    "id": "str",
    "type": "str",
    "post": "str",
    "parentType": "str",
    "parentId": "str",
    "createdAt": "datetime",
    "createdById": "str",
}


class NoteStore:
    """Stream posts (``Note`` records of type ``Post``)."""

    def __init__(self, *, new_id: Callable[[], str], now: Callable[[], str]) -> None:
        self._new_id = new_id
        self._now = now
        self._notes: list[dict[str, Any]] = []

    def create(self, data: dict[str, Any], actor: str) -> dict[str, Any]:
        post = data.get("post")
        if not isinstance(post, str) or not post.strip():
            raise EspoValidationError("Note", "post", "required")
        for field in ("parentType", "parentId"):
            if not isinstance(data.get(field), str) or not data[field]:
                raise EspoValidationError("Note", field, "required")
        note = {
            "id": self._new_id(),
            "type": "Post",
            "post": post,
            "parentType": data["parentType"],
            "parentId": data["parentId"],
            "createdAt": self._now(),
            "createdById": actor,
        }
        self._notes.append(note)
        return dict(note)

    def all(self) -> list[dict[str, Any]]:
        return [dict(n) for n in self._notes]
