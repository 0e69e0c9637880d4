"""What one sync of one record did: the result every use case returns and every log line describes."""

from __future__ import annotations

from dataclasses import dataclass

from domain.decision import Decision
from domain.sync_status import Action, SyncStatus


@dataclass
class SyncResult:
    espo_id: str
    betnr: int | None
    action: Action
    status: SyncStatus
    decision: Decision | None = None
    message: str = ""

    def describe(self) -> str:
        d = self.decision.summary() if self.decision else self.action
        extra = f" - {self.message}" if self.message else ""
        return f"{self.espo_id} betnr={self.betnr} status={self.status} decision={d}{extra}"
