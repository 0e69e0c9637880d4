"""The names the sync writes and reports: statuses on the record and the actions taken."""

from __future__ import annotations

from enum import StrEnum

ENTITY = "CBeteiligte"
# The last name of ``beteiligte-sync doctor``'s throwaway record: the sync never creates it in Advoware.
TEST_RECORD_LAST_NAME = "beteiligte-sync doctor – bitte ignorieren"


class SyncStatus(StrEnum):
    """``syncStatus`` on CBeteiligte (service contract)."""

    PENDING = "pending_sync"
    SYNCING = "syncing"
    CLEAN = "clean"
    FAILED = "failed"
    PERMANENTLY_FAILED = "permanently_failed"
    DELETED = "deleted"  # not written: the result of a sync of a record gone in EspoCRM
    UNKNOWN = "unknown"  # not written: EspoCRM could not be read


class Action(StrEnum):
    """What a sync did (``decision=`` in log lines, ``action`` label of the metrics)."""

    CREATE = "create"
    UPDATE = "update"
    NOOP = "noop"
    ADVOWARE_MISSING = "advoware_missing"
    SKIP_DELETED = "skip_deleted"
    SKIP_IN_SYNC = "skip_in_sync"  # a webhook whose values the stored state proves synced
    SKIP_FAILED_UNCHANGED = "skip_failed_unchanged"  # a webhook of a record whose failure waits for a change
    SKIP_TEST_RECORD = "skip_test_record"  # doctor's throwaway record: never created in Advoware
    COVERED_BY_HOLDER = "covered_by_lock_holder"  # the lease holder runs once more for this change
    FAILED = "failed"
    ERROR = "error"
    # deletes (DELETE_POLICY)
    UNLINKED = "unlinked"
    DELETED_IN_ADVOWARE = "deleted_in_advoware"
    DELETE_FAILED = "delete_failed"
    DELETE_NO_LINK = "delete_no_link"
    DELETE_FOUND_LOST_CREATE = "delete_found_lost_create"  # a create whose answer was lost made its twin
    DELETE_LOST_CREATE_UNKNOWN = "delete_lost_create_unknown"  # it may have: no list endpoint to look with
    DELETE_LOST_CREATE_KEPT = "delete_lost_create_kept"  # one with its identity, edited: maybe typed in by hand
    DELETE_IGNORED_RECORD_EXISTS = "delete_ignored_record_exists"


class DeletePolicy(StrEnum):
    """``DELETE_POLICY``: what a record deleted in EspoCRM means for its Advoware twin."""

    UNLINK = "unlink"  # keep the twin, forget the link
    DELETE = "delete"  # delete the twin too (a referenced one is kept and reported)
