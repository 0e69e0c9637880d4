"""EspoCRM simulator: outgoing webhooks (spec §1.2) — subscriptions, queue, signing, delivery.

Every change is queued per matching subscription (``skipOwn`` drops the owner's own changes).
:meth:`WebhookDispatcher.flush` sends everything due now: queued items in batches of up to
``batch_size`` per subscription, plus batches that failed on an earlier flush (retries are due on
the very next flush; EspoCRM would wait 10 minutes). The receiver's answer decides per spec's table.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulators.espocrm.records import ENTITY, Change

WEBHOOK_EVENTS = (f"{ENTITY}.create", f"{ENTITY}.update", f"{ENTITY}.delete")
MAX_ATTEMPTS = 4
RETRY_STATUSES = frozenset({401, 403, 404, 405, 408, 500, 503})


def php_json_encode(payload: Any) -> bytes:
    """Serialize like PHP ``json_encode``: compact, non-ASCII as ``\\u00fc``, ``/`` as ``\\/``."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")


def signature_header(webhook_id: str, secret_key: str, raw_body: bytes) -> str:
    """``Signature``: base64(webhookId + ":" + hex HMAC-SHA256(secretKey, raw body))."""
    digest = hmac.new(secret_key.encode(), raw_body, hashlib.sha256).hexdigest()
    return base64.b64encode(f"{webhook_id}:{digest}".encode()).decode()


def legacy_signature_header(webhook_id: str, secret_key: str, raw_body: bytes) -> str:
    """``X-Signature``: base64(webhookId + ":" + raw 32-byte HMAC-SHA256 digest)."""
    digest = hmac.new(secret_key.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(webhook_id.encode() + b":" + digest).decode()


def classify_answer(status: int | None) -> str:
    """Receiver answer -> "done" | "retry" | "drop" | "delete" (``None`` = timeout/no answer)."""
    if status is None or status in RETRY_STATUSES:
        return "retry"
    if status == 410:
        return "delete"
    if 200 <= status < 400:
        return "done"
    return "drop"


@dataclass
class DeliveryResult:
    """One POST to a receiver. ``outcome``: done, retry (kept), dropped, webhook_deleted."""

    webhook_id: str
    event: str
    url: str
    status: int | None
    outcome: str
    attempt: int
    item_count: int
    error: str | None = None


@dataclass
class _Batch:
    items: list[dict[str, Any]]
    attempts: int = 0


@dataclass
class _Subscription:
    record: dict[str, Any]
    queue: list[dict[str, Any]] = field(default_factory=list)
    retry_batches: list[_Batch] = field(default_factory=list)


class WebhookDispatcher:
    def __init__(
        self,
        *,
        new_id: Callable[[], str],
        new_secret: Callable[[], str],
        now: Callable[[], str],
        batch_size: int = 50,
        timeout_s: float = 10.0,
    ) -> None:
        self._new_id, self._new_secret, self._now = new_id, new_secret, now
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self._subs: dict[str, _Subscription] = {}
        self._lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._job_stop = threading.Event()

    # -- subscriptions -------------------------------------------------------------------------
    def register(self, event: str, url: str, skip_own: bool, owner_id: str) -> dict[str, Any]:
        now = self._now()
        webhook_id = self._new_id()
        record: dict[str, Any] = {
            "id": webhook_id,
            "event": event,
            "url": url,
            "skipOwn": skip_own,
            "isActive": True,
            "secretKey": self._new_secret(),
            "userId": owner_id,
            "createdAt": now,
            "modifiedAt": now,
        }
        with self._lock:
            self._subs[webhook_id] = _Subscription(record)
        return dict(record)

    def remove(self, webhook_id: str) -> bool:
        with self._lock:
            return self._subs.pop(webhook_id, None) is not None

    def subscriptions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s.record) for s in self._subs.values()]

    # -- queue ---------------------------------------------------------------------------------
    def enqueue(self, change: Change) -> None:
        with self._lock:
            for sub in self._subs.values():
                rec = sub.record
                if rec["event"] != change.event or not rec["isActive"]:
                    continue
                if rec["skipOwn"] and rec["userId"] == change.actor:
                    continue
                sub.queue.append(dict(change.item))

    def pending(self) -> int:
        """Events waiting to be sent (queued or in a batch kept for retry)."""
        with self._lock:
            return sum(
                len(s.queue) + sum(len(b.items) for b in s.retry_batches) for s in self._subs.values()
            )

    def _claim_due(self) -> list[tuple[dict[str, Any], _Batch]]:
        due: list[tuple[dict[str, Any], _Batch]] = []
        with self._lock:
            for sub in self._subs.values():
                for batch in sub.retry_batches:
                    due.append((dict(sub.record), batch))
                sub.retry_batches = []
                while sub.queue:
                    items, sub.queue = sub.queue[: self.batch_size], sub.queue[self.batch_size:]
                    due.append((dict(sub.record), _Batch(items)))
        return due

    def _is_subscribed(self, webhook_id: str) -> bool:
        with self._lock:
            return webhook_id in self._subs

    # -- delivery ------------------------------------------------------------------------------
    async def flush(self) -> list[DeliveryResult]:
        """Send every batch due now; returns one result per POST."""
        due = self._claim_due()
        if not due:
            return []
        results: list[DeliveryResult] = []
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            for record, batch in due:
                if not self._is_subscribed(record["id"]):  # deleted by a 410 earlier in this flush
                    continue
                results.append(await self._deliver(client, record, batch))
        return results

    async def _deliver(
        self, client: httpx.AsyncClient, record: dict[str, Any], batch: _Batch
    ) -> DeliveryResult:
        body = php_json_encode(batch.items)
        headers = {
            "Content-Type": "application/json",
            "Signature": signature_header(record["id"], record["secretKey"], body),
            "X-Signature": legacy_signature_header(record["id"], record["secretKey"], body),
        }
        batch.attempts += 1
        status: int | None = None
        error: str | None = None
        try:
            resp = await client.post(record["url"], content=body, headers=headers)
            status = resp.status_code
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.TransportError as exc:
            error = f"connection error: {type(exc).__name__}"
        verdict = classify_answer(status)
        outcome = {"done": "done", "drop": "dropped", "delete": "webhook_deleted"}.get(verdict, "retry")
        if verdict == "retry":
            if batch.attempts >= MAX_ATTEMPTS:
                outcome = "dropped"
            else:
                with self._lock:
                    sub = self._subs.get(record["id"])
                    if sub is not None:
                        sub.retry_batches.append(batch)
                    else:
                        outcome = "dropped"
        elif verdict == "delete":
            self.remove(record["id"])
        return DeliveryResult(
            webhook_id=record["id"], event=record["event"], url=record["url"], status=status,
            outcome=outcome, attempt=batch.attempts, item_count=len(batch.items), error=error,
        )

    # -- background job ------------------------------------------------------------------------
    def start_job(self, interval_s: float) -> None:
        """Flush every ``interval_s`` seconds from a daemon thread with its own event loop."""
        if self._job is not None and self._job.is_alive():
            return
        self._job_stop.clear()

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                while not self._job_stop.wait(interval_s):
                    try:
                        loop.run_until_complete(self.flush())
                    except Exception:  # noqa: BLE001 - the job must survive a bad delivery
                        continue
            finally:
                loop.close()

        self._job = threading.Thread(target=run, name="espocrm-webhook-job", daemon=True)
        self._job.start()

    def stop_job(self, timeout: float = 15.0) -> None:
        self._job_stop.set()
        if self._job is not None:
            self._job.join(timeout)
            self._job = None
