"""End to end over HTTP: EspoCRM simulator -> webhook -> service -> Advoware simulator and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed

# Both EspoCRM profiles (as conftest's tb) times the three shipped Advoware wire profiles (issue 21).
BEDS = [(espo, occ, advo) for espo, occ in (("8", False), ("9", True))
        for advo in ("default", "pascal-object", "no-list")]


@pytest.fixture(params=BEDS, ids=[f"espo{e}-advo_{a}" for e, _, a in BEDS])
async def tb(request: pytest.FixtureRequest) -> AsyncIterator[Testbed]:
    espo, occ, advo = request.param
    bed = await start_testbed(espo_profile=espo, occ=occ, phone_normalization=True, advo_profile=advo)
    try:
        yield bed
    finally:
        await bed.close()


def resource(tb: Testbed) -> str:
    return "/" + tb.advo.profile.resource_path


async def created(tb: Testbed, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    rec = tb.espo.seed(**{**SAMPLE, **extra})
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean", rec
    return rec, tb.advo_record(rec["betnr"])


async def store_in_use(tb: Testbed) -> None:
    """Once per store, the first create asks EspoCRM whether the store is new or was emptied (one list
    read, sync.index_rebuild); done here, so the counts below are those of every create."""
    matcher = tb.services.sync.creates.matcher
    await matcher.ready_index(await matcher.index.state())


async def test_create_reaches_advoware_with_link_written_back_in_four_calls(tb: Testbed):
    await store_in_use(tb)
    rec = tb.espo.seed(**SAMPLE)
    tb.reset_calls()
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    advo = tb.advo_record(rec["betnr"])
    assert advo["name"] == "Müller" and advo["vorname"] == "Anna" and advo["ort"] == "Berlin"
    assert advo["geburtsdatum"] == "1980-04-12T00:00:00"
    assert rec["advowareRowId"] == advo["rowId"]
    assert rec["advowareLastSync"] and rec["syncRetryCount"] == 0 and rec["syncErrorMessage"] is None
    # GET, mark syncing, POST, release (and one GET of Advoware when its POST answers no rowId)
    extra = 0 if tb.advo.profile.post_returns_row_id else 1
    assert tb.api_calls() <= 4 + extra, tb.calls()
    assert tb.writes() == 3, tb.calls()


async def test_create_without_row_id_in_post_answer_costs_one_get():
    tb = await start_testbed(post_returns_rowid=False)
    try:
        await store_in_use(tb)
        tb.reset_calls()
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        rec = tb.espo_record(rec["id"])
        assert rec["syncStatus"] == "clean"
        assert rec["advowareRowId"] == tb.advo_record(rec["betnr"])["rowId"]
        assert tb.api_calls() == 5, tb.calls()
    finally:
        await tb.close()


async def test_advoware_503_then_success_is_retried_inline(tb: Testbed):
    tb.advo.faults.add(method="POST", path="/Beteiligte$", status=503, retry_after=1, times=1)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["syncRetryCount"] == 0
    assert tb.advo.calls.snapshot()[f"POST {resource(tb)}"] == 2


async def test_expired_token_is_renewed_once(tb: Testbed):
    rec, advo = await created(tb)
    tb.advo.expire_tokens()
    tb.reset_calls()
    tb.espo.user_edit(rec["id"], firstName="Anne")
    await tb.flush()
    assert tb.advo_record(advo["betNr"])["vorname"] == "Anne"
    assert tb.advo.calls.snapshot().get("POST /api/v1/Token") == 1


async def test_create_whose_answer_was_lost_is_adopted_not_repeated():
    tb = await start_testbed(http_timeout=1.0)
    try:
        tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", delay=1.5, lose_answer=True, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert len(tb.advo.all()) == 1  # the POST landed; its answer is still held back
        tb.clock.advance(3600)
        await tb.sync_check()
        after = tb.espo_record(rec["id"])
        assert after["syncStatus"] == "clean"
        assert [b["betNr"] for b in tb.advo.all()] == [after["betnr"]]  # one Beteiligter, linked
    finally:
        await tb.close()
