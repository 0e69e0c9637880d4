"""Log lines that cannot be forged or turned against the reader's terminal.

A value in a log line (a record's name in an error, a field of an API answer) may hold a newline, which
would start a new, forged line (``… CRITICAL stephost.host FORGED: …``), or an escape sequence that sets
the window title or clears the screen of whoever reads the log in a terminal. :func:`escape_controls`
writes every control character as a visible escape instead; :class:`SafeTextFormatter` applies it to the
whole formatted line (message, arguments, traceback), and :class:`JsonFormatter` writes one JSON object
per line for log shippers (JSON escapes control characters by itself).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from enum import StrEnum

# C0 controls except tab, DEL, and the C1 controls (ESC's 8-bit forms such as CSI U+009B); plus the
# Unicode line and paragraph separators, which some viewers break lines at.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class LogFormat(StrEnum):
    """``LOG_FORMAT``: ``text`` (one line per event, for people) or ``json`` (one object per line)."""

    TEXT = "text"
    JSON = "json"


def escape_controls(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``, ``\\x07``…)."""
    return _CONTROLS.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


class SafeTextFormatter(logging.Formatter):
    """The usual text line, with control characters escaped: one event is always one line."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt is LogFormat.JSON else SafeTextFormatter(TEXT_FORMAT)
