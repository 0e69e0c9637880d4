"""EspoCRM simulator: the CBeteiligte and Note stores with EspoCRM's save rules (spec §1.1, §1.3).

Not thread-safe on its own; :class:`~simulators.espocrm.simulator.EspoCRMSimulator` holds the lock.
Every write returns a :class:`Change` that the webhook dispatcher turns into a queued event.
Deleting is soft, as in EspoCRM: the record is kept with ``deleted`` set, hidden from everyone but
an admin (:meth:`BeteiligteStore.get_deleted`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulators.espocrm.fields import (
    DEFAULTS,
    ENTITY,
    FIELDS,
    REQUIRED_FIELD,
    SYSTEM_ATTRIBUTES,
    VERSION_NUMBER,
    EspoValidationError,
    FieldRules,
)
from simulators.espocrm.profiles import Behaviour
from simulators.sorted_index import SortedIndex

__all__ = ["ENTITY", "BeteiligteStore", "Change", "EntitySettings", "EspoValidationError", "NoteStore",
           "RecordNotFound", "VersionConflict"]

CREATE, UPDATE, DELETE = (f"{ENTITY}.{e}" for e in ("create", "update", "delete"))
FOLLOWERS = "followersIds"
DELETED = "deleted"
CREATED_AT = "createdAt"  # the one order kept in an index: it never changes after the create


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


@dataclass
class EntitySettings:
    """The entity's settings an admin (or a test) can change at run time."""

    behaviour: Behaviour
    occ: bool
    rules: FieldRules
    # fields with "Audited" ticked: a save that changes one writes an ``Update`` note to the stream
    audited: frozenset[str] = frozenset()


# (record id, changed audited fields, their values before, after, the user who saved)
AuditHook = Callable[[str, list[str], dict[str, Any], dict[str, Any], str], None]


def _derived_name(rec: dict[str, Any]) -> str:
    return " ".join(p for p in (rec.get("firstName"), rec.get("lastName")) if p)


