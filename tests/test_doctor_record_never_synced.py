"""Issue 17 item 10: ``doctor``'s throwaway EspoCRM record never reaches Advoware, and ``doctor`` removes
it in every outcome: a lost answer to its create, a create landing after the check gave up, a
timeout that cuts the check off. Over HTTP, on both EspoCRM profiles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from entrypoints.doctor_espocrm import TEST_FIRST_NAME, TEST_LAST_NAME, rights
from installation.setup_report import Status
from tests.testbed import Testbed, start_testbed

CREATE = r"/api/v1/CBeteiligte$"
TIMEOUT_S = 1.0


@pytest.fixture(params=[("8", False), ("9", True)], ids=["espo8-occ_off", "espo9-occ_on"])
async def bed(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    profile, occ = request.param
    testbed = await start_testbed(espo_profile=profile, occ=occ, http_timeout=TIMEOUT_S)
    try:
        yield testbed
    finally:
        await testbed.close()


def doctor_records(bed: Testbed) -> list[str]:
    return [r["id"] for r in bed.espo.all() if r["lastName"] == TEST_LAST_NAME]


def advoware_copies(bed: Testbed) -> list[int]:
    return [b["betNr"] for b in bed.advo.all() if b["name"] == TEST_LAST_NAME]


async def test_the_sync_never_creates_the_doctors_record_in_advoware(bed: Testbed) -> None:
    """The webhook job and the sync check see the record while it exists (a slow doctor run)."""
    rec = await bed.services.espo.create("CBeteiligte", {"lastName": TEST_LAST_NAME, "firstName": TEST_FIRST_NAME})
    await bed.flush()
    await bed.sync_check()
    assert advoware_copies(bed) == [] and bed.advo.all() == []
    assert bed.espo_record(rec["id"]).get("betnr") is None
    await bed.services.espo.delete("CBeteiligte", rec["id"])
    await bed.flush()
    await bed.sync_check()
    assert bed.advo.all() == []


async def test_a_lost_create_answer_is_found_by_its_marker_and_deleted(bed: Testbed) -> None:
    bed.espo.faults.add(method="POST", path=CREATE, delay=TIMEOUT_S + 0.5, lose_answer=True, times=1)
    lines = await rights(bed.services.espo)
    assert lines[0].status == Status.FAIL and "could not create" in lines[0].text
    assert doctor_records(bed) == []


async def test_a_create_landing_after_the_check_gave_up_is_deleted(bed: Testbed) -> None:
    """The server saves the record only after the client timed out (a slow EspoCRM)."""
    bed.espo.faults.add(method="POST", path=CREATE, delay=TIMEOUT_S + 0.5, times=1)
    lines = await rights(bed.services.espo)
    assert lines[0].status == Status.FAIL
    await asyncio.sleep(1.0)  # long after the record landed
    assert doctor_records(bed) == []


async def test_a_cancelled_check_still_deletes_a_record_whose_create_was_in_flight(bed: Testbed) -> None:
    bed.espo.faults.add(method="POST", path=CREATE, delay=0.6, times=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(rights(bed.services.espo), 0.3)
    await asyncio.sleep(1.0)
    assert doctor_records(bed) == []


async def test_latency_on_every_call_leaves_nothing_behind(bed: Testbed) -> None:
    bed.espo.faults.latency = 0.5
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rights(bed.services.espo), 0.7)
    bed.espo.faults.latency = 0.0
    await asyncio.sleep(1.0)
    assert doctor_records(bed) == []
