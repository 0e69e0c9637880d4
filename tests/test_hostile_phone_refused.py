"""Hostile: a phone number EspoCRM refuses for good must not hold back what a person changes meanwhile."""

from __future__ import annotations

import pytest

from tests.conftest import synced_record
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]


async def test_an_espocrm_edit_reaches_advoware_while_a_refused_number_fails_the_record(firm_both: Testbed) -> None:
    tb = firm_both
    tb.espo.set_phone_settings(international=True)
    rec = await synced_record(tb)
    tb.advo.edit(rec["betnr"], telefon="0171 9876543 mobil")
    await tb.sync_check()
    await tb.flush()
    assert tb.espo_record(rec["id"])["syncStatus"] == "failed"
    tb.espo.user_edit(rec["id"], addressStreet="Neue Straße 5")  # a person goes on working in EspoCRM
    await tb.flush()
    await tb.flush()
    assert tb.advo_record(rec["betnr"])["strasse"] == "Neue Straße 5", tb.espo_record(rec["id"])["syncErrorMessage"]
