"""``beteiligte-sync sync-check`` as a subprocess: its exit code says whether records stay failed.

Exit 3 while ANY record is ``failed``/``permanently_failed`` after the check (also one it did not
queue: a fatal failure waits for a person), with how many and which (id, status, message without
the values the error quoted); 4 when ``--timeout`` ran out; 0 once everything is clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from entrypoints.check_report import ExitCode
from tests.crash_support import ADVO_ENTITY_PATH, Installation, Workload, espo_records
from tests.embedded_support import set_faults, state_root

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PHONE = "+49 30 5550123"
NAME = "Schmidtke"
REJECTION = json.dumps({"type": "about:blank", "title": "Bad Request", "status": 400,
                        "detail": f"telefon '{PHONE}' of {NAME} is invalid"})
SLOW_S = 3.0
SHORT_TIMEOUT_S = "0.5"


@pytest.fixture
def inst() -> Iterator[Installation]:
    """Simulators and the embedded store; no serve: the command's own workers do the syncs."""
    with state_root() as root:
        installation = Installation(root, redis=False)
        try:
            yield installation
        finally:
            installation.close()


def test_sync_check_exits_3_while_any_record_failed_and_names_it(inst: Installation) -> None:
    work = Workload(inst.espo, inst.advo, "Exit")
    good = work.create()
    done = inst.sync_check()
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr

    set_faults(inst.advo, {"rules": [{"method": "POST", "path": f"{ADVO_ENTITY_PATH}$", "status": 400,
                                      "body": REJECTION, "times": None}]})
    bad = work.create()
    done = inst.sync_check()
    assert done.returncode == ExitCode.RECORDS_FAILED, done.stdout + done.stderr
    assert "1 records failed or permanently failed" in done.stdout
    [line] = [ln for ln in done.stdout.splitlines() if bad in ln]
    assert "failed" in line and "HTTP 400" in line
    assert good not in done.stdout
    assert PHONE not in done.stdout + done.stderr and NAME not in done.stdout + done.stderr

    again = inst.sync_check()  # not queued again (fatal: waits for a change), still failed
    assert "queued 0 records" in again.stdout
    assert again.returncode == ExitCode.RECORDS_FAILED, again.stdout + again.stderr

    inst.heal()
    work.edit_espo(bad)  # a person fixes the record: the check queues it, it syncs
    done = inst.sync_check()
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "failed" not in done.stdout


def test_sync_check_exits_4_when_its_timeout_runs_out(inst: Installation) -> None:
    Workload(inst.espo, inst.advo, "Slow").create()
    set_faults(inst.advo, {"latency": SLOW_S})
    done = inst.cli("sync-check", "--timeout", SHORT_TIMEOUT_S)
    assert done.returncode == ExitCode.TIMED_OUT, done.stdout + done.stderr
    assert "timed out" in done.stderr


def test_a_held_mass_change_exits_2_and_still_syncs_every_other_record(inst: Installation) -> None:
    work = Workload(inst.espo, inst.advo, "Guard")
    ids = [work.create() for _ in range(5)]
    assert inst.sync_check().returncode == ExitCode.OK
    betnrs = work.linked()
    for espo_id in ids[:3]:  # three e-mails emptied in Advoware: more than 20 % of the linked records
        work.advo_staff.set_email(betnrs[espo_id], None)
    work.edit_advo(ids[4], betnrs[ids[4]])  # an ordinary edit
    done = inst.sync_check()
    assert done.returncode == ExitCode.REFUSED, done.stdout + done.stderr
    assert "HELD" in done.stderr and "--confirm-mass-change" in done.stderr
    espo = {r["id"]: r for r in espo_records(inst.espo)}
    assert espo[ids[4]]["emailAddress"] == work.expected[ids[4]].email, "the ordinary edit was held too"
    for espo_id in ids[:3]:  # the risky ones wait for an operator
        assert espo[espo_id]["emailAddress"] == work.expected[espo_id].email
