"""Hostile: enum value maps (``salutationName`` <-> ``anrede``) against real-life input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulators.espocrm import STOCK_SALUTATIONS
from simulators.espocrm.fields import GERMAN_SALUTATIONS
from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed


@pytest.fixture
async def stock() -> AsyncIterator[Testbed]:
    fast_tb = await start_fast_testbed(espo_profile="8", occ=False, salutation_options=STOCK_SALUTATIONS)
    try:
        yield fast_tb
    finally:
        await fast_tb.close()


@pytest.fixture
async def german() -> AsyncIterator[Testbed]:
    fast_tb = await start_fast_testbed(espo_profile="8", occ=False)
    try:
        yield fast_tb
    finally:
        await fast_tb.close()


async def test_hostile_admin_switches_salutation_options_while_running(stock: Testbed):
    fast_tb = stock
    rec = fast_tb.espo.seed(**{**SAMPLE, "salutationName": "Mrs."})
    await fast_tb.flush()
    rec = fast_tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean"
    fast_tb.espo.set_salutation_options(GERMAN_SALUTATIONS)  # the admin edits the field in the Entity Manager
    fast_tb.advo.edit(rec["betnr"], anrede="Herr")
    await fast_tb.sync_check()
    after = fast_tb.espo_record(rec["id"])
    assert (after["syncStatus"], after["salutationName"]) == ("clean", "Herr"), after["syncErrorMessage"]


@pytest.mark.parametrize("anrede", ["Frau ", "frau", "FRAU"])
async def test_hostile_advoware_anrede_with_blank_or_case_does_not_block_the_record(german: Testbed,
                                                                                  anrede: str):
    fast_tb = german
    rec = fast_tb.espo.seed(**SAMPLE)
    await fast_tb.flush()
    rec = fast_tb.espo_record(rec["id"])
    fast_tb.advo.edit(rec["betnr"], anrede=anrede)  # typed by hand in Advoware
    fast_tb.espo.user_edit(rec["id"], addressCity="Potsdam")  # an unrelated change
    await fast_tb.flush()
    await fast_tb.sync_check()
    after = fast_tb.espo_record(rec["id"])
    assert fast_tb.advo_record(rec["betnr"])["ort"] == "Potsdam", (after["syncStatus"], after["syncErrorMessage"])


async def test_hostile_mrs_to_ms_in_espocrm_is_no_change_and_writes_nothing(stock: Testbed):
    """Both map to Frau: the edit is skipped and no sync check writes (no ping-pong)."""
    fast_tb = stock
    rec = fast_tb.espo.seed(**{**SAMPLE, "salutationName": "Mrs."})
    await fast_tb.flush()
    await fast_tb.flush()
    rec = fast_tb.espo_record(rec["id"])
    fast_tb.espo.user_edit(rec["id"], salutationName="Ms.")
    fast_tb.reset_calls()
    await fast_tb.flush()
    await fast_tb.sync_check()
    await fast_tb.sync_check()
    assert fast_tb.writes() == 0, fast_tb.calls()
    assert fast_tb.espo_record(rec["id"])["salutationName"] == "Ms."
    assert fast_tb.advo_record(rec["betnr"])["anrede"] == "Frau"
