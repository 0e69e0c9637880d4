"""Hostile tests of issue 21 item 4 (each system keeps its phone formatting), over HTTP, both EspoCRM profiles."""

from __future__ import annotations

import logging

import pytest

from tests.test_phone_formatting import linked, quiet, settled
from tests.testbed import Testbed


@pytest.mark.parametrize("extensions", [False, True])
@pytest.mark.parametrize("typed", ["030 1234567 ext. 12", "030 1234567 x12", "0049 30 1234567 #12"])
async def test_a_national_advoware_number_with_an_extension_reaches_espocrm_with_the_setting_on(
        tb: Testbed, typed: str, extensions: bool) -> None:
    tb.espo.set_phone_settings(international=True, extensions=extensions)
    espo_id, betnr = await linked(tb)
    tb.advo.edit(betnr, telefon=typed)
    await tb.sync_check()
    await settled(tb)
    rec = tb.espo_record(espo_id)
    keeps = extensions and tb.espo.behaviour.has_phone_extensions
    assert (rec["syncStatus"], rec["phoneNumber"]) == \
        ("clean", "+49301234567 ext. 12" if keeps else "+49301234567"), rec
    assert tb.advo_record(betnr)["telefon"] == typed
    await quiet(tb)


async def test_a_number_espocrm_refuses_fails_the_record_readably_and_writes_no_loop(tb: Testbed) -> None:
    """Letters in a national number, the setting on: EspoCRM refuses it. One failure naming the field
    (not the number, which staff see anyway in Advoware), and later sync checks write nothing."""
    tb.espo.set_phone_settings(international=True)
    espo_id, betnr = await linked(tb)
    tb.advo.edit(betnr, telefon="0171 1234567 mobil")
    await tb.sync_check()
    await settled(tb)
    rec = tb.espo_record(espo_id)
    assert rec["syncStatus"] == "failed", rec
    assert "in phoneNumber as invalid" in rec["syncErrorMessage"] and "0171" not in rec["syncErrorMessage"], rec
    tb.reset_calls()
    for _ in range(2):
        await tb.sync_check()
        await settled(tb)
    assert tb.writes() == 0, tb.calls()
    assert sum(n for k, n in tb.calls().items() if "/Settings" in k) <= 1, tb.calls()


@pytest.mark.parametrize("national", ["030 7654321", "0221 / 76 54 32"])
async def test_the_setting_switched_on_by_an_admin_while_linked(tb: Testbed, national: str) -> None:
    """Switched on while the sync holds the setting read as off (read every 10 minutes): no mass rewrite,
    and the next national number from Advoware is not refused for good: the setting is read again."""
    tb.espo.set_phone_settings(international=False)
    espo_id, betnr = await linked(tb, phoneNumber="030 1234567")
    tb.espo.set_phone_settings(international=True)
    await quiet(tb)  # nothing rewritten because the setting changed
    assert tb.espo_record(espo_id)["phoneNumber"] == "030 1234567"
    tb.advo.edit(betnr, telefon=national)
    await tb.sync_check()
    await settled(tb)
    rec = tb.espo_record(espo_id)
    assert (rec["syncStatus"], rec["phoneNumber"]) == \
        ("clean", "+49307654321" if national.startswith("030") else "+49221765432"), rec
    assert tb.advo_record(betnr)["telefon"] == national
    await quiet(tb)


@pytest.mark.parametrize("international", [True, False])
async def test_both_sides_respelling_the_same_number_is_no_conflict_and_no_write(
        tb: Testbed, international: bool) -> None:
    tb.espo.set_phone_settings(international=international)
    espo_id, betnr = await linked(tb, phoneNumber="+49 30 1234567")
    tb.reset_calls()
    tb.advo.edit(betnr, telefon="030 / 123 45 67")
    tb.espo.user_edit(espo_id, phoneNumber="0049 30 1234567" if not international else "+49 (0)30 1234567")
    await settled(tb)
    await tb.sync_check()
    await settled(tb)
    assert tb.writes() == 0, tb.calls()  # the person edits are not counted: nothing of ours
    assert tb.advo_record(betnr)["telefon"] == "030 / 123 45 67"
    assert not any("/Note" in k for k in tb.calls()), tb.calls()
    await quiet(tb)


