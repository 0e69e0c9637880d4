"""EspoCRM simulator: the ASGI app (auth + REST routes of spec §1.1) and direct test methods.

Requests through HTTP act as the API user; the direct methods (:meth:`seed`, :meth:`user_edit`,
:meth:`user_delete`) act as a UI user, so webhooks with ``skipOwn`` do fire for them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.common import CallCounter, FaultInjector, SimulatorMiddleware
from simulators.espocrm.list_query import BadListRequest, MaxSizeExceeded, run_list_query
from simulators.espocrm.records import (
    ALL_ATTRIBUTES,
    ENTITY,
    NOTE_ATTRIBUTES,
    BeteiligteStore,
    Change,
    EspoValidationError,
    NoteStore,
    RecordNotFound,
    VersionConflict,
)
from simulators.espocrm.webhooks import WEBHOOK_EVENTS, DeliveryResult, WebhookDispatcher

API_PREFIX = "/api/v1"
Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    pass


def _reason(status: int, reason: str, body: Any = None) -> Response:
    content = json.dumps(body).encode() if body is not None else b""
    headers = {"X-Status-Reason": reason}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return Response(content, status_code=status, headers=headers)


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise _BadRequest("Bad request body.") from None
    if not isinstance(data, dict):
        raise _BadRequest("Bad request body.")
    return data


class EspoCRMSimulator:
    def __init__(
        self,
        *,
        api_key: str = "sandbox-espo-key",
        hmac_secret: str | None = None,
        api_user_id: str = "6650a0000000000a1",
        ui_user_id: str = "6650a0000000000b2",
        batch_size: int = 50,
        clock: Callable[[], datetime] | None = None,
        seed: int | None = None,
        webhook_timeout_s: float = 10.0,
        staff_api_key: str | None = "sandbox-staff-key",
    ) -> None:
        self.api_key = api_key
        # A second API key that acts as a person (the UI user): its changes DO fire webhooks.
        self.staff_api_key = staff_api_key
        self.hmac_secret = hmac_secret
        self.api_user_id = api_user_id
        self.ui_user_id = ui_user_id
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = random.Random(seed)
        self._used_ids: set[str] = set()
        self._lock = threading.RLock()
        self._records = BeteiligteStore(new_id=self._new_id, now=self._now)
        self._notes = NoteStore(new_id=self._new_id, now=self._now)
        self._dispatcher = WebhookDispatcher(
            new_id=self._new_id, new_secret=self._new_secret, now=self._now,
            batch_size=batch_size, timeout_s=webhook_timeout_s,
        )
        self.faults = FaultInjector(seed)
        self.calls = CallCounter()
        self.app = SimulatorMiddleware(self._build_app(), self.faults, self.calls,
                                       records=lambda rid: self.all() if rid is None else self.get(rid))

    # -- helpers -------------------------------------------------------------------------------
    def _new_id(self) -> str:
        with self._lock:
            while True:
                candidate = f"{self._rng.getrandbits(68):017x}"
                if candidate not in self._used_ids:
                    self._used_ids.add(candidate)
                    return candidate

    def _new_secret(self) -> str:
        with self._lock:
            return f"{self._rng.getrandbits(128):032x}"

    def _now(self) -> str:
        now = self._clock()
        if now.tzinfo is not None:
            now = now.astimezone(UTC)
        return now.strftime("%Y-%m-%d %H:%M:%S")

    def _user_for(self, request: Request) -> str | None:
        """The acting user's id, or ``None`` when the request does not authenticate."""
        signed = request.headers.get("x-hmac-authorization")
        if signed is not None:
            return self.api_user_id if self._hmac_ok(request, signed) else None
        key = request.headers.get("x-api-key")
        if key is None:
            return None
        if hmac.compare_digest(key.encode(), self.api_key.encode()):
            return self.api_user_id
        if self.staff_api_key and hmac.compare_digest(key.encode(), self.staff_api_key.encode()):
            return self.ui_user_id
        return None

    def _hmac_ok(self, request: Request, signed: str) -> bool:
        if self.hmac_secret is None:
            return False
        try:
            decoded = base64.b64decode(signed, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        key, _, signature = decoded.partition(":")
        path = request.url.path.removeprefix(API_PREFIX)
        message = f"{request.method} /{path.lstrip('/')}"
        expected = hmac.new(self.hmac_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(key.encode(), self.api_key.encode()) and hmac.compare_digest(
            signature.encode(), expected.encode()
        )

    def _apply(self, change: Change | None) -> None:
        if change is not None:
            self._dispatcher.enqueue(change)

    # -- direct methods (uncounted, act as the UI user) ------------------------------------------
    def seed(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            record, change = self._records.create(fields, self.ui_user_id)
            self._apply(change)
            return record

    def user_edit(self, record_id: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            record, change = self._records.update(record_id, changes, self.ui_user_id)
            self._apply(change)
            return record

    def user_delete(self, record_id: str) -> None:
        with self._lock:
            self._apply(self._records.delete(record_id, self.ui_user_id))

    def get(self, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._records.get(record_id)

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._records.all()

    def notes_for(self, record_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [n for n in self._notes.all() if n["parentId"] == record_id]

    # -- webhooks ------------------------------------------------------------------------------
    @property
    def webhooks(self) -> list[dict[str, Any]]:
        return self._dispatcher.subscriptions()

    async def flush_webhooks(self) -> list[DeliveryResult]:
        return await self._dispatcher.flush()

    def take_webhook_events(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Hands out everything queued (subscription with its secret, items) instead of sending it:
        for tests that deliver webhooks themselves - lost, duplicated or out of order."""
        return [(sub, list(batch.items)) for sub, batch in self._dispatcher._claim_due()]

    def pending_webhook_events(self) -> int:
        return self._dispatcher.pending()

    def start_webhook_job(self, interval_s: float) -> None:
        self._dispatcher.start_job(interval_s)

    def stop_webhook_job(self) -> None:
        self._dispatcher.stop_job()

    # -- HTTP ----------------------------------------------------------------------------------
    def _guard(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            user_id = self._user_for(request)
            if user_id is None:
                return Response(b"", status_code=401)
            request.state.user_id = user_id
            try:
                return await handler(request)
            except EspoValidationError as exc:
                return _reason(400, exc.reason, exc.body())
            except RecordNotFound as exc:
                return _reason(404, str(exc))
            except VersionConflict as exc:
                return _reason(409, "modified", {"values": exc.values, "versionNumber": exc.version_number})
            except (BadListRequest, _BadRequest) as exc:
                return _reason(400, str(exc))
            except MaxSizeExceeded as exc:
                return _reason(403, str(exc))

        return endpoint

    def _build_app(self) -> Starlette:
        base = f"{API_PREFIX}/{ENTITY}"
        routes = [
            Route(base, self._guard(self._list), methods=["GET"]),
            Route(base, self._guard(self._create), methods=["POST"]),
            Route(base + "/{id}", self._guard(self._read), methods=["GET"]),
            Route(base + "/{id}", self._guard(self._update), methods=["PUT", "PATCH"]),
            Route(base + "/{id}", self._guard(self._delete), methods=["DELETE"]),
            Route(f"{API_PREFIX}/Note", self._guard(self._list_notes), methods=["GET"]),
            Route(f"{API_PREFIX}/Note", self._guard(self._create_note), methods=["POST"]),
            Route(f"{API_PREFIX}/Notification", self._guard(self._forbidden),
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route(f"{API_PREFIX}/Webhook", self._guard(self._list_webhooks), methods=["GET"]),
            Route(f"{API_PREFIX}/Webhook", self._guard(self._create_webhook), methods=["POST"]),
            Route(f"{API_PREFIX}/Webhook/{{id}}", self._guard(self._delete_webhook), methods=["DELETE"]),
        ]
        return Starlette(routes=routes)

    async def _list(self, request: Request) -> Response:
        with self._lock:
            records = self._records.all()
        return JSONResponse(run_list_query(records, request.query_params.multi_items(), ALL_ATTRIBUTES))

    async def _create(self, request: Request) -> Response:
        data = await _json_object(request)
        with self._lock:
            record, change = self._records.create(data, request.state.user_id)
            self._apply(change)
        return JSONResponse(record)

    async def _read(self, request: Request) -> Response:
        record_id = request.path_params["id"]
        record = self.get(record_id)
        if record is None:
            raise RecordNotFound(record_id)
        return JSONResponse(record)

    async def _update(self, request: Request) -> Response:
        data = await _json_object(request)
        raw_version = request.headers.get("x-version-number")
        version: int | None = None
        if raw_version is not None:
            try:
                version = int(raw_version)
            except ValueError:
                raise _BadRequest("Bad X-Version-Number.") from None
        with self._lock:
            record, change = self._records.update(
                request.path_params["id"], data, request.state.user_id, version_number=version
            )
            self._apply(change)
        return JSONResponse(record)

    async def _delete(self, request: Request) -> Response:
        with self._lock:
            self._apply(self._records.delete(request.path_params["id"], request.state.user_id))
        return JSONResponse(True)

    async def _list_notes(self, request: Request) -> Response:
        with self._lock:
            notes = self._notes.all()
        return JSONResponse(run_list_query(notes, request.query_params.multi_items(), NOTE_ATTRIBUTES))

    async def _create_note(self, request: Request) -> Response:
        data = await _json_object(request)
        if data.get("type", "Post") != "Post":
            return _reason(403, "Only notes of type Post can be created.")
        with self._lock:
            if data.get("parentType") == ENTITY and self._records.get(str(data.get("parentId"))) is None:
                raise RecordNotFound(str(data.get("parentId")))
            note = self._notes.create(data, request.state.user_id)
        return JSONResponse(note)

    async def _forbidden(self, request: Request) -> Response:
        return _reason(403, "Forbidden.")

    async def _list_webhooks(self, request: Request) -> Response:
        subs = self.webhooks
        return JSONResponse({"total": len(subs), "list": subs})

    async def _create_webhook(self, request: Request) -> Response:
        data = await _json_object(request)
        if data.get("event") not in WEBHOOK_EVENTS:
            raise EspoValidationError("Webhook", "event", "valid")
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise EspoValidationError("Webhook", "url", "valid")
        skip_own = data.get("skipOwn", False)
        if not isinstance(skip_own, bool):
            raise EspoValidationError("Webhook", "skipOwn", "valid")
        return JSONResponse(self._dispatcher.register(data["event"], url, skip_own, request.state.user_id))

    async def _delete_webhook(self, request: Request) -> Response:
        webhook_id = request.path_params["id"]
        if not self._dispatcher.remove(webhook_id):
            raise RecordNotFound(webhook_id)
        return JSONResponse(True)
