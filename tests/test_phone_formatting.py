"""Issue 21, item 4: each system keeps its formatting of a phone number. Over HTTP, both EspoCRM profiles.

A number is written as its source holds it (in a form EspoCRM accepts under its "International phone
numbers" setting) and compared by its key (``domain/phone.py``), so another spelling of the same
number on the other side is never a change: a later sync check writes nothing to either system.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SAMPLE
from tests.testbed import Testbed


async def settled(tb: Testbed) -> None:
    """Deliver the webhooks queued now and the echoes of our own writes (8.x)."""
    await tb.flush()
    await tb.flush()


async def quiet(tb: Testbed) -> None:
    """Two more sync checks (each with its webhooks) write nothing to either system."""
    tb.reset_calls()
    for _ in range(2):
        await tb.sync_check()
        await settled(tb)
    assert tb.writes() == 0, tb.calls()


async def linked(tb: Testbed, **extra: Any) -> tuple[str, int]:
    rec = tb.espo.seed(**{**SAMPLE, **extra})
    await settled(tb)
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean", rec
    return rec["id"], int(rec["betnr"])


@pytest.mark.parametrize(("international", "typed", "in_advoware"), [
    (False, "030 1234567", "030 1234567"),  # EspoCRM keeps it as typed: so does Advoware
    (False, "+49 30 1234567", "+49 30 1234567"),
    (True, "+49 30 1234567", "+49301234567"),  # EspoCRM stored E.164: Advoware gets that
    (True, "+49 (0)30 1234567", "+49301234567"),
])
async def test_a_number_typed_in_espocrm_reaches_advoware_as_espocrm_holds_it(
        tb: Testbed, international: bool, typed: str, in_advoware: str) -> None:
    tb.espo.set_phone_settings(international=international)
    espo_id, betnr = await linked(tb, phoneNumber=typed)
    assert tb.advo_record(betnr)["telefon"] == tb.espo_record(espo_id)["phoneNumber"] == in_advoware
    await quiet(tb)


@pytest.mark.parametrize(("international", "in_espocrm"), [
    (True, "+49221123456"),  # a national number is refused: its E.164 form, as a person's save makes it
    (False, "0221 12 34 56"),  # kept as typed, but "/" is refused by EspoCRM's pattern
])
async def test_an_advoware_number_reaches_espocrm_as_espocrm_stores_it(
        tb: Testbed, international: bool, in_espocrm: str) -> None:
    tb.espo.set_phone_settings(international=international)
    espo_id, betnr = await linked(tb)
    tb.advo.edit(betnr, telefon="0221 / 12 34 56")
    await tb.sync_check()
    await settled(tb)
    rec = tb.espo_record(espo_id)
    assert (rec["phoneNumber"], rec["syncStatus"]) == (in_espocrm, "clean"), rec
    assert tb.advo_record(betnr)["telefon"] == "0221 / 12 34 56"  # never written back in EspoCRM's spelling
    await quiet(tb)


async def test_a_change_of_digits_still_syncs_and_a_new_spelling_alone_does_not(tb: Testbed) -> None:
    tb.espo.set_phone_settings(international=False)
    espo_id, betnr = await linked(tb, phoneNumber="030 1234567")
    tb.espo.user_edit(espo_id, phoneNumber="030-123 45 67")  # the same number, spelt anew
    await settled(tb)
    assert tb.advo_record(betnr)["telefon"] == "030 1234567"
    tb.espo.user_edit(espo_id, phoneNumber="030 7654321")  # another number
    await settled(tb)
    assert tb.advo_record(betnr)["telefon"] == "030 7654321"
    tb.advo.edit(betnr, telefon="030 / 7654322")
    await tb.sync_check()
    await settled(tb)
    assert tb.espo_record(espo_id)["phoneNumber"] == "030 7654322"
    await quiet(tb)


async def test_a_lost_base_overwrites_neither_spelling(tb: Testbed) -> None:
    """Without a base both sides are compared directly: ``0221 / 12 34 56`` and ``+49221123456`` are one number."""
    espo_id, betnr = await linked(tb)
    tb.advo.edit(betnr, telefon="0221 / 12 34 56")
    await tb.sync_check()
    await settled(tb)
    await tb.services.store.drop_link(espo_id)
    await quiet(tb)
    assert await tb.services.store.get_link(espo_id) is not None  # the sync check took the record up again
    assert (tb.espo_record(espo_id)["phoneNumber"], tb.advo_record(betnr)["telefon"]) == \
        ("+49221123456", "0221 / 12 34 56")


async def test_without_espocrm_settings_a_national_number_goes_in_the_form_both_settings_accept(tb: Testbed) -> None:
    tb.espo.set_phone_settings(international=False)
    tb.espo.faults.add(method="GET", path="/Settings$", status=403)  # a role that may not read them
    espo_id, betnr = await linked(tb)
    tb.advo.edit(betnr, telefon="0221 / 12 34 56")
    await tb.sync_check()
    await settled(tb)
    assert tb.services.sync.espo_facts.phone_international is None
    assert tb.espo_record(espo_id)["phoneNumber"] == "+49221123456"
    await quiet(tb)
