"""The lines ``beteiligte-sync doctor`` prints: one per check, ✓ / ⚠ / ✗, every ⚠ and ✗ with its fix.

Plain text (no colours, no cursor tricks), so it reads the same in a terminal and in a CI log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, with a cost or a risk the line names
    FAIL = "fail"  # syncs will fail or data is at risk: doctor exits non-zero
    SKIP = "skip"  # not checked because a check it needs failed


SYMBOLS = {Status.OK: "✓", Status.WARN: "⚠", Status.FAIL: "✗", Status.SKIP: "–"}
SEVERITY = {Status.OK: 0, Status.SKIP: 1, Status.WARN: 2, Status.FAIL: 3}
FAILED_EXIT_CODE = 1
FIX_PREFIX = "fix: "


@dataclass(frozen=True)
class Line:
    """One check's result. ``fix`` is printed on one indented line; ``details`` (one problem and its
    fix each) on indented lines of their own."""

    status: Status
    check: str
    text: str
    fix: str = ""
    details: tuple[str, ...] = ()

    def render(self) -> list[str]:
        out = [f"{SYMBOLS[self.status]} {self.check}: {self.text}"]
        if self.fix:
            out.append(f"    {FIX_PREFIX}{self.fix}")
        out.extend(f"    {d}" for d in self.details)
        return out


def ok(check: str, text: str) -> Line:
    return Line(Status.OK, check, text)


def warn(check: str, text: str, fix: str = "", details: Iterable[str] = ()) -> Line:
    return Line(Status.WARN, check, text, fix, tuple(details))


def fail(check: str, text: str, fix: str = "", details: Iterable[str] = ()) -> Line:
    return Line(Status.FAIL, check, text, fix, tuple(details))


def skip(check: str, why: str) -> Line:
    return Line(Status.SKIP, check, f"not checked ({why})")


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default=Status.OK)


def exit_code(lines: Iterable[Line]) -> int:
    """1 when any check failed (✗); warnings alone exit 0."""
    return FAILED_EXIT_CODE if any(line.status == Status.FAIL for line in lines) else 0