@pytest.mark.parametrize("cleared", ["", "   ", None])
async def test_a_number_cleared_in_advoware_clears_it_in_espocrm_once(tb: Testbed, cleared: str | None) -> None:
    espo_id, betnr = await linked(tb, phoneNumber="+49301234567")
    tb.advo.edit(betnr, telefon=cleared)
    await tb.sync_check()
    await settled(tb)
    rec = tb.espo_record(espo_id)
    assert (rec["syncStatus"], rec["phoneNumber"]) == ("clean", None), rec
    await quiet(tb)


async def test_a_number_cleared_in_espocrm_clears_it_in_advoware_once(tb: Testbed) -> None:
    espo_id, betnr = await linked(tb, phoneNumber="+49301234567")
    tb.espo.user_edit(espo_id, phoneNumber=None)
    await settled(tb)
    assert tb.advo_record(betnr)["telefon"] in (None, ""), tb.advo_record(betnr)
    await quiet(tb)


@pytest.mark.parametrize("spelt", ["+49 (030) 1234567", "+49 030 1234567", "0049 030 1234567", "+41 044 123 45 67"])
async def test_a_redundant_trunk_zero_after_the_country_code_is_the_same_number(tb: Testbed, spelt: str) -> None:
    """A common German spelling: ``+49 (030) …``. EspoCRM (libphonenumber) stores it without the 0, so a
    key that keeps it made a lost base (or a first link) overwrite one side's spelling and post a Note."""
    tb.espo.set_phone_settings(international=True)
    espo_id, betnr = await linked(tb)
    tb.advo.edit(betnr, telefon=spelt)
    await tb.sync_check()
    await settled(tb)
    stored = tb.espo_record(espo_id)["phoneNumber"]
    assert stored == ("+41441234567" if spelt.startswith("+41") else "+49301234567")
    await tb.services.store.drop_link(espo_id)
    tb.reset_calls()
    await quiet(tb)
    assert not any("/Note" in k for k in tb.calls()), tb.calls()
    assert (tb.espo_record(espo_id)["phoneNumber"], tb.advo_record(betnr)["telefon"]) == (stored, spelt)


@pytest.mark.parametrize("international", [True, False])
async def test_no_phone_number_in_the_log_at_info(
        tb: Testbed, international: bool, caplog: pytest.LogCaptureFixture) -> None:
    """Refused, rewritten, re-read settings: the log names fields and ids, never the number."""
    tb.espo.set_phone_settings(international=not international)
    with caplog.at_level(logging.INFO):
        espo_id, betnr = await linked(tb, phoneNumber="+49 30 9876543")
        tb.espo.set_phone_settings(international=international)
        for typed in ("0171 9876543 mobil", "0221 / 98 76 54", "030 9876543 ext. 98"):
            tb.advo.edit(betnr, telefon=typed)
            await tb.sync_check()
            await settled(tb)
    text = "".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert not any(digits in text for digits in ("9876543", "98 76 54", "987654")), text


@pytest.mark.parametrize("international", [True, False])
@pytest.mark.parametrize("placeholder", ["-", "--", "/", "."])
async def test_a_placeholder_without_digits_in_advoware_is_no_number(
        tb: Testbed, international: bool, placeholder: str) -> None:
    """Advoware users type ``-`` for "no number". Its key was ``""`` (not empty): sent as it is, EspoCRM
    with the setting on refused it and the record failed; it is no number, so EspoCRM's is cleared."""
    tb.espo.set_phone_settings(international=international)
    espo_id, betnr = await linked(tb)
    tb.advo.edit(betnr, telefon=placeholder)
    await tb.sync_check()
    await settled(tb)
    rec = tb.espo_record(espo_id)
    assert (rec["syncStatus"], rec["phoneNumber"]) == ("clean", None), rec
    assert tb.advo_record(betnr)["telefon"] == placeholder
    await quiet(tb)
