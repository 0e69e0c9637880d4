"""Hostile: the echo skip (``BeteiligteSync._proved_in_sync``) against changes that are real.

The skip compares a webhook item's fingerprints with the link's EspoCRM fingerprints. The link is
the base of the LAST sync: while a sync runs, it still holds the old values, so a person's edit that
sets a field back to the old value looks "already synced".
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from domain.decision import item_fingerprints
from domain.sync_status import Action
from simulators.faults import FaultRule
from tests.conftest import SAMPLE, synced_record
from tests.testbed import Testbed
from tests.waiting import until


@pytest.fixture
def bed(fast_tb: Testbed) -> Testbed:
    """The shared installation of conftest: EspoCRM 8.1.5 without OCC and 9.x with it."""
    return fast_tb


async def test_hostile_revert_during_the_release_window_reaches_advoware(bed: Testbed):
    rec = await synced_record(bed)
    espo_id = rec["id"]
    bed.espo.user_edit(espo_id, addressCity="Potsdam")
    # the release PUT (PUT #2 after the mark) is applied at once, its answer takes 1 s to arrive
    served = threading.Event()
    bed.espo.faults.add(FaultRule(method="PUT", path=r"/CBeteiligte/", skip=1, times=1, delay=1.0,
                                  lose_answer=True, before=served.set))
    holder = asyncio.create_task(bed.services.sync.sync(espo_id, "webhook_update"))
    assert await asyncio.to_thread(served.wait, 10)
    await until(lambda: bed.espo_record(espo_id)["syncStatus"] == "clean", "the release to be applied")
    assert bed.espo_record(espo_id)["addressCity"] == "Potsdam"
    bed.espo.user_edit(espo_id, addressCity=SAMPLE["addressCity"])  # the person changes it back
    seen = item_fingerprints({"addressCity": SAMPLE["addressCity"], "id": espo_id})
    newcomer = await bed.services.sync.sync(espo_id, "webhook_update", seen)
    first = await holder
    espo = bed.espo_record(espo_id)
    advo = bed.advo_record(rec["betnr"])
    assert (espo["addressCity"], advo["ort"]) == ("Berlin", "Berlin"), (
        f"EspoCRM {espo['addressCity']!r} ({espo['syncStatus']}) vs Advoware {advo['ort']!r}; "
        f"holder {first.describe()}, webhook {newcomer.describe()}")


async def test_hostile_a_webhook_during_the_release_window_goes_to_the_holder(bed: Testbed):
    """Fixed: the webhook meets the held lease instead of the old base, and the holder runs once more."""
    rec = await synced_record(bed)
    espo_id = rec["id"]
    bed.espo.user_edit(espo_id, addressCity="Potsdam")
    served = threading.Event()
    bed.espo.faults.add(FaultRule(method="PUT", path=r"/CBeteiligte/", skip=1, times=1, delay=1.0,
                                  lose_answer=True, before=served.set))
    holder = asyncio.create_task(bed.services.sync.sync(espo_id, "webhook_update"))
    assert await asyncio.to_thread(served.wait, 10)
    await until(lambda: bed.espo_record(espo_id)["syncStatus"] == "clean", "the release to be applied")
    bed.espo.user_edit(espo_id, addressCity=SAMPLE["addressCity"])
    seen = item_fingerprints({"addressCity": SAMPLE["addressCity"], "id": espo_id})
    newcomer = await bed.services.sync.sync(espo_id, "webhook_update", seen)
    await holder
    assert newcomer.action == Action.COVERED_BY_HOLDER
    assert bed.advo_record(rec["betnr"])["ort"] == "Berlin"  # without a sync check
