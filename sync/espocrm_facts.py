"""What the sync learns once from EspoCRM itself: its own user id and the options of enum fields.

- ``GET App/user``: the API user's id. A record whose ``modifiedById`` is ours was last written by
  the sync, so its ``modifiedAt`` is not a person's edit time (``newest_wins`` needs that).
- ``GET Metadata``: the options of mapped enum fields, so a value written to EspoCRM is one it
  offers (stock ``Mr.``/``Ms.`` or German ``Herr``/``Frau``; see ``config/value_maps.toml``), and
  whether optimistic concurrency is on (logged; the sync itself reads it off each record).
- ``GET Settings``: whether "International phone numbers" is on (``phoneNumberInternational``): then
  EspoCRM refuses a national number, so one from Advoware is written in its E.164 form
  (:func:`domain.phone.espo_spelling`).
Each may be unavailable (older versions, restricted roles): the sync then works without it and
``beteiligte-sync doctor`` says what is missing.

What was read is kept in the store for :data:`MAX_AGE_S` too (:mod:`adapters.facts_cache`), so a
process that starts afresh (under Motia: every handler call) uses it instead of asking again.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from adapters.errors import ApiError, FatalError, NotFoundError, RetryableError, ValidationError
from domain.beteiligte_mapper import FIELDS, value_maps
from domain.sync_status import ENTITY

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI
    from adapters.facts_cache import FactsCache

log = logging.getLogger("beteiligte_sync")
MAX_AGE_S = 600.0  # an admin may change enum options while the service runs
PHONE_MAX_LENGTH = 36  # EspoCRM: entityDefs.PhoneNumber.fields.name.maxLength


class EspoFacts:
    def __init__(self, espo: EspoCRMAPI, cache: FactsCache | None = None) -> None:
        self.espo = espo
        self.cache = cache
        self.user_id: str | None = None
        self.occ: bool | None = None
        # mapped fields with "Audited" ticked: a person's save of one that our release overwrote is
        # found in the record's stream (sync.release_check)
        self.audited: frozenset[str] = frozenset()
        # EspoCRM's "International phone numbers" setting; None: not readable
        self.phone_international: bool | None = None
        self.loaded = False
        self._loaded_at = 0.0
        self._stale = False  # EspoCRM refused an option: the shared copy is out of date too

    async def load(self) -> None:
        """Once per :data:`MAX_AGE_S` (from the store when another process read them); a passing fault
        is tried again on the next sync."""
        if self.loaded and time.monotonic() - self._loaded_at < MAX_AGE_S:
            return
        if await self._from_cache():
            return
        self._loaded_at = time.monotonic()
        try:
            user = await self.espo.get_raw("App/user")
            meta = await self.espo.get_raw("Metadata")
        except (FatalError, NotFoundError) as exc:
            log.warning("EspoCRM does not tell its user or metadata (%s): newest_wins uses modifiedAt "
                        "as is, enum values are written as first listed in the value map", exc)
            self.loaded = True
            await self._to_cache({})
            return
        except ApiError:
            return
        self.user_id = _user_id(user)
        self.apply_metadata(meta)
        self.phone_international = await self._phone_international()
        if not self.loaded and self.occ is False:
            log.warning("EspoCRM: optimistic concurrency is off for %s: the sync re-reads a record right "
                        "before it writes values to it; switch it on in the Entity Manager (see "
                        "'beteiligte-sync doctor')", ENTITY)
        unaudited = sorted({f.espo for f in FIELDS} - self.audited)
        if not self.loaded and unaudited:
            log.warning("EspoCRM: %d mapped fields of %s are not audited (e.g. %s): a person's save of one in "
                        "the instant the sync writes it cannot be found and may be lost; tick 'Audited' for "
                        "them in the Entity Manager (see 'beteiligte-sync doctor')", len(unaudited), ENTITY,
                        unaudited[0])
        self.loaded = True
        await self._to_cache(_enum_options(meta))

    async def _from_cache(self) -> bool:
        if self.cache is None or self._stale:
            return False
        facts = await self.cache.get()
        if facts is None:
            return False
        self.user_id, self.occ = facts.get("user_id"), facts.get("occ")
        self.phone_international = facts.get("phone_international")
        for name, options in (facts.get("options") or {}).items():
            table = value_maps().get(name)
            if table is not None:
                table.espo_options = [str(o) for o in options]
        age = max(0.0, time.time() - float(facts.get("read_at", 0.0)))
        self._loaded_at = time.monotonic() - age
        self.loaded = True
        return True

    async def _to_cache(self, options: dict[str, list[str]]) -> None:
        self._stale = False
        if self.cache is not None:
            await self.cache.put({"user_id": self.user_id, "occ": self.occ, "options": options,
                                  "phone_international": self.phone_international, "read_at": time.time()},
                                 MAX_AGE_S)

    async def _phone_international(self) -> bool | None:
        try:
            settings = await self.espo.get_raw("Settings")
        except (FatalError, NotFoundError) as exc:
            log.warning("EspoCRM does not tell whether 'International phone numbers' is on (%s): a national "
                        "number from Advoware is written in its E.164 form, which EspoCRM accepts either way", exc)
            return None
        value = _dig(settings, "phoneNumberInternational")
        return value if isinstance(value, bool) else None

    async def reload(self) -> None:
        """Read user and metadata again now (an admin changed the entity)."""
        self._loaded_at = 0.0
        await self.load()

    def option_refused(self, exc: ValidationError) -> bool:
        """EspoCRM refused a value of a mapped enum field (``type: valid``): its options may have
        changed since we read them. Forget them, so the next attempt reads them again."""
        data = _dig(exc.details, "messageTranslation", "data")
        refused = isinstance(data, dict) and data.get("type") == "valid" and value_maps().get(
            str(data.get("field"))) is not None
        if refused:
            self.loaded = False
            self._loaded_at = 0.0
            self._stale = True
        return refused

    async def refusal(self, exc: ValidationError) -> ApiError:
        """What EspoCRM's ``400`` to a write of ours means for the record: an enum option or "International
        phone numbers" changed since we read them (:class:`~adapters.errors.RetryableError`: the next attempt
        reads them again), a phone number it refuses for good (:class:`PhoneRefused`), or ``exc`` itself."""
        if self.option_refused(exc):
            return RetryableError(f"EspoCRM refused an option ({exc}); its options are read again", system="espocrm")
        if await self.phone_setting_changed(exc):
            return RetryableError(f"EspoCRM refused a phone number ({exc}); its setting changed", system="espocrm")
        refused = refused_phone(exc)
        if refused is None:
            return exc
        field, kind = refused
        return PhoneRefused(phone_refused_message(field, kind, self.phone_international), system="espocrm",
                            status=exc.status, details=exc.details)

    async def phone_setting_changed(self, exc: ValidationError) -> bool:
        """EspoCRM refused a phone number (``type: valid``): read "International phone numbers" again
        (one ``GET Settings``). True when an admin switched it since it was read: the shared copy is
        then forgotten and the next attempt writes the spelling the new setting accepts."""
        data = _dig(exc.details, "messageTranslation", "data")
        if not (isinstance(data, dict) and data.get("type") == "valid"
                and any(f.kind == "phone" and f.espo == data.get("field") for f in FIELDS)):
            return False
        now = await self._phone_international()
        if now is None or now == self.phone_international:
            return False
        log.warning("EspoCRM: 'International phone numbers' is now %s; the sync writes phone numbers "
                    "accordingly", "on" if now else "off")
        self.phone_international = now
        self._loaded_at = 0.0
        self._stale = True
        return True

    def apply_metadata(self, meta: Any) -> None:
        defs = _dig(meta, "entityDefs", ENTITY)
        if not isinstance(defs, dict):
            return
        occ = defs.get("optimisticConcurrencyControl")
        self.occ = bool(occ) if occ is not None else None
        fields = defs.get("fields") if isinstance(defs.get("fields"), dict) else {}
        self.audited = frozenset(f.espo for f in FIELDS if _dig(fields, f.espo, "audited") is True)
        for f in FIELDS:
            table = value_maps().get(f.espo)
            options = _dig(fields, f.espo, "options")
            if table is not None and isinstance(options, list):
                table.espo_options = [str(o) for o in options]


class Invalid(StrEnum):
    """EspoCRM's validation types (``messageTranslation.data.type`` of its ``400``) a phone number meets."""

    VALID = "valid"  # Classes/FieldValidators/PhoneType.php: pattern, and with the setting on E.164
    MAX_LENGTH = "maxLength"  # longer than PHONE_MAX_LENGTH


