"""What CBeteiligte must look like in EspoCRM, and the checks of ``GET Metadata`` against it (pure).

The fields are the service contract's sync fields plus every mapped field of
:data:`domain.beteiligte_mapper.FIELDS`; each has the type to create in the Entity Manager and the
types the sync works with. Person entities bring the name, e-mail, phone and address fields along.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from config.settings import PROJECT_ROOT
from domain.beteiligte_mapper import FIELDS
from domain.sync_status import ENTITY, SyncStatus
from domain.value_maps import EnumMap, ValueMaps
from installation.setup_report import Line, Status, fail, ok, warn, worst

ENTITY_MANAGER = f"Administration → Entity Manager → {ENTITY}"
PERSON = "Person"
OCC_PARAM = "optimisticConcurrencyControl"
OCC_STEPS = (f"{ENTITY_MANAGER} → Edit → tick \"Optimistic concurrency control\" → Save; "
             "then Administration → Clear Cache")
OCC_RISK = ("without it the sync reads the record once more right before it writes values to EspoCRM and "
            "decides again if it moved; only a person's edit saved in the same instant as that write, to the "
            "same field, is overwritten")
VALUE_MAPS_SETTING = "VALUE_MAPS_FILE"


class EspoType(StrEnum):
    """Field types as ``entityDefs`` names them."""

    VARCHAR = "varchar"
    TEXT = "text"
    INT = "int"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    EMAIL = "email"
    PHONE = "phone"


LABELS = {EspoType.VARCHAR: "Varchar", EspoType.TEXT: "Text", EspoType.INT: "Integer", EspoType.DATE: "Date",
          EspoType.DATETIME: "Date-Time", EspoType.ENUM: "Enum", EspoType.EMAIL: "Email", EspoType.PHONE: "Phone"}
STRINGS = frozenset({EspoType.VARCHAR, EspoType.TEXT})
SYNC_STATUSES = tuple(s.value for s in (SyncStatus.PENDING, SyncStatus.SYNCING, SyncStatus.CLEAN,
                                        SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED))


@dataclass(frozen=True)
class FieldSpec:
    name: str
    create_as: EspoType
    accepted: frozenset[EspoType]
    person: bool = False  # comes with a Person entity
    options: tuple[str, ...] = ()  # enum options the sync writes: all must exist
    warn_types: frozenset[EspoType] = frozenset()  # works, with a risk (named in ``warn_why``)
    warn_why: str = ""


def _spec(name: str, create_as: EspoType, *accepted: EspoType, person: bool = False) -> FieldSpec:
    return FieldSpec(name, create_as, frozenset((create_as, *accepted)), person)


_MAPPED_SPECS: dict[str, FieldSpec] = {
    "lastName": _spec("lastName", EspoType.VARCHAR, person=True),
    "firstName": _spec("firstName", EspoType.VARCHAR, person=True),
    "salutationName": _spec("salutationName", EspoType.ENUM, person=True),
    "rechtsform": _spec("rechtsform", EspoType.VARCHAR, EspoType.ENUM, EspoType.TEXT),
    "dateOfBirth": _spec("dateOfBirth", EspoType.DATE),
    "emailAddress": _spec("emailAddress", EspoType.EMAIL, EspoType.VARCHAR, person=True),
    "phoneNumber": _spec("phoneNumber", EspoType.PHONE, EspoType.VARCHAR, person=True),
    "addressStreet": _spec("addressStreet", EspoType.TEXT, EspoType.VARCHAR, person=True),
    **{n: _spec(n, EspoType.VARCHAR, EspoType.TEXT, person=True)
       for n in ("addressPostalCode", "addressCity", "addressCountry")},
}
SYNC_FIELDS: tuple[FieldSpec, ...] = (
    _spec("betnr", EspoType.INT),
    _spec("advowareRowId", EspoType.VARCHAR, EspoType.TEXT),
    FieldSpec("syncStatus", EspoType.ENUM, frozenset({EspoType.ENUM}), options=SYNC_STATUSES),
    _spec("advowareLastSync", EspoType.DATETIME),
    _spec("syncRetryCount", EspoType.INT),
    FieldSpec("syncErrorMessage", EspoType.TEXT, frozenset({EspoType.TEXT, EspoType.VARCHAR}),
              warn_types=frozenset({EspoType.VARCHAR}),
              warn_why="a Varchar holds 255 characters at most: a longer error message is refused"),
)


def contract_fields() -> tuple[FieldSpec, ...]:
    """Every field CBeteiligte needs: the mapped ones (in mapping order), then the sync fields."""
    mapped = tuple(_MAPPED_SPECS.get(f.espo) or _spec(f.espo, EspoType.VARCHAR, EspoType.TEXT) for f in FIELDS)
    return mapped + SYNC_FIELDS


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return obj


def entity_defs(meta: Any) -> dict[str, Any] | None:
    defs = _dig(meta, "entityDefs", ENTITY)
    return defs if isinstance(defs, dict) and isinstance(defs.get("fields"), dict) else None


def entity_line(meta: Any) -> Line:
    check = f"entity {ENTITY}"
    scope = _dig(meta, "scopes", ENTITY)
    if entity_defs(meta) is None:
        return fail(check, "does not exist (or the API user may not read it)",
                    "Administration → Entity Manager → Create Entity: name \"Beteiligte\" (EspoCRM stores it "
                    f"as {ENTITY}), type {PERSON}, \"Stream\" ticked; then give the API user's role access to it")
    kind = _dig(scope, "type")
    if kind is not None and kind != PERSON:
        return fail(check, f"is of type {kind}, not {PERSON}: it lacks the salutation, name, e-mail, phone and "
                           "address fields the sync maps", f"create it again as type {PERSON}")
    if _dig(scope, "stream") is False:
        return warn(check, "has no stream: the sync cannot post Notes (conflicts, failures) for staff to see",
                    f"{ENTITY_MANAGER} → Edit → tick \"Stream\" → Save")
    return ok(check, f"exists{' (' + PERSON + ', stream on)' if kind == PERSON else ''}")


def _field_problem(spec: FieldSpec, field: Any) -> tuple[Status, str] | None:
    create = f"{LABELS[spec.create_as]}"
    if not isinstance(field, dict):
        where = (f"it comes with a {PERSON} entity: {ENTITY} was not created as {PERSON}" if spec.person
                 else f"{ENTITY_MANAGER} → Fields → Add Field: type {create}, name \"{spec.name}\"")
        return Status.FAIL, f"{spec.name}: missing → {where}"
    kind = field.get("type")
    if kind not in spec.accepted:
        return Status.FAIL, (f"{spec.name}: type {kind}, the sync needs {create} → remove the field and add it "
                             f"again as {create} ({ENTITY_MANAGER} → Fields)")
    if kind in spec.warn_types:
        return Status.WARN, f"{spec.name}: type {kind}: {spec.warn_why} → make it {create}"
    options = [str(o) for o in field.get("options") or []]
    missing = [o for o in spec.options if o not in options]
    if missing:
        return Status.FAIL, (f"{spec.name}: options lack {', '.join(missing)} → {ENTITY_MANAGER} → Fields → "
                             f"{spec.name}: options exactly {', '.join(spec.options)}")
    extra = [o for o in options if o not in spec.options] if spec.options else []
    if extra:
        return Status.WARN, (f"{spec.name}: options {', '.join(repr(o) for o in extra)} are not the sync's "
                             f"(it never writes them) → keep exactly {', '.join(spec.options)}")
    return None


def fields_line(defs: dict[str, Any]) -> Line:
    check = f"{ENTITY} fields"
    specs = contract_fields()
    problems = [p for s in specs if (p := _field_problem(s, defs["fields"].get(s.name))) is not None]
    if not problems:
        return ok(check, f"all {len(specs)} fields the sync uses exist with a compatible type")
    status = worst(s for s, _ in problems)
    bad = sum(1 for s, _ in problems if s == Status.FAIL)
    text = f"{bad} of {len(specs)} fields missing or of a wrong type" if bad else "fields work, with a risk"
    return Line(status, check, text, details=tuple(p for _, p in problems))


def display_path(source: str) -> str:
    path = Path(source)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def enum_line(table: EnumMap, field: Any) -> Line:
    """EspoCRM's options of one mapped enum field against its value map table, both ways."""
    check = f"{table.espo_field} options ↔ Advoware {table.advo_field}"
    where = f"{display_path(table.source)} ({VALUE_MAPS_SETTING})"
    options = [str(o) for o in (field.get("options") or [])] if isinstance(field, dict) else []
    if not options:
        return warn(check, f"EspoCRM's {table.espo_field} has no options (free text): a value not in {where} "
                           "fails its record", f"make it an Enum with the options listed in {where}")
    details = [f"option '{o}' maps to no Advoware {table.advo_field} → add it to a line of "
               f"[{table.espo_field}] in {where}, or remove the option ({ENTITY_MANAGER} → Fields → "
               f"{table.espo_field})" for o in table.uncovered_options(options)]
    status = Status.FAIL if details else Status.OK
    for advo_value, espo_values in table.to_espo.items():
        if not any(v in options for v in espo_values):
            status = worst((status, Status.WARN))
            details.append(f"Advoware {table.advo_field} '{advo_value}' has no EspoCRM option (listed: "
                           f"{', '.join(espo_values)}): a linked Beteiligter with it fails to sync back → add "
                           f"the option '{espo_values[0]}' to {table.espo_field}, or an existing option to its "
                           f"line in {where}")
    if status == Status.OK:
        return ok(check, f"every option maps to an Advoware value and back ({', '.join(o for o in options if o)})")
    text = ("staff can pick values that fail their record" if status == Status.FAIL
            else "Advoware values without an EspoCRM option")
    return Line(status, check, text, details=tuple(details))


