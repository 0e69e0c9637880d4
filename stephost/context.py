"""The ``context`` object handed to step handlers (Motia shape): emit, logger, state, trace_id."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from stephost.state import StateStore

Publisher = Callable[[str, Any, str], Awaitable[Any]]
BatchPublisher = Callable[[str, list[Any], str], Awaitable[Any]]

_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|authorization|signature|hmac)", re.I)
_REDACTED = "***"


class TopicNotDeclaredError(ValueError):
    """A step emitted a topic that its ``config["emits"]`` does not list. Nothing was emitted."""

    def __init__(self, step: str, topic: Any, declared: tuple[str, ...]) -> None:
        super().__init__(f"step {step!r} may not emit {topic!r}; declared emits: {list(declared)}")
        self.step = step
        self.topic = topic


def redact(value: Any) -> Any:
    """Copy of ``value`` with values under secret-looking keys replaced by ``***``."""
    if isinstance(value, dict):
        return {
            k: (_REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def format_log_line(step: str, trace_id: str, msg: Any, extra: dict[str, Any] | None) -> str:
    """One line: ``[step=<name> trace=<id>] message {"json": "extra"}``."""
    text = str(msg).replace("\r", "\\r").replace("\n", "\\n")
    line = f"[step={step} trace={trace_id}] {text}"
    if extra:
        line += " " + json.dumps(redact(extra), default=str, ensure_ascii=False, sort_keys=True)
    return line


class StepLogger:
    """``context.logger``: std logging, one structured line per call.

    The record also carries ``step_name``, ``trace_id`` and ``step_fields`` attributes for
    handlers that want structured output.
    """

    def __init__(self, step: str, trace_id: str, logger: logging.Logger | None = None) -> None:
        self._step = step
        self._trace_id = trace_id
        self._logger = logger or logging.getLogger(f"stephost.step.{step}")

    def _log(self, level: int, msg: Any, extra: dict[str, Any] | None, exc_info: bool = False) -> None:
        if not self._logger.isEnabledFor(level):
            return
        fields = {"step_name": self._step, "trace_id": self._trace_id, "step_fields": redact(extra or {})}
        self._logger.log(
            level, format_log_line(self._step, self._trace_id, msg, extra), extra=fields, exc_info=exc_info
        )

    def debug(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.DEBUG, msg, extra)

    def info(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.INFO, msg, extra)

    def warning(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.WARNING, msg, extra)

    warn = warning

    def error(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.ERROR, msg, extra)

    def exception(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log(logging.ERROR, msg, extra, exc_info=True)


def check_emit(step: str, declared: tuple[str, ...], event: Any) -> tuple[str, Any]:
    """Validate an ``emit`` argument; returns ``(topic, data)`` or raises."""
    if not isinstance(event, dict) or not isinstance(event.get("topic"), str):
        raise TypeError('emit expects {"topic": str, "data": ...}')
    topic = event["topic"]
    if topic not in declared:
        raise TopicNotDeclaredError(step, topic, declared)
    return topic, event.get("data")


class StepContext:
    """The real context. ``publish(topic, data, trace_id)`` is the bus's publish."""

    def __init__(
        self,
        *,
        step: str,
        emits: tuple[str, ...],
        trace_id: str,
        state: StateStore,
        publish: Publisher,
        publish_many: BatchPublisher | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.step_name = step
        self.trace_id = trace_id
        self.state = state
        self.logger = StepLogger(step, trace_id, logger)
        self._emits = emits
        self._publish = publish
        self._publish_many = publish_many or self._one_by_one

    async def _one_by_one(self, topic: str, items: list[Any], trace_id: str) -> None:
        for data in items:
            await self._publish(topic, data, trace_id)

    @property
    def traceId(self) -> str:
        """Motia's JS spelling, for steps ported from TypeScript."""
        return self.trace_id

    async def emit(self, event: dict[str, Any]) -> None:
        topic, data = check_emit(self.step_name, self._emits, event)
        await self._publish(topic, data, self.trace_id)

    async def emit_many(self, topic: str, items: list[Any]) -> None:
        """Host extension (not in Motia): one event per item on ``topic``, queued all or nothing in
        one bus call. Steps that must also run under Motia fall back to ``emit`` per item."""
        checked, _ = check_emit(self.step_name, self._emits, {"topic": topic, "data": None})
        if items:
            await self._publish_many(checked, list(items), self.trace_id)
