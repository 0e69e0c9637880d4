"""The central event step and the cron step called directly, against the whole installation on the
in-memory fakes (``fast_tb``; the webhook API steps are in ``test_webhook_steps.py``)."""

from __future__ import annotations

from stephost.testing import RecordingContext
from steps import beteiligte_sync_cron_step as cron_step
from steps import beteiligte_sync_event_step as event_step
from tests.conftest import SAMPLE
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed


async def test_event_step_creates_and_links_then_unlinks_on_delete(fast_tb: Testbed) -> None:
    rec = fast_tb.espo.seed(**SAMPLE)  # webhook queued in EspoCRM, never delivered: the step is called directly
    ctx = RecordingContext(emits=event_step.config["emits"])
    await event_step.handler({"id": rec["id"], "trigger": "webhook_create"}, ctx)
    rec = fast_tb.espo_record(rec["id"])
    assert rec["betnr"] and rec["syncStatus"] == "clean"
    advo = fast_tb.advo_record(rec["betnr"])
    assert advo["name"] == SAMPLE["lastName"] and advo["rowId"] == rec["advowareRowId"]
    assert ctx.emitted == [] and any(e.msg == "sync finished" for e in ctx.logs("info"))

    fast_tb.reset_calls()
    await event_step.handler({"id": rec["id"], "trigger": "webhook_update"}, ctx)  # a duplicate delivery
    advo_writes = {k: v for k, v in fast_tb.calls().items() if k.startswith("advoware") and " GET " not in k}
    assert advo_writes == {}, fast_tb.calls()  # already in sync: nothing echoed to Advoware
    assert fast_tb.advo_record(rec["betnr"])["rowId"] == advo["rowId"]
    assert fast_tb.espo_record(rec["id"])["syncStatus"] == "clean"

    fast_tb.espo.user_delete(rec["id"])
    await event_step.handler({"id": rec["id"], "trigger": "webhook_delete", "deleted": True}, ctx)
    assert await fast_tb.services.store.get_link(rec["id"]) is None
    assert fast_tb.advo.get(rec["betnr"]) is not None  # delete policy "unlink" keeps Advoware untouched


async def test_event_step_ignores_an_event_without_id(fast_tb: Testbed) -> None:
    ctx = RecordingContext(emits=event_step.config["emits"])
    await event_step.handler({"trigger": "webhook_create"}, ctx)
    assert [e.msg for e in ctx.logs("error")] == ["event without id ignored"]
    assert fast_tb.writes() == 0


async def test_cron_step_queues_unsynced_records_and_then_nothing(fast_tb: Testbed) -> None:
    a, b = fast_tb.espo.seed(**SAMPLE), fast_tb.espo.seed(**{**SAMPLE, "lastName": "Meier"})
    ctx = RecordingContext(emits=cron_step.config["emits"])
    await cron_step.handler(ctx)
    assert ctx.topics() == ["vmh.beteiligte.sync_check"] * 2
    assert {e["data"]["id"] for e in ctx.emitted} == {a["id"], b["id"]}
    for e in ctx.emitted:
        await event_step.handler(e["data"], RecordingContext(emits=[]))
    assert fast_tb.espo_record(a["id"])["betnr"] and fast_tb.espo_record(b["id"])["betnr"]

    fast_tb.reset_calls()
    again = RecordingContext(emits=cron_step.config["emits"])
    await cron_step.handler(again)
    assert again.emitted == [] and fast_tb.writes() == 0, fast_tb.calls()


async def test_cron_step_queues_a_lost_delete(fast_tb: Testbed) -> None:
    rec = fast_tb.espo.seed(**SAMPLE)
    await event_step.handler({"id": rec["id"]}, RecordingContext(emits=[]))
    fast_tb.espo.user_delete(rec["id"])  # the delete webhook is never delivered
    ctx = RecordingContext(emits=cron_step.config["emits"])
    await cron_step.handler(ctx)
    assert ctx.emitted == [{"topic": "vmh.beteiligte.delete",
                            "data": {"id": rec["id"], "deleted": True, "trigger": "sync_check"}}]


async def test_cron_step_holds_a_mass_delete(fast_tb: Testbed) -> None:
    ids = [fast_tb.espo.seed(**{**SAMPLE, "lastName": f"N{i}"})["id"] for i in range(3)]
    for i in ids:
        await event_step.handler({"id": i}, RecordingContext(emits=[]))
    for i in ids:
        fast_tb.espo.user_delete(i)
    ctx = RecordingContext(emits=cron_step.config["emits"])
    await cron_step.handler(ctx)
    assert ctx.emitted == []
    assert [e.msg for e in ctx.logs("error")] == ["sync check held risky records by the mass-change guard"]


async def test_delete_event_for_a_record_that_still_exists_keeps_its_advoware_twin() -> None:
    bed = await start_fast_testbed(delete_policy="delete")
    try:
        rec = bed.espo.seed(**SAMPLE)
        await event_step.handler({"id": rec["id"]}, RecordingContext(emits=[]))
        betnr = bed.espo_record(rec["id"])["betnr"]
        # e.g. the create webhook's batch arriving at the delete URL: the signature is valid there too
        await event_step.handler({"id": rec["id"], "trigger": "webhook_delete", "deleted": True},
                                 RecordingContext(emits=[]))
        assert bed.advo.get(betnr) is not None
        assert await bed.services.store.get_link(rec["id"]) is not None
    finally:
        await bed.close()
