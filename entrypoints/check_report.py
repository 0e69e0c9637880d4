"""The exit codes of the ``beteiligte-sync`` commands, and what ``sync-check`` says at its end.

After its queue is worked off, ``sync-check`` reads the status of EVERY record (one paged list, the
same read the check itself starts with), not only of the records it queued: a record that failed
earlier and is waiting for its retry, or for a person, is just as much a reason not to say "all
good". The messages are the records' ``syncErrorMessage`` with any quoted values removed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from adapters.errors import without_personal_data
from domain.sync_status import ENTITY, SyncStatus

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # an unexpected error (Python's own code for an uncaught exception)
    REFUSED = 2  # must not run (store not shared, redis-server missing), or the mass-change guard held
    RECORDS_FAILED = 3  # records are failed or permanently_failed after the command
    TIMED_OUT = 4  # sync-check: events still queued when --timeout ran out


FAILED_STATUSES = (SyncStatus.FAILED, SyncStatus.PERMANENTLY_FAILED)
STATUS_SELECT = ["id", "syncStatus", "syncErrorMessage"]
PAGE_SIZE = 200


@dataclass(frozen=True)
class FailedRecord:
    espo_id: str
    status: str
    message: str


@dataclass
class StatusReport:
    counts: Counter[str]
    failed: list[FailedRecord]

    def lines(self) -> list[str]:
        out = [f"all records by status: {json.dumps(dict(sorted(self.counts.items())))}"]
        if self.failed:
            out.append(f"{len(self.failed)} records failed or permanently failed "
                       f"(exit code {int(ExitCode.RECORDS_FAILED)}):")
            out.extend(f"  {r.espo_id}  {r.status}  {r.message}" for r in self.failed)
        return out


async def status_report(espo: EspoCRMAPI) -> StatusReport:
    """Every record's sync status, and the failed ones with their (scrubbed) messages."""
    counts: Counter[str] = Counter()
    failed: list[FailedRecord] = []
    async for rec in espo.iter_list(ENTITY, select=STATUS_SELECT, page_size=PAGE_SIZE):
        status = str(rec.get("syncStatus"))
        counts[status] += 1
        if status in FAILED_STATUSES:
            message = without_personal_data(str(rec.get("syncErrorMessage") or ""))
            failed.append(FailedRecord(str(rec["id"]), status, message))
    return StatusReport(counts, failed)
