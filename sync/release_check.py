"""After a release that wrote values to EspoCRM: did it overwrite a person's save? (issue 17 item 6)

EspoCRM's optimistic concurrency is a check in PHP followed by a save without a condition (and off by
default): a person saving a field in the instant between our last read (or EspoCRM's version check)
and our release write loses that save to ours, and EspoCRM answers ``200`` to both. The answer to our
write shows only our value. What shows the person's is the record's stream: for an audited field,
every save writes an ``Update`` note (who, ``was``, ``became``). Our release's own note says what the
field held right before our write; when that is not the value we decided on, someone saved it in
between, and ``was`` is their value.

Per field our release wrote, the newest stream note touching it must be our own with ``became`` = the
value we wrote (else a later save is newest and nothing was lost, or the note is not this release's:
nothing is concluded). Cost: one ``GET <Entity>/<id>/stream`` per release that wrote values to EspoCRM
and touched an audited field; nothing otherwise. Without audited fields nothing can be found here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.errors import ApiError, StaleWriteError
from domain.beteiligte_mapper import Canonical, MappingError, espo_to_canonical
from domain.sync_status import ENTITY

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI
    from adapters.sync_state_store import SyncStateStore
    from sync.espocrm_facts import EspoFacts

STREAM_PAGE = 20  # EspoCRM's default page: our release's note is among the newest
UPDATE_NOTE = "Update"


@dataclass(frozen=True)
class Overwritten:
    """A person's saves our release overwrote: EspoCRM attribute -> the person's value."""

    values: dict[str, Any]
    at: str | None  # when our overwriting write was stamped (the person saved just before)


def _canon(field: str, value: Any) -> Any:
    try:
        return espo_to_canonical({"lastName": "-", field: value})[field]
    except MappingError:
        return ("raw", value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _data(note: dict[str, Any]) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    data = _dict(note.get("data"))
    fields = data.get("fields")
    attrs = _dict(data.get("attributes"))
    return ([str(f) for f in fields] if isinstance(fields, list) else []), _dict(attrs.get("was")), \
        _dict(attrs.get("became"))


async def overwritten_saves(espo: EspoCRMAPI, facts: EspoFacts, espo_id: str, decided: Canonical,
                            written: dict[str, Any]) -> Overwritten | None:
    """The persons' values our release write (``written``: EspoCRM attribute -> value sent) replaced,
    although the decision was taken on ``decided``; ``None`` when none (or none can be known)."""
    fields = sorted(facts.audited & written.keys())
    if not fields or facts.user_id is None:
        return None
    notes = [n for n in await espo.stream(ENTITY, espo_id, max_size=STREAM_PAGE) if n.get("type") == UPDATE_NOTE]
    lost: dict[str, Any] = {}
    at = None
    for field in fields:
        top = next((n for n in notes if field in _data(n)[0]), None)
        if top is None or top.get("createdById") != facts.user_id:
            continue  # a later save is the newest: nothing of it was overwritten by us
        _, was, became = _data(top)
        if field not in was or _canon(field, became.get(field)) != _canon(field, written[field]):
            continue  # not this release's note
        if _canon(field, was[field]) != decided.get(field):
            lost[field] = was[field]
            at = str(top.get("createdAt")) if top.get("createdAt") else at
    return Overwritten(lost, at) if lost else None


async def restore_saves(espo: EspoCRMAPI, store: SyncStateStore, espo_id: str, found: Overwritten,
                        ours: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Put the persons' values back where they saved them (the next pass decides the conflict with
    Advoware's values by the group's strategy); the record after it. A save meanwhile (``409``) is
    newer still: the next pass reads it. Any other failure posts a Note naming both values, then
    raises (the record fails, visibly)."""
    if found.at:
        await store.save_espo_edited_at(espo_id, found.at)  # the person's edit time, for newest_wins
    try:
        return await espo.update(ENTITY, espo_id, found.values, version_number=answer.get("versionNumber"))
    except StaleWriteError:
        return answer
    except ApiError:
        lines = [f"- **{f}**: gespeichert `{v}`, vom Abgleich überschrieben mit `{ours.get(f)}`"
                 for f, v in found.values.items()]
        text = ("Eine Änderung wurde im selben Moment gespeichert, in dem der Abgleich Werte aus Advoware "
                "schrieb, und überschrieben. Bitte prüfen:\n" + "\n".join(lines))
        await espo.post_note(ENTITY, espo_id, text)
        raise