class PhoneRefused(FatalError):
    """EspoCRM refuses a phone number from Advoware for good: its validator, with its setting as read.
    Retried when the record or its Beteiligter changes. Its text is the whole message: it names EspoCRM
    and the field itself, without the status line of a raw answer."""

    def __str__(self) -> str:
        return self.message


def phone_refused_message(field: str, kind: Invalid, international: bool | None) -> str:
    """One line for ``syncErrorMessage``: the field and what to do, never the number (the message is
    logged too; staff see the number in Advoware)."""
    advo = next((f.advo for f in FIELDS if f.espo == field), field)
    if kind == Invalid.MAX_LENGTH:
        why = f"as too long (at most {PHONE_MAX_LENGTH} characters)"
    elif international:
        why = "as invalid ('International phone numbers' is on: digits with the area code, no words)"
    else:
        why = "as invalid" + (" ('International phone numbers' is off)" if international is False else "")
    return f"EspoCRM refuses the phone number of Advoware's {advo} in {field} {why}: correct it in Advoware"


def refused_phone(exc: ValidationError) -> tuple[str, Invalid] | None:
    """The phone field EspoCRM refused and why, if it was one."""
    data = _dig(exc.details, "messageTranslation", "data")
    if not isinstance(data, dict) or data.get("type") not in tuple(Invalid):
        return None
    field = data.get("field")
    return (str(field), Invalid(data["type"])) if any(f.kind == "phone" and f.espo == field for f in FIELDS) else None


def _enum_options(meta: Any) -> dict[str, list[str]]:
    """The options of the mapped enum fields in ``GET Metadata`` (what :meth:`EspoFacts.apply_metadata` uses)."""
    fields = _dig(meta, "entityDefs", ENTITY, "fields")
    out = {}
    for f in FIELDS:
        options = _dig(fields, f.espo, "options")
        if value_maps().get(f.espo) is not None and isinstance(options, list):
            out[f.espo] = [str(o) for o in options]
    return out


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _user_id(user: Any) -> str | None:
    uid = _dig(user, "user", "id")
    return uid if isinstance(uid, str) and uid else None
