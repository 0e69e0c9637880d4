"""What a sync check found: the records to sync, the lost deletes, and whether the guard held."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.decision import Decision


@dataclass
class WorkItem:
    espo_id: str
    betnr: int | None
    reason: str
    decision: Decision | None = None  # what a sync would do, as far as the list data tells
    empties: bool = False  # it would empty a mapped field that holds a value on the other side


@dataclass
class CheckPlan:
    work: list[WorkItem] = field(default_factory=list)
    deletes: list[WorkItem] = field(default_factory=list)
    scanned: int = 0
    linked: int = 0
    advoware_source: str = "list"
    held: str | None = None  # mass-change guard: why the check stopped

    def risky(self) -> list[WorkItem]:
        out = list(self.deletes)
        out.extend(w for w in self.work if _is_risky(w))
        return out

    def safe_work(self) -> list[WorkItem]:
        """The work the mass-change guard never holds: ordinary edits, creates, retries."""
        return [w for w in self.work if not _is_risky(w)]


def _is_risky(w: WorkItem) -> bool:
    d = w.decision
    return d is not None and (d.action == "advoware_missing" or w.empties)
