"""Creating a Beteiligter in Advoware exactly once, although Advoware has no idempotency key.

The attempt is noted in Redis BEFORE the ``POST``, with the fingerprint of the values it sends: if its
answer is lost (timeout, 5xx after the commit, the process killed), the next attempt looks for a
Beteiligter changed since then with exactly the values any attempt sent and adopts it instead of
creating a second one; when a person changed the EspoCRM record in between, the adopted Beteiligter
is brought to the new values with a ``PUT``. The link is stored as soon as the ``betNr`` is
known, so a lost EspoCRM release write never leads to a second create either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.create_claims import CreateClaims
from adapters.errors import OutcomeUnknownError, RetryableError
from adapters.match_index import IndexState
from adapters.sync_state_store import CreateAttempt, Link, SyncStateStore
from domain.beteiligte_mapper import Canonical, advoware_to_canonical, canonical_to_advoware
from domain.decision import fingerprint
from domain.match_keys import strong_keys, weak_keys
from domain.match_party import party_from_espo
from sync.create_match import CreateMatcher, OnCreateMatch
from sync.metrics import SyncMetrics
from sync.sync_log import log_record

if TYPE_CHECKING:
    from adapters.advoware_api import AdvowareAPI
    from adapters.espocrm_api import EspoCRMAPI

ADOPT_WINDOW = timedelta(hours=24)


class AdvowareCreator:
    def __init__(self, advo: AdvowareAPI, store: SyncStateStore, metrics: SyncMetrics, *,
                 clock: Callable[[], float], on_match: OnCreateMatch = OnCreateMatch.LINK,
                 espo: EspoCRMAPI | None = None) -> None:
        self.advo = advo
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.matcher = CreateMatcher(advo, store, clock=clock, mode=on_match, espo=espo)
        self.claims = CreateClaims(store.redis, store.prefix)

    @property
    def on_match(self) -> OnCreateMatch:
        return self.matcher.mode

    @on_match.setter
    def on_match(self, mode: OnCreateMatch) -> None:
        self.matcher.mode = OnCreateMatch(mode)

    async def create(self, espo_id: str, espo_vals: Canonical) -> dict[str, Any]:
        """The Beteiligter created (or adopted) for these EspoCRM values; its link is saved before
        this returns."""
        body = canonical_to_advoware(espo_vals)
        want = fingerprint(advoware_to_canonical(body))
        # Both read once (we hold the record's lease), at the same time: one round trip's wait.
        attempt, state = await asyncio.gather(self.store.create_attempt(espo_id), self.matcher.index.state())
        obj = await self._adopt_lost_create(espo_id, want, attempt)
        if obj is None:
            obj = await self._create_claimed(espo_id, espo_vals, body, want, attempt, state)
        elif fingerprint(advoware_to_canonical(obj)) != want:
            # adopted with the values of an earlier attempt; a person changed the record since
            await self.store.mark_create_attempt(espo_id, self._now(), want, attempt)
            obj = await self.advo.update_beteiligter(int(obj["betNr"]), canonical_to_advoware(espo_vals, obj))
            self.metrics.writes.labels("advoware").inc()
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
            obj = await self._post(body)
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
        return obj

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _adopt_lost_create(self, espo_id: str, want: dict[str, str],
                                 attempt: CreateAttempt | None) -> dict[str, Any] | None:
        """The Beteiligter an earlier attempt created, found by the values that attempt sent (or the
        ones this attempt would send), changed in Advoware since the first attempt started."""
        if attempt is None or not await self.advo.supports_list():
            return None  # without the list endpoint it cannot be found: the create is repeated
        sent = [want, *attempt.sent]
        # A wide window: our clock and Advoware's are never compared closely (this path is rare).
        async for obj in self.advo.iter_beteiligte(geaendert_seit=attempt.at - ADOPT_WINDOW):
            if fingerprint(advoware_to_canonical(obj)) not in sent:
                continue
            owner = await self.store.betnr_owner(int(obj["betNr"]))
            if owner is None or owner == espo_id:  # never another record's twin
                log_record(logging.WARNING, "adopting the Beteiligter of a create whose answer was lost",
                           espo_id=espo_id, betnr=obj.get("betNr"), decision="adopt_lost_create")
                return obj
        return None
