"""Creating a Beteiligter in Advoware exactly once, although Advoware has no idempotency key.

The attempt is noted in Redis BEFORE the ``POST``, with the fingerprint of the values it sends: if its
answer is lost (timeout, 5xx after the commit, the process killed), the next attempt looks for the
Beteiligter an attempt created and adopts it instead of creating a second one. It is found by what an
edit in between does not change (issue 17 item 3): created (``angelegtAm``) within the attempt's
window, linked to no other record, and either holding exactly the values an attempt sent, or the
identity an attempt sent (name, first name, birth date, legal form, register entry) with other fields
edited since by an Advoware user. An adoption of anything but the values this attempt would send
stores the link with the values that attempt sent as the base and decides again as for a linked
record: an Advoware user's edit reaches EspoCRM, a person's EspoCRM change since reaches Advoware,
both by the groups' strategies. The link is stored as soon as the ``betNr`` is known, so a lost
EspoCRM release write never leads to a second create either.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.create_claims import CreateClaims
from adapters.errors import ForbiddenError, OutcomeUnknownError, RetryableError, StaleWriteError, ValidationError
from adapters.match_index import IndexState
from adapters.sync_state_store import CreateAttempt, Link, SyncStateStore
from config.advoware_profile import PostAnswer
from domain.beteiligte_mapper import Canonical, advoware_to_canonical, canonical_to_advoware
from domain.decision import fingerprint
from domain.match_keys import strong_keys, weak_keys
from domain.match_party import party_from_espo
from domain.timestamps import parse_advoware
from sync.create_match import CreateMatcher, OnCreateMatch
from sync.metrics import SyncMetrics
from sync.sync_log import log_record

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI
    from sync.espocrm_facts import EspoFacts

ADOPT_WINDOW = timedelta(hours=24)
# How far Advoware's clock (``angelegtAm``) may be off ours: a party created this long before the first
# attempt started is never taken for ours (and covers the hour repeated when summer time ends).
CLOCK_SKEW = timedelta(hours=1)
# What an Advoware user's edit of a new party leaves alone: who the party is.
IDENTITY = ("lastName", "firstName", "dateOfBirth", "rechtsform", "handelsregisterNummer", "registergericht")


class AdoptedLostCreate(StaleWriteError):
    """A lost create was adopted with values other than this attempt's: its link (the values that
    attempt sent as the base) is stored; read the record and decide again, as a linked record."""


def _differing(obj_fp: dict[str, str], sent: dict[str, str]) -> int:
    return sum(obj_fp.get(f) != fp for f, fp in sent.items())


def _identity(obj: dict[str, Any]) -> tuple[str, ...]:
    """Who ``obj`` is, in a form Advoware's own spelling of what was sent (case, spaces, Unicode
    normalisation) does not change: a spelling must not read as another party (the create then looked
    for, found by exact values only, would be repeated)."""
    values = advoware_to_canonical(obj)
    return tuple(" ".join(unicodedata.normalize("NFC", str(values.get(f) or "")).split()).casefold()
                 for f in IDENTITY)


class AdvowareCreator:
    def __init__(self, advo: AdvowareAPI, store: SyncStateStore, metrics: SyncMetrics, *,
                 clock: Callable[[], float], on_match: OnCreateMatch = OnCreateMatch.LINK,
                 espo: EspoCRMAPI | None = None, timezone: str = "Europe/Berlin",
                 facts: EspoFacts | None = None) -> None:
        self.advo = advo
        self.timezone = timezone
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.matcher = CreateMatcher(advo, store, clock=clock, mode=on_match, espo=espo, facts=facts)
        self.claims = CreateClaims(store.redis, store.prefix)

    @property
    def on_match(self) -> OnCreateMatch:
        return self.matcher.mode

    @on_match.setter
    def on_match(self, mode: OnCreateMatch) -> None:
        self.matcher.mode = OnCreateMatch(mode)

    async def create(self, espo_id: str, espo_vals: Canonical, source: dict[str, Any] | None = None) -> dict[str, Any]:
        """The Beteiligter created (or adopted) for these EspoCRM values; its link is saved before
        this returns. ``source``: the EspoCRM record (its phone number is sent as it is there)."""
        body = canonical_to_advoware(espo_vals, source=source)
        want = fingerprint(advoware_to_canonical(body))
        # Both read once (we hold the record's lease), at the same time: one round trip's wait.
        attempt, state = await asyncio.gather(self.store.create_attempt(espo_id), self.matcher.index.state())
        adopted = await self._adopt_lost_create(espo_id, want, attempt)
        if adopted is None:
            obj = await self._create_claimed(espo_id, espo_vals, body, want, attempt, state)
        else:
            obj, base = adopted
            if fingerprint(advoware_to_canonical(obj)) != want:  # edited in Advoware, or older values sent
                await self._link_adopted(espo_id, obj, base)
        betnr = int(obj["betNr"])
        values = advoware_to_canonical(obj)
        await self.store.save_link(espo_id, Link(
            betnr=betnr, row_id=obj.get("rowId"), espo=fingerprint(espo_vals),
            advo=fingerprint(values), synced_at=self.clock()), clear_create_attempt=True)
        return obj

    async def _create_claimed(self, espo_id: str, espo_vals: Canonical, body: dict[str, Any],
                              want: dict[str, str], attempt: CreateAttempt | None,
                              state: IndexState) -> dict[str, Any]:
        """Lookup, ``POST`` and indexing under claims on the record's identity, so that a twin created at
        the same moment waits and then finds this one (:mod:`adapters.create_claims`)."""
        state = await self.matcher.ready_index(state)  # a missing index is rebuilt first (issue 17)
        keys: list[str] = []  # claims only where the create looks up (a mode that looks, an index built)
        if self.matcher.mode != OnCreateMatch.CREATE and state.built:
            party = party_from_espo({"id": espo_id, **espo_vals})
            keys = strong_keys(party) + weak_keys(party)
        other = await self.claims.claim(espo_id, keys)
        if other is not None:
            raise RetryableError(f"not created in Advoware yet: EspoCRM record {other} with the same identity is "
                                 "being created right now; tried again shortly (then it is found, not doubled)",
                                 system="advoware")
        keep = False
        try:
            await self.matcher.check(espo_id, espo_vals, state)  # links an existing Beteiligter instead (issue 11)
            await self.store.mark_create_attempt(espo_id, self._now(), want, attempt)
            try:
                obj = await self._post(body)
            except (ValidationError, ForbiddenError):  # refused before it was written: not one that may have landed
                await self.store.refused_create_attempt(espo_id, attempt)
                raise
            await self.matcher.created(obj, state)
            return obj
        except OutcomeUnknownError:
            keep = True  # it may exist without being indexed: twins wait until the claims run out
            raise
        finally:
            if not keep:
                await self.claims.release(espo_id, keys)

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            obj = await self.advo.create_beteiligter(body)
        except RetryableError as exc:  # it may have been applied: never repeated at once
            raise OutcomeUnknownError(f"create in Advoware without an answer ({exc}); looked for before "
                                      "the next attempt", system="advoware", status=exc.status) from exc
        self.metrics.writes.labels("advoware").inc()
        if self.advo.profile.post_answer == PostAnswer.LOCATION:
            if _identity(body) != _identity(obj):  # the Location named another party (or a sub-resource's
                # id): linked, our values would be written over it
                raise OutcomeUnknownError(f"POST Beteiligte answered a Location naming Beteiligter {obj['betNr']}, "
                                          "which is not the one sent (another identity); the one created is looked "
                                          "for before the next attempt", system="advoware")
        return obj

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _link_adopted(self, espo_id: str, obj: dict[str, Any], base: dict[str, str]) -> None:
        """Link an adopted Beteiligter with the values its attempt sent as the base of both sides, and
        have the pass decide again: what changed since on either side is then a change, never lost."""
        await self.store.save_link(espo_id, Link(
            betnr=int(obj["betNr"]), row_id=None, espo=base, advo=base, synced_at=self.clock()),
            clear_create_attempt=True)
        raise AdoptedLostCreate(f"adopted the Beteiligter {obj['betNr']} of a create whose answer was lost; "
                                "changes since on either side are synced now", system="advoware")

    async def _adopt_lost_create(self, espo_id: str, want: dict[str, str],
                                 attempt: CreateAttempt | None) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The Beteiligter an earlier attempt created and the values that attempt sent; ``None`` when
        there is none (or no list endpoint to look with: the create is repeated)."""
        found = None if attempt is None else await self.find_lost_create(espo_id, [want, *attempt.sent], attempt)
        if found is not None:
            obj, base = found
            log_record(logging.WARNING, "adopting the Beteiligter of a create whose answer was lost", espo_id=espo_id,
                       betnr=int(obj["betNr"]), decision="adopt_lost_create",
                       edited_fields=_differing(fingerprint(advoware_to_canonical(obj)), base))
        return found

    async def lost_create_betnr(self, espo_id: str, attempt: CreateAttempt) -> tuple[int, int] | None:
        """The ``betNr`` of the Beteiligter one of the record's create attempts made although its answer
        was lost (the record is being deleted: found as a retry would adopt it) and in how many fields it
        differs from what that attempt sent (not 0: edited since, or a namesake typed in by hand);
        ``None`` when none is found or there is no list endpoint to look with."""
        found = await self.find_lost_create(espo_id, attempt.sent, attempt)
        if found is None:
            return None
        obj, base = found
        return int(obj["betNr"]), _differing(fingerprint(advoware_to_canonical(obj)), base)

    async def find_lost_create(self, espo_id: str, sent: list[dict[str, str]],
                               attempt: CreateAttempt) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The Beteiligter an attempt that sent one of ``sent`` created, linked to no other record, and
        the values it was created with (:meth:`_ours`); the one edited least since wins."""
        if not sent or not await self.advo.supports_list():
            return None
        best: tuple[int, int, dict[str, Any], dict[str, str]] | None = None
        # A wide window for the list read; the creation time then narrows it (``CLOCK_SKEW``).
        async for obj in self.advo.iter_beteiligte(geaendert_seit=attempt.at - ADOPT_WINDOW):
            found = self._ours(obj, sent, attempt)
            if found is None:
                continue
            base, differing = found
            if best is not None and (best[0], best[1]) <= (differing, int(obj["betNr"])):
                continue
            owner = await self.store.betnr_owner(int(obj["betNr"]))
            if owner is None or owner == espo_id:  # never another record's twin
                best = (differing, int(obj["betNr"]), obj, base)
        return None if best is None else (best[2], best[3])

    def _ours(self, obj: dict[str, Any], sent: list[dict[str, str]],
              attempt: CreateAttempt) -> tuple[dict[str, str], int] | None:
        """What an attempt sent that ``obj`` is the result of, and how many fields were edited since:
        created within the attempt's window, exactly the values sent (also when Advoware names no creation
        time) or the identity sent."""
        obj_fp = fingerprint(advoware_to_canonical(obj))
        created = parse_advoware(obj.get("angelegtAm"), self.timezone)
        in_window = created is not None and attempt.at - CLOCK_SKEW <= created <= self._now() + CLOCK_SKEW
        if obj_fp in sent and (in_window or created is None):  # one created before the attempt is not ours,
            return obj_fp, 0  # however alike (it was deleted with the record under DELETE_POLICY=delete)
        if not in_window:
            return None
        same_identity = [s for s in sent if all(obj_fp.get(f) == s.get(f) for f in IDENTITY)]
        if not same_identity:
            return None
        base = min(same_identity, key=lambda s: _differing(obj_fp, s))
        return base, _differing(obj_fp, base)
