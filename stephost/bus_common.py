"""Pieces shared by the event buses: errors, the delivery record, backoff and dead-lettering."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stephost.discovery import Step
from stephost.state import DeadLetterStore, dead_letter_record

log = logging.getLogger("stephost.bus")

# Runs one event step's handler for one delivery: (step, data, trace_id) -> None, raises on failure.
DeliveryRunner = Callable[[Step, Any, str], Awaitable[None]]


class QueueFullError(RuntimeError):
    """The bus cannot take the events now (bounded queue full, or bus stopped). Nothing was queued.

    Steps import nothing from the host, so they can recognise it by ``http_status == 503``."""

    http_status = 503


class EventBus(Protocol):
    async def start(self) -> None: ...
    async def stop(self, grace: float = 10.0) -> None: ...
    async def publish(self, topic: str, data: Any, trace_id: str) -> int: ...
    async def publish_many(self, topic: str, items: list[Any], trace_id: str) -> int: ...
    async def drain(self, timeout: float | None = None) -> bool: ...  # noqa: ASYNC109 - the contract's drain(timeout)
    def depth(self) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def workers_healthy(self) -> bool: ...
    def worker_status(self) -> dict[str, dict[str, Any]]: ...
    def overdue(self) -> list[dict[str, Any]]: ...  # entries in flight past their bound (the watchdog)


@dataclass
class Delivery:
    """One event for one subscribing step. ``attempt`` counts handler calls made so far."""

    topic: str
    step: str
    data: Any
    trace_id: str
    attempt: int = 0


@dataclass
class BusCounters:
    published: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "published": self.published,
            "delivered": self.delivered,
            "failed_attempts": self.failed_attempts,
            "dead_lettered": self.dead_lettered,
            **self.extra,
        }


def backoff_delay(attempt: int, base: float, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter after the ``attempt``-th failure (1-based):
    ``min(maximum, base * 2**(attempt-1) + uniform(0, base))``."""
    rng = rng or random.Random()
    exp = base * (2 ** max(0, attempt - 1))
    return max(0.0, min(maximum, exp + rng.uniform(0, base)))


def retry_delay(
    delivery: Delivery, error: str, cfg: Any, rng: random.Random | None, exc: BaseException | None = None
) -> float | None:
    """The backoff before the next attempt (logged), or ``None`` when the attempts are used up and
    the delivery becomes a dead letter. ``cfg`` is the host's ``QueueConfig``."""
    if delivery.attempt >= cfg.max_attempts:
        return None
    delay = backoff_delay(delivery.attempt, cfg.backoff_base_seconds, cfg.backoff_max_seconds, rng)
    log.warning(
        "[step=%s trace=%s] handler failed (attempt %d/%d), retrying in %.2fs: %s",
        delivery.step, delivery.trace_id, delivery.attempt, cfg.max_attempts, delay, error, exc_info=exc,
    )
    return delay


def subscribers_by_topic(steps: list[Step]) -> dict[str, list[Step]]:
    table: dict[str, list[Step]] = {}
    for step in steps:
        if step.type == "event":
            for topic in step.subscribes:
                table.setdefault(topic, []).append(step)
    return table


def copy_data(data: Any) -> Any:
    """Each subscriber gets its own copy; event data must be JSON (as under Motia)."""
    try:
        return json.loads(json.dumps(data))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"event data must be JSON-serialisable: {exc}") from exc


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dead_letter_of(delivery: Delivery, error: str) -> dict[str, Any]:
    return dead_letter_record(topic=delivery.topic, step=delivery.step, data=delivery.data, error=error,
                              attempts=delivery.attempt, trace_id=delivery.trace_id)


async def dead_letter(store: DeadLetterStore, delivery: Delivery, error: str) -> None:
    """Store a dead letter and log it at error level. Never raises: if the store is down, the full
    record goes to the log instead, so the event is never dropped silently."""
    record = _dead_letter_of(delivery, error)
    try:
        await store.add(record)
    except Exception as exc:  # the log line below is then the only copy
        log.error(
            "[trace=%s] dead letter could not be stored (%s); record: %s",
            delivery.trace_id,
            describe_error(exc),
            json.dumps(record, default=str),
        )
    log_dead_letter(delivery, error)


def dead_letter_json(delivery: Delivery, error: str) -> str:
    """The dead-letter record of ``delivery`` as stored in the dead-letter list."""
    record = _dead_letter_of(delivery, error)
    return json.dumps(record, default=str, ensure_ascii=False)


def log_dead_letter(delivery: Delivery, error: str) -> None:
    log.error(
        "[step=%s trace=%s] event %s dead-lettered after %d attempts: %s",
        delivery.step,
        delivery.trace_id,
        delivery.topic,
        delivery.attempt,
        error,
    )