def enum_lines(defs: dict[str, Any], maps: ValueMaps) -> list[Line]:
    """One line per mapped enum field that has a table in the value map file."""
    tables = [t for f in FIELDS if f.kind == "enum" and (t := maps.get(f.espo)) is not None]
    return [enum_line(t, defs["fields"].get(t.espo_field)) for t in tables]


def occ_line(defs: dict[str, Any]) -> Line:
    check = "optimistic concurrency control"
    if defs.get(OCC_PARAM) is True:
        return ok(check, f"on for {ENTITY}: EspoCRM refuses a stale write of the sync (409) and it decides again")
    return warn(check, f"off for {ENTITY}: {OCC_RISK}", OCC_STEPS)


AUDIT_STEPS = (f"{ENTITY_MANAGER} → Fields → each field named → tick \"Audited\" → Save; then Administration → "
               "Clear Cache")


def audit_line(defs: dict[str, Any]) -> Line:
    """The mapped fields should be audited: EspoCRM's version check is not atomic (and off by default),
    so a person's save in the instant the sync writes the same field is found only in the stream's
    ``Update`` notes (issue 17 item 6, :mod:`sync.release_check`)."""
    check = "audited fields"
    names = [f.espo for f in FIELDS]
    missing = [n for n in names if _dig(defs, "fields", n, "audited") is not True]
    if not missing:
        return ok(check, f"all {len(names)} mapped fields are audited: a person's save overwritten by the sync's "
                         "write in the same instant is found in the stream and put back")
    return warn(check, f"{len(missing)} of {len(names)} mapped fields are not audited: a person's save of one in "
                       "the same instant as the sync's write to it can be overwritten unnoticed "
                       "(with optimistic concurrency too: EspoCRM's version check is not atomic)",
                AUDIT_STEPS, details=tuple(missing))
