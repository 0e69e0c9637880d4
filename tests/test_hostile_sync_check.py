"""Hostile: the sync check over records that are in sync, on EspoCRM 8.1.5, must write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulators.espocrm import STOCK_SALUTATIONS
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed


@pytest.fixture(params=[False, True], ids=["8-occ_off", "8-occ_on"])
async def bed(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    tb = await start_testbed(espo_profile="8", occ=request.param, salutation_options=STOCK_SALUTATIONS)
    try:
        yield tb
    finally:
        await tb.close()


async def test_hostile_sync_check_writes_nothing_for_equivalent_values(bed: Testbed):
    """Stock 'Mrs.' (= Frau), a phone number Advoware keeps with blanks and EspoCRM normalises, and an
    Advoware edit of unmapped fields only (rowId moves, mapped values do not): no write, no Note."""
    tb = bed
    ids = []
    for i in range(3):
        rec = tb.espo.seed(**{**SAMPLE, "lastName": f"Müller {i}", "salutationName": "Mrs."})
        ids.append(rec["id"])
    await tb.flush()
    await tb.flush()
    for espo_id in ids:
        betnr = tb.espo_record(espo_id)["betnr"]
        tb.advo.edit(betnr, telefon="+49 (30) 123-4567", kurzname="KURZ")
    tb.espo.user_edit(ids[0], salutationName="Ms.")
    await tb.flush()
    tb.reset_calls()
    for _ in range(3):
        await tb.sync_check()
        await tb.flush()
    assert tb.writes() == 0, tb.calls()
    assert all(not tb.espo.notes_for(i) for i in ids)
    assert all(tb.espo_record(i)["syncStatus"] == "clean" for i in ids)


async def test_hostile_fatal_failure_is_not_requeued_by_every_sync_check(bed: Testbed):
    tb = bed
    rec = tb.espo.seed(**SAMPLE | {"salutationName": "Dr."})  # no Advoware anrede for it: fatal
    await tb.flush()
    assert tb.espo_record(rec["id"])["syncStatus"] == "failed"
    tb.reset_calls()
    for _ in range(3):
        tb.clock.advance(7 * 3600)
        await tb.sync_check()
        await tb.flush()
    assert tb.writes() == 0, tb.calls()
    assert [k for k in tb.calls() if "advonet" in k and "POST" in k] == []


async def test_hostile_mass_change_guard_does_not_hold_unrelated_advoware_changes():
    tb = await start_testbed(espo_profile="8", occ=False)
    try:
        ids = [tb.espo.seed(**{**SAMPLE, "lastName": f"Müller {i}"})["id"] for i in range(10)]
        await tb.flush()
        await tb.flush()
        betnrs = [tb.espo_record(i)["betnr"] for i in ids]
        for b in betnrs[:3]:
            tb.advo.edit(b, email=None)  # three ordinary clean-ups in Advoware
        tb.advo.edit(betnrs[5], vorname="Anneliese")  # an unrelated, ordinary edit
        for _ in range(2):  # two cron runs
            tb.clock.advance(900)
            await tb.sync_check()
        assert tb.espo_record(ids[5])["firstName"] == "Anneliese"
    finally:
        await tb.close()
