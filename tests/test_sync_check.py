"""Reconciliation over the simulators: what the sync check finds, its dry run and its guard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from simulators.common import free_port
from sync.sync_check import describe_plan, run_sync_check
from tests.conftest import SAMPLE
from tests.embedded_support import env_for, state_root
from tests.fakes.fast_bed import start_fast_testbed
from tests.testbed import Testbed

ROOT = Path(__file__).resolve().parent.parent


async def linked(fast_tb: Testbed, n: int) -> list[dict[str, Any]]:
    ids = [fast_tb.espo.seed(**{**SAMPLE, "lastName": f"Person {i}"})["id"] for i in range(n)]
    await fast_tb.flush()
    recs = [fast_tb.espo_record(i) for i in ids]
    assert all(r["syncStatus"] == "clean" for r in recs)
    return recs


async def test_dry_run_names_records_and_fields_and_writes_nothing(fast_tb: Testbed):
    a, b = await linked(fast_tb, 2)
    fast_tb.advo.edit(a["betnr"], ort="Köln")
    fast_tb.espo.set_phone_settings(international=False)  # EspoCRM keeps a national number as typed
    fast_tb.espo.user_edit(b["id"], phoneNumber="0800 1")  # webhook lost
    fast_tb.reset_calls()
    plan = await fast_tb.services.checker.plan()
    text = "\n".join(describe_plan(plan))
    assert f"{a['id']} betnr={a['betnr']}: changed in Advoware" in text
    assert "espocrm.addressCity := 'Köln'" in text
    assert f"{b['id']} betnr={b['betnr']}: changed in EspoCRM" in text
    assert "advoware.telefon := '0800 1'" in text  # a phone number is sent as EspoCRM holds it
    assert fast_tb.writes() == 0


async def test_mass_change_guard_holds_when_many_advoware_twins_vanish(fast_tb: Testbed):
    recs = await linked(fast_tb, 10)
    for r in recs[:5]:
        fast_tb.advo.remove(r["betnr"])
    fast_tb.reset_calls()
    await fast_tb.sync_check()
    assert fast_tb.writes() == 0
    assert all(fast_tb.espo_record(r["id"])["syncStatus"] == "clean" for r in recs)
    plan = await fast_tb.services.checker.plan()
    assert plan.held and "5 of 10" in plan.held
    confirmed = await fast_tb.services.checker.plan(confirm=True)
    assert confirmed.held is None and len(confirmed.work) == 5


async def test_mass_change_guard_holds_lost_mass_deletes(fast_tb: Testbed):
    recs = await linked(fast_tb, 6)
    for r in recs[:3]:
        fast_tb.espo.user_delete(r["id"])  # webhooks never delivered
    plan = await fast_tb.services.checker.plan()
    assert plan.held and len(plan.deletes) == 3


async def test_a_few_lost_deletes_go_ahead_and_ordinary_mass_edits_are_not_held(fast_tb: Testbed):
    recs = await linked(fast_tb, 10)
    fast_tb.espo.user_delete(recs[0]["id"])
    for r in recs[1:]:
        fast_tb.espo.user_edit(r["id"], addressCity="Leipzig")
    plan = await fast_tb.services.checker.plan()
    assert plan.held is None and len(plan.deletes) == 1 and len(plan.work) == 9
    await fast_tb.sync_check()
    assert await fast_tb.services.store.get_link(recs[0]["id"]) is None
    assert all(fast_tb.advo_record(r["betnr"])["ort"] == "Leipzig" for r in recs[1:])


async def test_record_stuck_in_syncing_after_a_killed_worker_is_recovered(fast_tb: Testbed):
    (rec,) = await linked(fast_tb, 1)
    # A worker died after marking the record and writing Advoware: lock expired, status stuck.
    await fast_tb.services.espo.update("CBeteiligte", rec["id"], {"syncStatus": "syncing"})
    fast_tb.advo.edit(rec["betnr"], plz="99999")
    await fast_tb.sync_check()
    after = fast_tb.espo_record(rec["id"])
    assert after["syncStatus"] == "clean" and after["addressPostalCode"] == "99999"


async def test_locked_record_is_left_to_its_lock_holder(fast_tb: Testbed):
    (rec,) = await linked(fast_tb, 1)
    await fast_tb.services.espo.update("CBeteiligte", rec["id"], {"syncStatus": "syncing"})
    token = await fast_tb.services.store.acquire(rec["id"])
    assert token is not None
    plan = await fast_tb.services.checker.plan()
    assert plan.work == []
    await fast_tb.services.store.release(rec["id"], token)


async def test_without_the_advoware_list_endpoint_single_gets_find_changes():
    fast_tb = await start_fast_testbed(list_endpoint=False)
    try:
        recs = await linked(fast_tb, 3)
        fast_tb.advo.edit(recs[1]["betnr"], email="neu@example.org")
        plan = await fast_tb.services.checker.plan()
        assert plan.advoware_source == "get" and [w.espo_id for w in plan.work] == [recs[1]["id"]]
        await fast_tb.sync_check()
        assert fast_tb.espo_record(recs[1]["id"])["emailAddress"] == "neu@example.org"
    finally:
        await fast_tb.close()


def test_cli_sync_check_in_sandbox_mode_syncs_the_samples_and_exits_zero():
    with state_root() as root:  # its own embedded store, stopped afterwards; never the project's .state/
        _cli_sync_check_in_sandbox_mode(env_for(root / "state", free_port()))


def _cli_sync_check_in_sandbox_mode(env: dict[str, str]) -> None:
    cli = [sys.executable, "-m", "entrypoints.cli"]
    dry = subprocess.run([*cli, "sync-check", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "status pending_sync -> create (not linked yet)" in dry.stdout and "3 to sync" in dry.stdout
    run = subprocess.run([*cli, "sync-check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert 'queued 3 records' in run.stdout and '"clean": 3' in run.stdout


async def test_the_schedule_and_the_command_run_one_sync_check_that_counts_what_it_found(fast_tb: Testbed):
    """``run_sync_check`` is the one implementation: it counts each reason in /metrics and queues."""
    a, _ = await linked(fast_tb, 2)
    fast_tb.advo.edit(a["betnr"], ort="Bonn")
    emitted: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        emitted.append(event)

    metrics = fast_tb.services.metrics
    plan, queued = await run_sync_check(fast_tb.services.checker, metrics, emit)
    reason = plan.work[0].reason
    assert queued == 1 and [e["data"]["id"] for e in emitted] == [a["id"]]
    assert metrics.registry.get_sample_value("beteiligte_sync_check_records_total", {"reason": reason}) == 1.0
