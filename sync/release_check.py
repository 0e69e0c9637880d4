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

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from adapters.errors import ApiError, StaleWriteError
from domain.beteiligte_mapper import Canonical, MappingError, espo_to_canonical
from domain.sync_status import ENTITY
from sync.conflict_note import shown
from sync.metrics import SyncMetrics
from sync.sync_log import log_record

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI
    from adapters.sync_state_store import SyncStateStore
    from sync.espocrm_facts import EspoFacts

class ReleaseOwner(Protocol):
    """What the check needs of the record's sync (:class:`sync.beteiligte_sync.BeteiligteSync`)."""

    espo: EspoCRMAPI
    espo_facts: EspoFacts
    store: SyncStateStore
    metrics: SyncMetrics


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
    raises (the record fails, visibly); each value as EspoCRM holds it (ours: as EspoCRM stored what we
    sent, ``answer``)."""
    if found.at:
        await store.save_espo_edited_at(espo_id, found.at)  # the person's edit time, for newest_wins
    try:
        return await espo.update(ENTITY, espo_id, found.values, version_number=answer.get("versionNumber"))
    except StaleWriteError:
        return answer
    except ApiError:
        lines = [f"- **{f}**: gespeichert {shown(v)}, vom Abgleich überschrieben mit "
                 f"{shown(answer.get(f, ours.get(f)))}" for f, v in found.values.items()]
        text = ("Eine Änderung wurde im selben Moment gespeichert, in dem der Abgleich Werte aus Advoware "
                "schrieb, und überschrieben. Bitte prüfen:\n" + "\n".join(lines))
        await espo.post_note(ENTITY, espo_id, text)
        raise


def unseen_save(facts: EspoFacts, sent_version: Any, answer: dict[str, Any], written: dict[str, Any]) -> list[str]:
    """Fields our release wrote that a save between our read and our write may have changed, unseen:
    with optimistic concurrency the answer's ``versionNumber`` tells that another save landed (more
    than our one step past the version we sent), but only audited fields tell what it changed."""
    version = answer.get("versionNumber")
    if not isinstance(sent_version, int) or not isinstance(version, int) or version <= sent_version + 1:
        return []
    return sorted(written.keys() - facts.audited)


async def report_unseen_save(espo: EspoCRMAPI, espo_id: str, fields: list[str], written: dict[str, Any]) -> None:
    """A Note naming the fields and the values the release wrote, as EspoCRM holds them (``written``: the
    answer to the release): staff check whether a save of theirs was overwritten (issue 17 item 6, where
    the fields are not audited)."""
    lines = [f"- **{f}**: jetzt {shown(written.get(f))} (aus Advoware)" for f in fields]
    text = ("Während der Abgleich Werte aus Advoware schrieb, wurde dieser Datensatz auch anderweitig gespeichert. "
            "Falls dabei eines dieser Felder geändert wurde, ist diese Änderung überschrieben worden; bitte "
            "prüfen (mit \"Audited\" für diese Felder erkennt der Abgleich das selbst):\n" + "\n".join(lines))
    try:
        await espo.post_note(ENTITY, espo_id, text)
    except ApiError:
        return  # the log line and the metric of the caller remain


async def after_release(owner: ReleaseOwner, espo_id: str, sent_version: Any, decided: Canonical,
                        sent: dict[str, Any], answer: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """After a release that wrote ``sent`` to EspoCRM (decided on ``decided``, with ``sent_version``
    when optimistic concurrency is on): the record afterwards, and the fields a person's save had
    that our write overwrote. Those are put back; the caller leaves them a change on both sides in the
    base, so the next pass decides them by the group's strategy and reports the conflict. Where the
    fields are not audited but the version shows another save, a Note asks staff to check."""
    found = await overwritten_saves(owner.espo, owner.espo_facts, espo_id, decided, sent)
    if found is None:
        if unseen := unseen_save(owner.espo_facts, sent_version, answer, sent):
            log_record(logging.WARNING, "a save landed during our release; unaudited fields may be overwritten",
                       espo_id=espo_id, betnr=answer.get("betnr"), decision="release_unseen_save",
                       fields=",".join(unseen))
            owner.metrics.syncs.labels("release_unseen_save", "reported").inc()
            await report_unseen_save(owner.espo, espo_id, unseen, {f: answer.get(f, v) for f, v in sent.items()})
        return answer, set()
    log_record(logging.WARNING, "a person's save was overwritten by our release; put back, decided again",
               espo_id=espo_id, betnr=answer.get("betnr"), decision="release_overwrote_save",
               fields=",".join(sorted(found.values)))
    owner.metrics.syncs.labels("release_overwrote_save", "put_back").inc()
    restored = await restore_saves(owner.espo, owner.store, espo_id, found, sent, answer)
    owner.metrics.writes.labels("espocrm").inc()
    return restored, set(found.values)
