"""``beteiligte-sync match --create-new ESPO_ID …``: a person decided the record is a party Advoware
does not have yet (issue 11).

Per record: its current candidates are looked up as its create would look them up
(:meth:`sync.create_match.CreateMatcher.candidates`: strong ones, else possible duplicates), each is
declined for the record (:mod:`adapters.match_declines`), the failure that held it is forgotten (so
the next sync check picks it up even if the queued event were lost), and its sync is queued. The
create then goes ahead unless a new candidate appeared meanwhile (then it fails naming that one).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from adapters.api_ids import check_id
from adapters.errors import ApiError, NotFoundError, ValidationError
from domain.beteiligte_mapper import MappingError, espo_to_canonical
from domain.sync_status import ENTITY
from sync.sync_log import log_record

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI
    from sync.create_match import CreateMatcher

TOPIC = "vmh.beteiligte.sync_check"
TRIGGER = "match_create_new"
Emit = Callable[[str, dict[str, Any]], Awaitable[Any]]


async def create_new(espo: EspoCRMAPI, matcher: CreateMatcher, emit: Emit, espo_id: str) -> tuple[bool, str]:
    """``(ok, one line)`` for one record."""
    try:
        check_id(espo_id, "espo id")
        record = await espo.get(ENTITY, espo_id)
        if record.get("betnr"):
            return False, f"{espo_id}: not changed: linked to betnr {record['betnr']} already (nothing to create)"
        found = await matcher.candidates(espo_id, espo_to_canonical(record))
    except ValidationError as exc:
        return False, f"{espo_id}: not changed: {exc.message}"
    except NotFoundError:
        return False, f"{espo_id}: not changed: no such EspoCRM record"
    except (ApiError, MappingError) as exc:
        return False, f"{espo_id}: not changed: {exc}"
    betnrs = found.betnrs() if found is not None else set()
    await matcher.declines.add(espo_id, betnrs)
    await matcher.store.clear_retry(espo_id)
    log_record(logging.INFO, "a person decided: another party, create it", espo_id=espo_id, betnr=None,
               decision="create_new", declined=sorted(betnrs))
    what = f"declined betNr {', '.join(str(b) for b in sorted(betnrs))}" if betnrs else "no candidate left"
    try:
        await emit(TOPIC, {"id": espo_id, "reason": "match --create-new", "trigger": TRIGGER})
    except Exception as exc:  # noqa: BLE001 - the queue full or away: the sync check picks it up
        return True, f"{espo_id}: {what}; not queued ({exc}): the next sync check creates it"
    return True, f"{espo_id}: {what}; sync queued: serve creates it in Advoware as a new Beteiligter"
