"""Webhooks for records already in sync cost nothing, above all on EspoCRM 8.x, which has no
``skipOwn`` and queues an update webhook for every write of ours (and for a PUT that changes nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulators.espocrm import STOCK_SALUTATIONS
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed


@pytest.fixture
async def tb8() -> AsyncIterator[Testbed]:
    bed = await start_testbed(espo_profile="8", occ=False)
    try:
        yield bed
    finally:
        await bed.close()


def calls_without_setup(tb: Testbed) -> dict[str, int]:
    return {k: v for k, v in tb.calls().items() if "/Token" not in k}


async def test_echoes_of_our_own_writes_make_no_call(tb8: Testbed):
    rec = tb8.espo.seed(**SAMPLE)
    await tb8.flush()  # the create; our mark and release queue two update webhooks (8.x)
    assert tb8.espo.pending_webhook_events() > 0
    tb8.reset_calls()
    await tb8.flush()  # the echoes arrive
    assert calls_without_setup(tb8) == {}
    assert tb8.espo_record(rec["id"])["syncStatus"] == "clean"


async def test_an_advoware_change_written_to_espocrm_does_not_echo_back(tb8: Testbed):
    rec = tb8.espo.seed(**SAMPLE)
    await tb8.flush()
    await tb8.flush()
    rec = tb8.espo_record(rec["id"])
    tb8.advo.edit(rec["betnr"], ort="Köln")
    await tb8.sync_check()
    assert tb8.espo_record(rec["id"])["addressCity"] == "Köln"
    tb8.reset_calls()
    await tb8.flush()  # the echo carries addressCity=Köln: the value we just synced
    assert calls_without_setup(tb8) == {}


async def test_duplicate_and_late_deliveries_make_no_call(tb8: Testbed):
    rec = tb8.espo.seed(**SAMPLE)
    await tb8.flush()
    await tb8.flush()
    tb8.espo.user_edit(rec["id"], addressCity="Potsdam")
    events = tb8.espo.take_webhook_events()
    for sub, items in events:  # delivered once, handled
        await deliver(tb8, sub, items)
    assert tb8.advo_record(tb8.espo_record(rec["id"])["betnr"])["ort"] == "Potsdam"
    await tb8.flush()  # our own echoes
    tb8.reset_calls()
    for sub, items in events:  # EspoCRM retries the same batch (an answer it did not see)
        await deliver(tb8, sub, items)
    assert calls_without_setup(tb8) == {}


async def test_a_noop_put_webhook_of_8x_makes_no_call(tb8: Testbed):
    rec = tb8.espo.seed(**SAMPLE)
    await tb8.flush()
    await tb8.flush()
    tb8.espo.user_edit(rec["id"], addressCity=SAMPLE["addressCity"])  # 8.x: still an update event
    tb8.reset_calls()
    await tb8.flush()
    assert calls_without_setup(tb8) == {}


async def test_stock_salutations_reach_advoware_as_anrede_and_come_back_as_an_option():
    tb = await start_testbed(espo_profile="8", occ=False, salutation_options=STOCK_SALUTATIONS)
    try:
        rec = tb.espo.seed(**{**SAMPLE, "salutationName": "Mrs."})
        await tb.flush()
        rec = tb.espo_record(rec["id"])
        assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
        assert tb.advo_record(rec["betnr"])["anrede"] == "Frau"
        tb.advo.edit(rec["betnr"], anrede="Herr")
        await tb.sync_check()
        assert tb.espo_record(rec["id"])["salutationName"] == "Mr."
        tb.espo.user_edit(rec["id"], salutationName="Dr.")  # no Advoware anrede for it
        await tb.flush()
        failed = tb.espo_record(rec["id"])
        assert failed["syncStatus"] == "failed"
        assert "salutationName 'Dr.'" in failed["syncErrorMessage"]
        assert "value_maps.toml" in failed["syncErrorMessage"]
        tb.reset_calls()
        await tb.flush()  # the echo of our failure write does not loop
        await tb.sync_check()  # a fatal failure waits for a change of the record
        assert tb.writes() == 0, tb.calls()
    finally:
        await tb.close()


async def deliver(tb: Testbed, sub: dict[str, object], items: list[dict[str, object]]) -> None:
    import httpx

    from simulators.espocrm.webhooks import legacy_signature_header, php_json_encode

    body = php_json_encode(items)
    headers = {"Content-Type": "application/json",
               "X-Signature": legacy_signature_header(str(sub["id"]), str(sub["secretKey"]), body)}
    async with httpx.AsyncClient() as client:
        resp = await client.post(str(sub["url"]), content=body, headers=headers)
    assert resp.status_code == 200
    await tb.host.drain(30)