class BeteiligteStore:
    """CBeteiligte records in creation order, keyed by id, with an index on ``createdAt`` (ties in
    creation order) so that a list page in that order costs the page, not a sort of every record."""

    def __init__(
        self,
        *,
        new_id: Callable[[], str],
        now: Callable[[], str],
        settings: EntitySettings,
        user_name: Callable[[str], str],
        on_audit: AuditHook | None = None,
    ) -> None:
        self._on_audit = on_audit
        # called once each, in order, in the gap between a non-atomic version check and its write
        # (:attr:`Behaviour.occ_check_atomic`): a person saving at that exact moment
        self.gap_hooks: list[Callable[[], object]] = []
        self._new_id = new_id
        self._now = now
        self._settings = settings
        self._user_name = user_name
        self._records: dict[str, dict[str, Any]] = {}
        self._deleted: dict[str, dict[str, Any]] = {}
        self._by_created = SortedIndex()  # (createdAt, creation sequence, id)
        self._index_key: dict[str, tuple[str, int, str]] = {}
        self._created = 0

    def _view(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The record as the API shows it: ``versionNumber`` only while OCC is on (EspoCRM's column
        default is 0 for records saved while it was off)."""
        out: dict[str, Any] = {"id": rec["id"], "name": rec["name"]}
        out.update({attr: rec.get(attr) for attr in FIELDS})
        out.update({attr: rec[attr] for attr in SYSTEM_ATTRIBUTES})
        if self._settings.occ:
            out[VERSION_NUMBER] = rec.get(VERSION_NUMBER, 0)
        return out

    def get(self, record_id: str) -> dict[str, Any] | None:
        rec = self._records.get(record_id)
        return self._view(rec) if rec is not None else None

    def get_deleted(self, record_id: str) -> dict[str, Any] | None:
        rec = self._deleted.get(record_id)
        return {**self._view(rec), DELETED: True} if rec is not None else None

    def all(self) -> list[dict[str, Any]]:
        return [self._view(r) for r in self._records.values()]

    def page(self, order_by: str, descending: bool, offset: int, size: int) -> tuple[int, list[dict[str, Any]]] | None:
        """``(total, page)`` of every record in ``order_by`` order, as a stable sort of :meth:`all`
        gives it; ``None`` for an order without an index (then the caller sorts :meth:`all`)."""
        if order_by != CREATED_AT:
            return None
        index = self._by_created
        keys = index.descending_stable(offset, size) if descending else index.ascending(offset, size)
        return len(index), [self._view(self._records[key[2]]) for key in keys]

    def create(self, data: dict[str, Any], actor: str) -> tuple[dict[str, Any], Change]:
        if REQUIRED_FIELD not in data:
            raise EspoValidationError(ENTITY, REQUIRED_FIELD, "required")
        values = {**DEFAULTS, **self._settings.rules.clean(self._settings.rules.sanitize(data))}
        now = self._now()
        rec: dict[str, Any] = {"id": self._new_id(), **values}
        rec["name"] = _derived_name(rec)
        rec.update(createdAt=now, modifiedAt=now, createdById=actor, modifiedById=actor)
        rec[FOLLOWERS] = [actor]  # a stream entity: the creator follows the record
        if self._settings.occ:
            rec[VERSION_NUMBER] = 1
        self._records[rec["id"]] = rec
        self._created += 1
        key = (rec[CREATED_AT], self._created, rec["id"])
        self._index_key[rec["id"]] = key
        self._by_created.add(key)
        view = self._view(rec)
        return view, Change(CREATE, dict(view), actor)

    def _check_version(self, rec: dict[str, Any], data: dict[str, Any], version_number: int | None) -> None:
        """EspoCRM's OCC check: only with OCC on, a stale header and a field whose stored value differs."""
        if not self._settings.occ or version_number is None:
            return
        current = rec.get(VERSION_NUMBER, 0)
        if version_number == current:
            return
        differing = {f: rec.get(f) for f in FIELDS if f in data and data[f] != rec.get(f)}
        if differing:
            raise VersionConflict(differing, current)

    def check_update(self, record_id: str, data: dict[str, Any], version_number: int | None) -> None:
        """The version check of a ``PUT``, on its own. Where it is not atomic with the write, a person
        saving between the check and the write is let through (:attr:`gap_hooks`)."""
        rec = self._records.get(record_id)
        if rec is None:
            raise RecordNotFound(record_id)
        self._check_version(rec, self._settings.rules.sanitize(data), version_number)
        if self._settings.occ and version_number is not None and not self._settings.behaviour.occ_check_atomic \
                and self.gap_hooks:
            self.gap_hooks.pop(0)()

    def update(
        self, record_id: str, data: dict[str, Any], actor: str, *, version_number: int | None = None
    ) -> tuple[dict[str, Any], Change | None]:
        """A save; with ``version_number`` checked first (:meth:`check_update`), else unconditional."""
        if version_number is not None:
            self.check_update(record_id, data, version_number)
        rec = self._records.get(record_id)
        if rec is None:
            raise RecordNotFound(record_id)
        values = self._settings.rules.clean(self._settings.rules.sanitize(data))
        changed = {f: v for f, v in values.items() if rec.get(f) != v}
        if not changed and not self._settings.behaviour.noop_save_counts:
            return self._view(rec), None
        old_name = rec["name"]
        audited = [f for f in changed if f in self._settings.audited]
        was = {f: rec.get(f) for f in audited}
        rec.update(changed)
        rec["name"] = _derived_name(rec)
        rec.update(modifiedAt=self._now(), modifiedById=actor)
        if self._settings.occ:
            rec[VERSION_NUMBER] = rec.get(VERSION_NUMBER, 0) + 1
        item: dict[str, Any] = {"name": rec["name"]} if rec["name"] != old_name else {}
        item.update({f: rec[f] for f in FIELDS if f in changed})
        item.update(self._item_extras(rec))
        item["id"] = record_id
        if audited and self._on_audit is not None:
            self._on_audit(record_id, audited, was, {f: rec[f] for f in audited}, actor)
        return self._view(rec), Change(UPDATE, item, actor)

    def _item_extras(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The attributes the profile adds to every update item (8.x: system and stream ones)."""
        available: dict[str, Any] = {
            "modifiedAt": rec["modifiedAt"],
            "modifiedById": rec["modifiedById"],
            "modifiedByName": self._user_name(rec["modifiedById"]),
            "teamsNames": {},
            FOLLOWERS: list(rec[FOLLOWERS]),
            "followersNames": {uid: self._user_name(uid) for uid in rec[FOLLOWERS]},
        }
        if self._settings.occ:
            available[VERSION_NUMBER] = rec.get(VERSION_NUMBER, 0)
        return {a: available[a] for a in self._settings.behaviour.update_item_extras if a in available}

    def delete(self, record_id: str, actor: str) -> Change:
        rec = self._records.pop(record_id, None)
        if rec is None:
            raise RecordNotFound(record_id)
        self._by_created.remove(self._index_key.pop(record_id))
        rec.update(modifiedAt=self._now(), modifiedById=actor)
        self._deleted[record_id] = rec
        return Change(DELETE, {"id": record_id}, actor)


NOTE_ATTRIBUTES: dict[str, str] = {
    "id": "str",
    "type": "str",
    "post": "str",
    "data": "json",
    "parentType": "str",
    "parentId": "str",
    "createdAt": "datetime",
    "createdById": "str",
}


class NoteStore:
    """The stream: posts (``Note`` records of type ``Post``) and, for audited fields, ``Update`` notes
    (``data``: ``fields``, ``attributes.was``, ``attributes.became``; ``createdById`` = who saved)."""

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

    def add_update(self, parent_id: str, fields: list[str], was: dict[str, Any], became: dict[str, Any],
                   actor: str) -> None:
        self._notes.append({
            "id": self._new_id(), "type": "Update", "post": None, "parentType": ENTITY, "parentId": parent_id,
            "data": {"fields": list(fields), "attributes": {"was": dict(was), "became": dict(became)}},
            "createdAt": self._now(), "createdById": actor,
        })

    def all(self) -> list[dict[str, Any]]:
        return [dict(n) for n in self._notes]

    def stream(self, parent_id: str) -> list[dict[str, Any]]:
        """A record's stream, newest first, as ``GET <Entity>/<id>/stream`` lists it."""
        return [dict(n) for n in reversed(self._notes) if n["parentId"] == parent_id]
