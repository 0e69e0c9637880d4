"""The CLI's rich console: what it prints comes from the systems, so it is text, never commands.

A record's name may hold markup (``Schmidt [/b]``) or terminal escape sequences (``ESC]0;`` sets the
window title, ``ESC[2J`` clears the screen): markup is off, and every control character of a printed
string or table cell is written as a visible escape (``\\x1b``) before rich styles it. Rich's own
styles still reach a terminal. Not on a terminal (a pipe, a file, a log), tables take the width they
need instead of shrinking to 80 columns.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

# Every control character but the newline (a printed line may hold several lines of ours).
_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
PIPE_WIDTH = 4096  # columns when stdout is not a terminal: wide enough that no row is wrapped


def printable(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeConsole(Console):
    """A rich Console that escapes control characters in every string it renders (text and cells)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)


def console(*, stderr: bool = False) -> SafeConsole:
    """stdout (or stderr): the full width when not a terminal and COLUMNS is unset; no markup."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and not os.environ.get("COLUMNS")
    return SafeConsole(width=PIPE_WIDTH if wide else None, highlight=False, markup=False, stderr=stderr)
