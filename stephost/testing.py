"""Helpers for unit-testing step handlers without a host.

    ctx = RecordingContext(emits=step_module.config["emits"])
    result = await step_module.handler(make_request(body=[{"id": "x"}]), ctx)
    assert ctx.topics() == ["vmh.beteiligte.create"]
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stephost.context import check_emit, format_log_line


class MemoryState:
    """In-memory :class:`stephost.state.StateStore`; values round-trip through JSON like Redis."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, str]] = {}

    async def get(self, group: str, key: str) -> Any:
        raw = self.groups.get(group, {}).get(key)
        return None if raw is None else json.loads(raw)

    async def set(self, group: str, key: str, value: Any) -> Any:
        self.groups.setdefault(group, {})[key] = json.dumps(value)
        return value

    async def delete(self, group: str, key: str) -> Any:
        raw = self.groups.get(group, {}).pop(key, None)
        return None if raw is None else json.loads(raw)

    async def get_group(self, group: str) -> list[Any]:
        return [json.loads(v) for _, v in sorted(self.groups.get(group, {}).items())]

    async def clear(self, group: str) -> None:
        self.groups.pop(group, None)


@dataclass
class LogEntry:
    level: str
    msg: str
    extra: dict[str, Any] = field(default_factory=dict)
    line: str = ""


class RecordingLogger:
    def __init__(self, step: str, trace_id: str) -> None:
        self.entries: list[LogEntry] = []
        self._step = step
        self._trace_id = trace_id

    def _log(self, level: str, msg: Any, extra: dict[str, Any] | None) -> None:
        line = format_log_line(self._step, self._trace_id, msg, extra)
        self.entries.append(LogEntry(level, str(msg), dict(extra or {}), line))

    def debug(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log("debug", msg, extra)

    def info(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log("info", msg, extra)

    def warning(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log("warning", msg, extra)

    warn = warning

    def error(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log("error", msg, extra)

    def exception(self, msg: Any, extra: dict[str, Any] | None = None) -> None:
        self._log("error", msg, extra)


class RecordingContext:
    """Same interface as the host's context; records emits and logs, keeps state in memory.

    With ``emits`` given, undeclared topics raise ``TopicNotDeclaredError`` like the host does.
    """

    def __init__(
        self,
        *,
        emits: Iterable[str] | None = None,
        trace_id: str | None = None,
        step_name: str = "test-step",
        state: MemoryState | None = None,
    ) -> None:
        self.trace_id = trace_id or str(uuid.uuid4())
        self.step_name = step_name
        self.state = state or MemoryState()
        self.logger = RecordingLogger(step_name, self.trace_id)
        self.emitted: list[dict[str, Any]] = []
        self._emits = tuple(emits) if emits is not None else None

    @property
    def traceId(self) -> str:
        """Motia's JS spelling."""
        return self.trace_id

    async def emit(self, event: dict[str, Any]) -> None:
        declared = self._emits if self._emits is not None else (event.get("topic"),)
        topic, data = check_emit(self.step_name, tuple(str(t) for t in declared), event)
        self.emitted.append({"topic": topic, "data": json.loads(json.dumps(data))})

    async def emit_many(self, topic: str, items: list[Any]) -> None:
        for data in items:
            await self.emit({"topic": topic, "data": data})

    def topics(self) -> list[str]:
        return [e["topic"] for e in self.emitted]

    def logs(self, level: str | None = None) -> list[LogEntry]:
        return [e for e in self.logger.entries if level is None or e.level == level]


def make_request(
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
    query_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``req`` dict shaped like the host builds it. ``raw`` defaults to ``body`` as JSON."""
    if raw is None:
        raw = b"" if body is None else json.dumps(body).encode()
    if body is None and raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
    return {
        "body": body,
        "rawBody": raw.decode("utf-8", errors="replace"),
        "rawBytes": raw,
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "pathParams": dict(path_params or {}),
        "queryParams": dict(query_params or {}),
    }
