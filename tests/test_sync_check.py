"""Reconciliation over the simulators: what the sync check finds, its dry run and its guard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from simulators.common import free_port
from sync.sync_check import describe_plan
from tests.conftest import SAMPLE
from tests.embedded_support import env_for, state_root
from tests.testbed import Testbed, start_testbed

ROOT = Path(__file__).resolve().parent.parent


async def linked(tb: Testbed, n: int) -> list[dict[str, Any]]:
    ids = [tb.espo.seed(**{**SAMPLE, "lastName": f"Person {i}"})["id"] for i in range(n)]
    await tb.flush()
    recs = [tb.espo_record(i) for i in ids]
    assert all(r["syncStatus"] == "clean" for r in recs)
    return recs


async def test_dry_run_names_records_and_fields_and_writes_nothing(tb: Testbed):
    a, b = await linked(tb, 2)
    tb.advo.edit(a["betnr"], ort="Köln")
    tb.espo.user_edit(b["id"], phoneNumber="0800 1")  # webhook lost
    tb.reset_calls()
    plan = await tb.services.checker.plan()
    text = "\n".join(describe_plan(plan))
    assert f"{a['id']} betnr={a['betnr']}: changed in Advoware" in text
    assert "espocrm.addressCity := 'Köln'" in text
    assert f"{b['id']} betnr={b['betnr']}: changed in EspoCRM" in text
    assert "advoware.telefon := '08001'" in text  # phone numbers compared and sent without separators
    assert tb.writes() == 0


async def test_mass_change_guard_holds_when_many_advoware_twins_vanish(tb: Testbed):
    recs = await linked(tb, 10)
    for r in recs[:5]:
        tb.advo.remove(r["betnr"])
    tb.reset_calls()
    await tb.sync_check()
    assert tb.writes() == 0
    assert all(tb.espo_record(r["id"])["syncStatus"] == "clean" for r in recs)
    plan = await tb.services.checker.plan()
    assert plan.held and "5 of 10" in plan.held
    confirmed = await tb.services.checker.plan(confirm=True)
    assert confirmed.held is None and len(confirmed.work) == 5


async def test_mass_change_guard_holds_lost_mass_deletes(tb: Testbed):
    recs = await linked(tb, 6)
    for r in recs[:3]:
        tb.espo.user_delete(r["id"])  # webhooks never delivered
    plan = await tb.services.checker.plan()
    assert plan.held and len(plan.deletes) == 3


async def test_a_few_lost_deletes_go_ahead_and_ordinary_mass_edits_are_not_held(tb: Testbed):
    recs = await linked(tb, 10)
    tb.espo.user_delete(recs[0]["id"])
    for r in recs[1:]:
        tb.espo.user_edit(r["id"], addressCity="Leipzig")
    plan = await tb.services.checker.plan()
    assert plan.held is None and len(plan.deletes) == 1 and len(plan.work) == 9
    await tb.sync_check()
    assert await tb.services.store.get_link(recs[0]["id"]) is None
    assert all(tb.advo_record(r["betnr"])["ort"] == "Leipzig" for r in recs[1:])


async def test_record_stuck_in_syncing_after_a_killed_worker_is_recovered(tb: Testbed):
    (rec,) = await linked(tb, 1)
    # A worker died after marking the record and writing Advoware: lock expired, status stuck.
    await tb.services.espo.update("CBeteiligte", rec["id"], {"syncStatus": "syncing"})
    tb.advo.edit(rec["betnr"], plz="99999")
    await tb.sync_check()
    after = tb.espo_record(rec["id"])
    assert after["syncStatus"] == "clean" and after["addressPostalCode"] == "99999"


async def test_locked_record_is_left_to_its_lock_holder(tb: Testbed):
    (rec,) = await linked(tb, 1)
    await tb.services.espo.update("CBeteiligte", rec["id"], {"syncStatus": "syncing"})
    token = await tb.services.store.acquire(rec["id"])
    assert token is not None
    plan = await tb.services.checker.plan()
    assert plan.work == []
    await tb.services.store.release(rec["id"], token)


async def test_without_the_advoware_list_endpoint_single_gets_find_changes():
    tb = await start_testbed(list_endpoint=False)
    try:
        recs = await linked(tb, 3)
        tb.advo.edit(recs[1]["betnr"], email="neu@example.org")
        plan = await tb.services.checker.plan()
        assert plan.advoware_source == "get" and [w.espo_id for w in plan.work] == [recs[1]["id"]]
        await tb.sync_check()
        assert tb.espo_record(recs[1]["id"])["emailAddress"] == "neu@example.org"
    finally:
        await tb.close()


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
