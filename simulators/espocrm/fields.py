"""EspoCRM simulator: the CBeteiligte fields, their validation and sanitising, and ``entityDefs``.

CBeteiligte is a Person entity made in the Entity Manager: ``salutationName`` is an enum whose
options an admin may edit (stock ``''``/Mr./Ms./Mrs./Dr.; firms often use Herr/Frau/Divers/Firma).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from simulators.espocrm.phone import PhoneSettings

ENTITY = "CBeteiligte"
SALUTATION = "salutationName"
PHONE = "phoneNumber"
REQUIRED_FIELD = "lastName"

STOCK_SALUTATIONS: tuple[str, ...] = ("", "Mr.", "Ms.", "Mrs.", "Dr.")
GERMAN_SALUTATIONS: tuple[str, ...] = ("", "Herr", "Frau", "Divers", "Firma")
SYNC_STATUSES: tuple[str, ...] = ("pending_sync", "syncing", "clean", "failed", "permanently_failed")


class Kind(StrEnum):
    """How the simulator validates a value."""

    STR = "str"
    INT = "int"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"


class FieldType(StrEnum):
    """EspoCRM field types as ``entityDefs`` names them."""

    ID = "id"
    PERSON_NAME = "personName"
    VARCHAR = "varchar"
    TEXT = "text"
    ENUM = "enum"
    DATE = "date"
    DATETIME = "datetime"
    INT = "int"
    EMAIL = "email"
    PHONE = "phone"
    LINK = "link"


@dataclass(frozen=True)
class FieldDef:
    type: FieldType
    kind: Kind


_STR_FIELDS = {FieldType.VARCHAR, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE}
_KIND_OF = {FieldType.ENUM: Kind.ENUM, FieldType.DATE: Kind.DATE, FieldType.DATETIME: Kind.DATETIME,
            FieldType.INT: Kind.INT, **{t: Kind.STR for t in _STR_FIELDS}}


def _f(type_: FieldType) -> FieldDef:
    return FieldDef(type_, _KIND_OF[type_])


# Writable attributes in record order. Order matters: it is the attribute order of every record and
# webhook item, and the order in which validation reports the first failure.
FIELDS: dict[str, FieldDef] = {
    SALUTATION: _f(FieldType.ENUM),
    "firstName": _f(FieldType.VARCHAR),
    "lastName": _f(FieldType.VARCHAR),
    "titel": _f(FieldType.VARCHAR),
    "rechtsform": _f(FieldType.VARCHAR),
    "dateOfBirth": _f(FieldType.DATE),
    "handelsregisterNummer": _f(FieldType.VARCHAR),
    "registergericht": _f(FieldType.VARCHAR),
    "emailAddress": _f(FieldType.EMAIL),
    PHONE: _f(FieldType.PHONE),
    "addressStreet": _f(FieldType.TEXT),
    "addressPostalCode": _f(FieldType.VARCHAR),
    "addressCity": _f(FieldType.VARCHAR),
    "addressCountry": _f(FieldType.VARCHAR),
    "description": _f(FieldType.TEXT),
    "beteiligtenRolle": _f(FieldType.VARCHAR),
    "betnr": _f(FieldType.INT),
    "advowareRowId": _f(FieldType.VARCHAR),
    "syncStatus": _f(FieldType.ENUM),
    "advowareLastSync": _f(FieldType.DATETIME),
    "syncRetryCount": _f(FieldType.INT),
    "syncErrorMessage": _f(FieldType.TEXT),
}
VERSION_NUMBER = "versionNumber"
SYSTEM_ATTRIBUTES = ("createdAt", "modifiedAt", "createdById", "modifiedById")
# Fields of the entity that are not writable attributes (``entityDefs`` names links, not their ids).
SYSTEM_FIELDS: dict[str, FieldType] = {
    "id": FieldType.ID, "name": FieldType.PERSON_NAME, "createdAt": FieldType.DATETIME,
    "modifiedAt": FieldType.DATETIME, "createdBy": FieldType.LINK, "modifiedBy": FieldType.LINK,
}
DEFAULTS: dict[str, Any] = {"syncStatus": "pending_sync", "syncRetryCount": 0}

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$")


def list_attributes(occ: bool) -> dict[str, Kind]:
    """Every attribute a record carries (for select/orderBy/where); ``versionNumber`` only with OCC."""
    out: dict[str, Kind] = {"id": Kind.STR, "name": Kind.STR}
    out.update({attr: d.kind for attr, d in FIELDS.items()})
    out.update({"createdAt": Kind.DATETIME, "modifiedAt": Kind.DATETIME,
                "createdById": Kind.STR, "modifiedById": Kind.STR})
    if occ:
        out[VERSION_NUMBER] = Kind.INT
    return out


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


class FieldRules:
    """Sanitises and validates incoming values: the field definitions, the current enum options and
    the phone number settings (:mod:`simulators.espocrm.phone`)."""

    def __init__(self, salutation_options: tuple[str, ...], phone: PhoneSettings | None = None) -> None:
        self.salutation_options = salutation_options
        self.phone = phone or PhoneSettings()

    def sanitize(self, data: dict[str, Any]) -> dict[str, Any]:
        """Input sanitising that runs before concurrency control and validation (phone numbers)."""
        phone = data.get(PHONE)
        if isinstance(phone, str):
            return {**data, PHONE: self.phone.sanitize(phone)}
        return data

    def options(self, field: str) -> tuple[str, ...]:
        return self.salutation_options if field == SALUTATION else SYNC_STATUSES

    def clean(self, data: dict[str, Any]) -> dict[str, Any]:
        """The known attributes of ``data``, validated; unknown and system attributes are dropped."""
        return {field: self.clean_value(field, d.kind, data[field]) for field, d in FIELDS.items() if field in data}

    def clean_value(self, field: str, kind: Kind, value: Any) -> Any:
        """Validate one incoming value; returns the value to store or raises EspoValidationError."""
        if value is None:
            if field == REQUIRED_FIELD:
                raise EspoValidationError(ENTITY, field, "required")
            if kind == Kind.ENUM and "" not in self.options(field):
                raise EspoValidationError(ENTITY, field, "valid")
            return None
        if kind == Kind.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise EspoValidationError(ENTITY, field, "valid")
            return value
        if not isinstance(value, str):
            raise EspoValidationError(ENTITY, field, "valid")
        if field == REQUIRED_FIELD and value == "":
            raise EspoValidationError(ENTITY, field, "required")
        if kind in (Kind.DATE, Kind.DATETIME) and value == "":
            return None
        if kind == Kind.DATE and not _valid_date(value):
            raise EspoValidationError(ENTITY, field, "valid")
        if kind == Kind.DATETIME:
            normalized = _normalize_datetime(value)
            if normalized is None:
                raise EspoValidationError(ENTITY, field, "valid")
            return normalized
        if kind == Kind.ENUM and value not in self.options(field):
            raise EspoValidationError(ENTITY, field, "valid")
        if field == PHONE and value != "":
            if not self.phone.valid(value):
                raise EspoValidationError(ENTITY, field, "valid")
            if self.phone.too_long(value):
                raise EspoValidationError(ENTITY, field, "maxLength")
        return value


def entity_defs(salutation_options: tuple[str, ...], occ: bool,
                audited: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``entityDefs.CBeteiligte`` as ``GET /Metadata`` shows it.

    ``optimisticConcurrencyControl`` is an entity-level param right under ``entityDefs.<Entity>``
    (EspoCRM reads ``['entityDefs', $entityType, 'optimisticConcurrencyControl']`` in
    ``Core/FieldProcessing/VersionNumber/BeforeSaveProcessor.php`` and ``Core/Utils/Database/Orm/
    Converter.php``, which adds the ``versionNumber`` attribute only when it is on; the Entity Manager
    controller writes it from the admin's checkbox). ``versionNumber`` itself is no field.
    """
    fields: dict[str, Any] = {name: {"type": str(t)} for name, t in SYSTEM_FIELDS.items()}
    for name, d in FIELDS.items():
        fields[name] = {"type": str(d.type)}
    fields[SALUTATION]["options"] = list(salutation_options)
    fields["syncStatus"]["options"] = list(SYNC_STATUSES)
    fields[REQUIRED_FIELD]["required"] = True
    for name in audited & fields.keys():
        fields[name]["audited"] = True
    return {"fields": fields, "optimisticConcurrencyControl": occ}
