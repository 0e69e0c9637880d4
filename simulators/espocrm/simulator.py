"""EspoCRM simulator: state, settings and direct test methods (the HTTP side is in ``http_api``).

Requests through HTTP act as the user their key names; the direct methods (:meth:`seed`,
:meth:`user_edit`, :meth:`user_delete`) act as a UI user, so webhooks with ``skipOwn`` do fire.

Realistic defaults, as a fresh CBeteiligte made in the Entity Manager of a current EspoCRM:
``profile="9"``, ``occ=False`` (optimistic concurrency control off), stock salutation options,
"International phone numbers" on (as a fresh install leaves it; an install upgraded to 8.1 has it
off), "Phone number extensions" off (:mod:`simulators.espocrm.phone`). All can be switched at run time
(:meth:`set_profile`, :meth:`set_occ`, :meth:`set_salutation_options`, :meth:`set_phone_settings`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from simulators.common import CallCounter, SimulatorMiddleware
from simulators.espocrm.fields import ENTITY, STOCK_SALUTATIONS, FieldRules, entity_defs, list_attributes
from simulators.espocrm.http_api import build_app
from simulators.espocrm.phone import PhoneSettings
from simulators.espocrm.profiles import BATCH_SIZE, EVENT_PORTION_SIZE, Behaviour, Profile, behaviour_of
from simulators.espocrm.records import BeteiligteStore, Change, EntitySettings, NoteStore
from simulators.espocrm.users import Authenticator, User, UserType
from simulators.espocrm.webhooks import DeliveryResult, WebhookDispatcher
from simulators.faults import FaultInjector


class EspoCRMSimulator:
    def __init__(
        self,
        *,
        api_key: str = "sandbox-espo-key",
        hmac_secret: str | None = None,
        api_user_id: str = "6650a0000000000a1",
        ui_user_id: str = "6650a0000000000b2",
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], datetime] | None = None,
        seed: int | None = None,
        webhook_timeout_s: float = 10.0,
        staff_api_key: str | None = "sandbox-staff-key",
        admin_api_key: str | None = None,
        admin_user_id: str = "6650a0000000000c3",
        profile: Profile | str = Profile.V9,
        occ: bool = False,
        salutation_options: Sequence[str] = STOCK_SALUTATIONS,
        event_portion_size: int = EVENT_PORTION_SIZE,
        phone_international: bool = True,
        phone_extensions: bool = False,
        missing_fields: Sequence[str] = (),
    ) -> None:
        # The staff key acts as a person (the UI user): its changes DO fire webhooks.
        self.api_key, self.staff_api_key, self.admin_api_key = api_key, staff_api_key, admin_api_key
        self.api_user_id, self.ui_user_id, self.admin_user_id = api_user_id, ui_user_id, admin_user_id
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = random.Random(seed)
        self._used_ids: set[str] = set()
        self.lock = threading.RLock()
        rules = FieldRules(tuple(salutation_options), PhoneSettings())
        self._settings = EntitySettings(behaviour_of(profile), occ, rules)
        self.set_phone_settings(international=phone_international, extensions=phone_extensions)
        self.missing_fields: frozenset[str] = frozenset(missing_fields)
        self.users = [
            User(api_user_id, "sync-api", "Beteiligte Sync", UserType.API, api_key),
            User(ui_user_id, "sachbearbeitung", "Sachbearbeitung", UserType.REGULAR, staff_api_key),
            User(admin_user_id, "admin", "Admin", UserType.ADMIN, admin_api_key),
        ]
        self.auth = Authenticator(self.users, self.users[0], hmac_secret, lambda: self.behaviour.hmac_accepts_hex)
        self.note_store = NoteStore(new_id=self._new_id, now=self._now)
        self.store = BeteiligteStore(new_id=self._new_id, now=self._now, settings=self._settings,
                                     user_name=self._user_name, on_audit=self.note_store.add_update)
        self._dispatcher = WebhookDispatcher(
            new_id=self._new_id, new_secret=self._new_secret, now=self._now, behaviour=lambda: self.behaviour,
            batch_size=batch_size, portion_size=event_portion_size, timeout_s=webhook_timeout_s,
        )
        self.faults = FaultInjector(seed)
        self.calls = CallCounter()
        self.app = SimulatorMiddleware(build_app(self), self.faults, self.calls,
                                       records=lambda rid: self.all() if rid is None else self.get(rid))

    # -- settings ------------------------------------------------------------------------------
    @property
    def hmac_secret(self) -> str | None:
        return self.auth.hmac_secret

    @property
    def behaviour(self) -> Behaviour:
        return self._settings.behaviour

    @property
    def profile(self) -> Profile:
        return self._settings.behaviour.profile

    @property
    def occ(self) -> bool:
        return self._settings.occ

    @property
    def salutation_options(self) -> tuple[str, ...]:
        return self._settings.rules.salutation_options

    def set_profile(self, profile: Profile | str) -> None:
        with self.lock:
            self._settings.behaviour = behaviour_of(profile)
            self._settings.rules.phone.extensions_supported = self._settings.behaviour.has_phone_extensions

    def set_occ(self, enabled: bool) -> None:
        """The Entity Manager's "Optimistic concurrency control" checkbox for CBeteiligte."""
        with self.lock:
            self._settings.occ = enabled

    def set_salutation_options(self, options: Sequence[str]) -> None:
        with self.lock:
            self._settings.rules.salutation_options = tuple(options)

    def set_audited(self, names: Sequence[str]) -> None:
        """The fields with "Audited" ticked in the Entity Manager: a save changing one writes an
        ``Update`` note (who, was, became) to the record's stream. None by default, as EspoCRM."""
        with self.lock:
            self._settings.audited = frozenset(names)

    def between_check_and_write(self, action: Callable[[], object]) -> None:
        """Run ``action`` (a person saving) in the gap of the next ``PUT`` whose version check is not
        atomic with its write (:attr:`Behaviour.occ_check_atomic`): both saves then succeed."""
        with self.lock:
            self.store.gap_hooks.append(action)

    def set_missing_fields(self, names: Sequence[str]) -> None:
        """Fields an admin has not created: left out of ``GET /Metadata`` (only there; records keep them),
        for the setup check of ``beteiligte-sync doctor``."""
        with self.lock:
            self.missing_fields = frozenset(names)

    def set_clock(self, clock: Callable[[], datetime]) -> None:
        """The time EspoCRM stamps on saves (``modifiedAt``), for tests that order edits exactly."""
        with self.lock:
            self._clock = clock

    def set_phone_settings(self, *, international: bool | None = None, extensions: bool | None = None) -> None:
        """Administration > Settings: "International phone numbers" (``phoneNumberInternational``) and,
        from 8.3 on, "Phone number extensions" (``phoneNumberExtensions``; 8.1.5 has no such setting)."""
        with self.lock:
            phone = self._settings.rules.phone
            phone.extensions_supported = self.behaviour.has_phone_extensions
            if international is not None:
                phone.international = international
            if extensions is not None:
                phone.extensions = extensions

    def settings(self) -> dict[str, Any]:
        """What ``GET /Settings`` answers (the part of it the sync can use)."""
        with self.lock:
            phone = self._settings.rules.phone
            out: dict[str, Any] = {"phoneNumberInternational": phone.international}
            if phone.extensions_supported:
                out["phoneNumberExtensions"] = phone.extensions
        return out

    def metadata(self) -> dict[str, Any]:
        """What ``GET /Metadata`` answers (the part of it the sync can use)."""
        with self.lock:
            defs = entity_defs(self.salutation_options, self.occ, self._settings.audited)
            defs["fields"] = {k: v for k, v in defs["fields"].items() if k not in self.missing_fields}
        return {"entityDefs": {ENTITY: defs},
                "scopes": {ENTITY: {"entity": True, "object": True, "type": "Person", "stream": True}}}

    def list_attributes(self) -> dict[str, str]:
        return {k: str(v) for k, v in list_attributes(self.occ).items()}

    # -- helpers -------------------------------------------------------------------------------
    def _new_id(self) -> str:
        with self.lock:
            while True:
                candidate = f"{self._rng.getrandbits(68):017x}"
                if candidate not in self._used_ids:
                    self._used_ids.add(candidate)
                    return candidate

    def _new_secret(self) -> str:
        with self.lock:
            return f"{self._rng.getrandbits(128):032x}"

    def _now(self) -> str:
        now = self._clock()
        if now.tzinfo is not None:
            now = now.astimezone(UTC)
        return now.strftime("%Y-%m-%d %H:%M:%S")

    def _user_name(self, user_id: str) -> str:
        user = self.auth.user(user_id)
        return user.name if user is not None else user_id

    def apply(self, change: Change | None) -> None:
        """Queue the webhook event of a change (called under the lock)."""
        if change is not None:
            self._dispatcher.enqueue(change)

    # -- direct methods (uncounted, act as the UI user) ------------------------------------------
    def seed(self, **fields: Any) -> dict[str, Any]:
        with self.lock:
            record, change = self.store.create(fields, self.ui_user_id)
            self.apply(change)
            return record

    def user_edit(self, record_id: str, **changes: Any) -> dict[str, Any]:
        with self.lock:
            record, change = self.store.update(record_id, changes, self.ui_user_id)
            self.apply(change)
            return record

    def user_delete(self, record_id: str) -> None:
        with self.lock:
            self.apply(self.store.delete(record_id, self.ui_user_id))

    def get(self, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.store.get(record_id)

    def get_deleted(self, record_id: str) -> dict[str, Any] | None:
        """A deleted record as an admin sees it (``"deleted": true``), else ``None``."""
        with self.lock:
            return self.store.get_deleted(record_id)

    def all(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.store.all()

    def notes_for(self, record_id: str) -> list[dict[str, Any]]:
        """The posts on a record's stream (what people and the sync wrote), oldest first."""
        with self.lock:
            return [n for n in self.note_store.all() if n["parentId"] == record_id and n["type"] == "Post"]

    def stream_for(self, record_id: str) -> list[dict[str, Any]]:
        """A record's whole stream (posts and audited ``Update`` notes), newest first."""
        with self.lock:
            return self.note_store.stream(record_id)

    # -- webhooks ------------------------------------------------------------------------------
    @property
    def webhooks(self) -> list[dict[str, Any]]:
        return self._dispatcher.subscriptions()

    async def flush_webhooks(self, *, drain: bool = False, up_to: int | None = None) -> list[DeliveryResult]:
        """One run of EspoCRM's webhook job: at most 20 events moved (``event_portion_size``), one
        batch of up to 50 per webhook, failed batches retried. ``drain=True``: job runs until every event
        queued before the call is sent. ``up_to`` (a :meth:`webhook_mark`): leave later events queued."""
        if drain:
            return await self._dispatcher.run_until_sent()
        return await self._dispatcher.run(up_to=up_to)

    def webhook_mark(self) -> int:
        """Marks the newest queued event, for :meth:`flush_webhooks` and :meth:`webhook_events_waiting`."""
        return self._dispatcher.mark()

    def webhook_events_waiting(self, up_to: int) -> int:
        """Events up to the mark that a job run has not sent yet (kept retries not counted)."""
        return self._dispatcher.waiting(up_to)

    def take_webhook_events(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Hands out everything queued (subscription with its secret, items) instead of sending it:
        for tests that deliver webhooks themselves - lost, duplicated or out of order."""
        return [(sub, list(batch.items)) for sub, batch in self._dispatcher.take_all()]

    def pending_webhook_events(self) -> int:
        return self._dispatcher.pending()

    def start_webhook_job(self, interval_s: float | None = None) -> None:
        """Run the webhook job in the background; default interval as the profile's EspoCRM (8.1.5:
        every 5 min, 9.x: every 2 min)."""
        self._dispatcher.start_job(interval_s if interval_s is not None else self.behaviour.webhook_job_interval_s)

    def set_webhook_retry_delay(self, seconds: float) -> None:
        """How long a batch kept for retry waits before a job run sends it again (EspoCRM: 600 s)."""
        self._dispatcher.retry_delay_s = seconds

    def stop_webhook_job(self) -> None:
        self._dispatcher.stop_job()

    def register_webhook(self, event: str, url: str, skip_own: bool, owner_id: str) -> dict[str, Any]:
        return self._dispatcher.register(event, url, skip_own, owner_id)

    def remove_webhook(self, webhook_id: str) -> bool:
        return self._dispatcher.remove(webhook_id)
