"""Hostile: enum value maps (``salutationName`` <-> ``anrede``) against real-life input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulators.espocrm import STOCK_SALUTATIONS
from simulators.espocrm.fields import GERMAN_SALUTATIONS
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed


@pytest.fixture
async def stock() -> AsyncIterator[Testbed]:
    tb = await start_testbed(espo_profile="8", occ=False, salutation_options=STOCK_SALUTATIONS)
    try:
        yield tb
    finally:
        await tb.close()


@pytest.fixture
async def german() -> AsyncIterator[Testbed]:
    tb = await start_testbed(espo_profile="8", occ=False)
    try:
        yield tb
    finally:
        await tb.close()


async def test_hostile_admin_switches_salutation_options_while_running(stock: Testbed):
    tb = stock
    rec = tb.espo.seed(**{**SAMPLE, "salutationName": "Mrs."})
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean"
    tb.espo.set_salutation_options(GERMAN_SALUTATIONS)  # the admin edits the field in the Entity Manager
    tb.advo.edit(rec["betnr"], anrede="Herr")
    await tb.sync_check()
    after = tb.espo_record(rec["id"])
    assert (after["syncStatus"], after["salutationName"]) == ("clean", "Herr"), after["syncErrorMessage"]


@pytest.mark.parametrize("anrede", ["Frau ", "frau", "FRAU"])
async def test_hostile_advoware_anrede_with_blank_or_case_does_not_block_the_record(german: Testbed,
                                                                                  anrede: str):
    tb = german
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    tb.advo.edit(rec["betnr"], anrede=anrede)  # typed by hand in Advoware
    tb.espo.user_edit(rec["id"], addressCity="Potsdam")  # an unrelated change
    await tb.flush()
    await tb.sync_check()
    after = tb.espo_record(rec["id"])
    assert tb.advo_record(rec["betnr"])["ort"] == "Potsdam", (after["syncStatus"], after["syncErrorMessage"])


async def test_hostile_mrs_to_ms_in_espocrm_is_no_change_and_writes_nothing(stock: Testbed):
    """Both map to Frau: the edit is skipped and no sync check writes (no ping-pong)."""
    tb = stock
    rec = tb.espo.seed(**{**SAMPLE, "salutationName": "Mrs."})
    await tb.flush()
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    tb.espo.user_edit(rec["id"], salutationName="Ms.")
    tb.reset_calls()
    await tb.flush()
    await tb.sync_check()
    await tb.sync_check()
    assert tb.writes() == 0, tb.calls()
    assert tb.espo_record(rec["id"])["salutationName"] == "Ms."
    assert tb.advo_record(rec["betnr"])["anrede"] == "Frau"
