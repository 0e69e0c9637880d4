"""Creating a Beteiligter in Advoware exactly once, although Advoware has no idempotency key.

The attempt is noted in Redis BEFORE the ``POST``: if its answer is lost (timeout, 5xx after the
commit), the next attempt looks for a Beteiligter changed since then with exactly the values it would
send and adopts it instead of creating a second one. The link is stored as soon as the ``betNr`` is
known, so a lost EspoCRM release write never leads to a second create either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mappers.beteiligte_mapper import Canonical, advoware_to_canonical, canonical_to_advoware
from services.metrics import SyncMetrics
from services.sync_decision import fingerprint
from services.sync_log import log_record
from services.sync_state_store import Link, SyncStateStore

if TYPE_CHECKING:
    from services.advoware_api import AdvowareAPI


class AdvowareCreator:
    def __init__(self, advo: AdvowareAPI, store: SyncStateStore, metrics: SyncMetrics, *,
                 clock: Callable[[], float]) -> None:
        self.advo = advo
        self.store = store
        self.metrics = metrics
        self.clock = clock

    async def create(self, espo_id: str, espo_vals: Canonical) -> dict[str, Any]:
        """The Beteiligter created (or adopted) for these EspoCRM values; its link is saved before
        this returns."""
        body = canonical_to_advoware(espo_vals)
        obj = await self._adopt_lost_create(espo_id, body)
        if obj is None:
            await self.store.mark_create_attempt(espo_id, datetime.fromtimestamp(self.clock(), UTC))
            obj = await self.advo.create_beteiligter(body)
            self.metrics.writes.labels("advoware").inc()
        betnr = int(obj["betNr"])
        values = advoware_to_canonical(obj)
        await self.store.save_link(espo_id, Link(
            betnr=betnr, row_id=obj.get("rowId"), espo=fingerprint(espo_vals),
            advo=fingerprint(values), synced_at=self.clock()))
        await self.store.clear_create_attempt(espo_id)
        return obj

    async def _adopt_lost_create(self, espo_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        since = await self.store.create_attempt(espo_id)
        if since is None or not await self.advo.supports_list():
            return None  # without the list endpoint it cannot be found: the create is repeated
        want = advoware_to_canonical(body)
        async for obj in self.advo.iter_beteiligte(geaendert_seit=since - timedelta(minutes=1)):
            if advoware_to_canonical(obj) == want:
                log_record(logging.WARNING, "adopting the Beteiligter of a create whose answer was lost",
                           espo_id=espo_id, betnr=obj.get("betNr"), decision="adopt_lost_create")
                return obj
        return None
