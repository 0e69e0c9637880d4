"""EspoCRM simulator: outgoing webhooks (spec §1.2) — subscriptions, queues, delivery.

Like EspoCRM's ``Webhook\\Queue``: a change is queued as one *event* when an active webhook for its
event type exists. One job run (:meth:`WebhookDispatcher.run`) first moves at most ``portion_size``
events (20, ``webhookQueueEventPortionSize``) to the matching subscriptions (``skipOwn`` drops the
owner's own changes here), then sends, per subscription, its failed batches (due again on the very
next run; EspoCRM waits 10 minutes) and one new batch of up to ``batch_size`` (50) items. The
receiver's answer decides per the spec's table.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulators.espocrm.fields import ENTITY
from simulators.espocrm.profiles import BATCH_SIZE, EVENT_PORTION_SIZE, Behaviour
from simulators.espocrm.records import Change
from simulators.espocrm.signing import (
    Verdict,
    classify_answer,
    delivery_headers,
    legacy_signature_header,
    php_json_encode,
    signature_header,
)

__all__ = ["WEBHOOK_EVENTS", "DeliveryResult", "WebhookDispatcher", "legacy_signature_header",
           "php_json_encode", "signature_header"]

WEBHOOK_EVENTS = (f"{ENTITY}.create", f"{ENTITY}.update", f"{ENTITY}.delete")
MAX_ATTEMPTS = 4
SKIP_OWN = "skipOwn"
_OUTCOMES = {Verdict.DONE: "done", Verdict.DROP: "dropped", Verdict.DELETE: "webhook_deleted",
             Verdict.RETRY: "retry"}


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
    not_before: float = 0.0  # time.monotonic(): a batch kept for retry waits until then


@dataclass
class _Event:
    seq: int
    change: Change


@dataclass
class _Subscription:
    record: dict[str, Any]
    skip_own: bool
    queue: list[dict[str, Any]] = field(default_factory=list)
    retry_batches: list[_Batch] = field(default_factory=list)

    def wants(self, change: Change) -> bool:
        rec = self.record
        if rec["event"] != change.event or not rec["isActive"]:
            return False
        return not (self.skip_own and rec["userId"] == change.actor)


class WebhookDispatcher:
    def __init__(
        self,
        *,
        new_id: Callable[[], str],
        new_secret: Callable[[], str],
        now: Callable[[], str],
        behaviour: Callable[[], Behaviour],
        batch_size: int = BATCH_SIZE,
        portion_size: int = EVENT_PORTION_SIZE,
        timeout_s: float = 10.0,
    ) -> None:
        self._new_id, self._new_secret, self._now = new_id, new_secret, now
        self._behaviour = behaviour
        self.batch_size = batch_size
        self.portion_size = portion_size
        self.timeout_s = timeout_s
        # A batch kept for retry is sent again by the first job run after this many seconds (EspoCRM:
        # 600, "every 10 min"); 0 = the next job run.
        self.retry_delay_s = 0.0
        self._subs: dict[str, _Subscription] = {}
        self._events: list[_Event] = []
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._job_stop = threading.Event()

    # -- subscriptions -------------------------------------------------------------------------
    def register(self, event: str, url: str, skip_own: bool, owner_id: str) -> dict[str, Any]:
        """Without ``skipOwn`` support (8.x) the option is dropped: not stored, never applied."""
        now = self._now()
        supported = self._behaviour().supports_skip_own
        record: dict[str, Any] = {"id": self._new_id(), "event": event, "url": url}
        if supported:
            record[SKIP_OWN] = skip_own
        record.update(isActive=True, secretKey=self._new_secret(), userId=owner_id, createdAt=now,
                      modifiedAt=now)
        with self._lock:
            self._subs[record["id"]] = _Subscription(record, skip_own and supported)
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
            if any(s.record["event"] == change.event and s.record["isActive"] for s in self._subs.values()):
                self._last_seq = next(self._seq)
                self._events.append(_Event(self._last_seq, change))

    def mark(self) -> int:
        """Sequence number of the newest queued event (for "send what is queued now")."""
        with self._lock:
            return self._last_seq

    def pending(self) -> int:
        """Items waiting to be sent: per subscription, queued or in a batch kept for retry."""
        with self._lock:
            queued = sum(1 for e in self._events for s in self._subs.values() if s.wants(e.change))
            return queued + sum(
                len(s.queue) + sum(len(b.items) for b in s.retry_batches) for s in self._subs.values()
            )

    def waiting(self, up_to: int) -> int:
        """Events up to ``up_to`` not yet moved, plus moved items not yet sent (retries excluded)."""
        with self._lock:
            return sum(1 for e in self._events if e.seq <= up_to) + sum(len(s.queue) for s in self._subs.values())

    def _move_events(self, limit: int | None, up_to: int | None) -> None:
        moving = [e for e in self._events if up_to is None or e.seq <= up_to][:limit]
        moved = {e.seq for e in moving}
        self._events = [e for e in self._events if e.seq not in moved]
        for event in moving:
            for sub in self._subs.values():
                if sub.wants(event.change):
                    sub.queue.append(dict(event.change.item))

    def _claim(self, *, one_run: bool, up_to: int | None = None) -> list[tuple[dict[str, Any], _Batch]]:
        """Batches to send: one job run's worth, or (``one_run=False``) everything queued."""
        due: list[tuple[dict[str, Any], _Batch]] = []
        with self._lock:
            self._move_events(self.portion_size if one_run else None, up_to)
            now = time.monotonic()
            for sub in self._subs.values():
                waiting: list[_Batch] = []
                for batch in sub.retry_batches:
                    if one_run and batch.not_before > now:
                        waiting.append(batch)
                    else:
                        due.append((dict(sub.record), batch))
                sub.retry_batches = waiting
                while sub.queue:
                    items, sub.queue = sub.queue[: self.batch_size], sub.queue[self.batch_size:]
                    due.append((dict(sub.record), _Batch(items)))
                    if one_run:
                        break
        return due

    def take_all(self) -> list[tuple[dict[str, Any], _Batch]]:
        """Everything queued and due, at once, ignoring the portion size (for tests that deliver)."""
        return self._claim(one_run=False)

    def _is_subscribed(self, webhook_id: str) -> bool:
        with self._lock:
            return webhook_id in self._subs

    # -- delivery ------------------------------------------------------------------------------
    async def run(self, *, up_to: int | None = None) -> list[DeliveryResult]:
        """One job run; ``up_to`` leaves events queued after that mark for a later run."""
        due = self._claim(one_run=True, up_to=up_to)
        if not due:
            return []
        results: list[DeliveryResult] = []
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            for record, batch in due:
                if not self._is_subscribed(record["id"]):  # deleted by a 410 earlier in this run
                    continue
                results.append(await self._deliver(client, record, batch))
        return results

    async def run_until_sent(self) -> list[DeliveryResult]:
        """Job runs until every event queued before the call is sent (later ones wait)."""
        mark = self.mark()
        results: list[DeliveryResult] = []
        while self.waiting(mark):
            results.extend(await self.run(up_to=mark))
        return results

    async def _deliver(self, client: httpx.AsyncClient, record: dict[str, Any], batch: _Batch) -> DeliveryResult:
        body = php_json_encode(batch.items)
        headers = delivery_headers(record["id"], record["secretKey"], body,
                                   with_signature=self._behaviour().sends_signature_header)
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
        outcome = _OUTCOMES[verdict]
        if verdict == Verdict.RETRY and not self._keep_for_retry(record["id"], batch):
            outcome = _OUTCOMES[Verdict.DROP]
        elif verdict == Verdict.DELETE:
            self.remove(record["id"])
        return DeliveryResult(
            webhook_id=record["id"], event=record["event"], url=record["url"], status=status,
            outcome=outcome, attempt=batch.attempts, item_count=len(batch.items), error=error,
        )

    def _keep_for_retry(self, webhook_id: str, batch: _Batch) -> bool:
        if batch.attempts >= MAX_ATTEMPTS:
            return False
        with self._lock:
            sub = self._subs.get(webhook_id)
            if sub is None:
                return False
            batch.not_before = time.monotonic() + self.retry_delay_s
            sub.retry_batches.append(batch)
            return True

    # -- background job ------------------------------------------------------------------------
    def start_job(self, interval_s: float) -> None:
        """One job run every ``interval_s`` seconds from a daemon thread with its own event loop."""
        if self._job is not None and self._job.is_alive():
            return
        self._job_stop.clear()

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                while not self._job_stop.wait(interval_s):
                    try:
                        loop.run_until_complete(self.run())
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
