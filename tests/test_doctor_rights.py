"""The doctor's rights check on the testbed: every step for real, and its throwaway record is deleted
whatever fails, also when the check's timeout cuts it off."""

from __future__ import annotations

import asyncio

import pytest

from entrypoints.doctor_espocrm import TEST_LAST_NAME, rights
from installation.setup_report import Status
from tests.testbed import Testbed


def doctor_records(tb: Testbed) -> list[str]:
    return [r["id"] for r in tb.espo.all() if r["lastName"] == TEST_LAST_NAME]


async def test_every_step_works_and_leaves_no_record(tb: Testbed) -> None:
    (line,) = await rights(tb.services.espo)
    assert line.status == Status.OK
    assert doctor_records(tb) == []
    calls = tb.espo.calls.snapshot()
    assert {k for k in calls if "CBeteiligte" in k or "Note" in k} == {
        "GET /api/v1/CBeteiligte", "POST /api/v1/CBeteiligte", "GET /api/v1/CBeteiligte/{id}",
        "PUT /api/v1/CBeteiligte/{id}", "POST /api/v1/Note", "DELETE /api/v1/CBeteiligte/{id}"}


async def test_a_refused_note_names_the_role_setting_and_the_record_is_deleted(tb: Testbed) -> None:
    tb.espo.faults.add(method="POST", path=r"/api/v1/Note$", status=403, times=None)
    lines = await rights(tb.services.espo)
    assert [line.status for line in lines] == [Status.FAIL]
    assert "could not post a Note to a CBeteiligte record" in lines[0].text
    assert lines[0].fix.startswith("Administration → Roles → the API user's role: CBeteiligte Stream")
    assert doctor_records(tb) == []


async def test_a_check_cut_off_by_its_timeout_still_deletes_the_record(tb: Testbed) -> None:
    tb.espo.faults.add(method="PUT", path=r"/api/v1/CBeteiligte/", delay=1.5, times=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(rights(tb.services.espo), 0.5)
    assert doctor_records(tb) == []
