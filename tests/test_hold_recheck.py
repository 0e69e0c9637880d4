"""A record held before a create (a possible duplicate) is looked at again by every sync check: it is
released when nothing holds it any more, and stays held while something does or nothing can tell."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis import Redis

from onboarding.match import scan
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed

pytestmark = [pytest.mark.redis]

ANNA_ADVO = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": SAMPLE["emailAddress"], "ort": "Berlin"}


@pytest.fixture
async def held(real_redis_url: str) -> AsyncIterator[tuple[Testbed, dict[str, Any], dict[str, Any]]]:
    Redis.from_url(real_redis_url).flushdb()  # the session's throwaway redis-server
    tb = await start_testbed(redis_url=real_redis_url, espo_profile="8", occ=False)
    try:
        existing = tb.advo.seed(**ANNA_ADVO)
        await scan(tb.services.espo, tb.services.advo, tb.services.store)
        rec = tb.espo.seed(**{k: v for k, v in SAMPLE.items() if k != "dateOfBirth"})  # no birth date
        await tb.flush()
        await tb.flush()
        rec = tb.espo_record(rec["id"])
        assert rec["syncStatus"] == "failed" and f"betNr {existing['betNr']}" in rec["syncErrorMessage"]
        yield tb, existing, rec
    finally:
        await tb.close()


async def test_a_hold_stays_while_its_candidate_is_there_and_costs_no_write(
        held: tuple[Testbed, dict[str, Any], dict[str, Any]]) -> None:
    tb, existing, rec = held
    tb.reset_calls()
    await tb.sync_check()
    await tb.flush()
    after = tb.espo_record(rec["id"])
    assert after["syncStatus"] == "failed" and after["syncErrorMessage"] == rec["syncErrorMessage"]
    assert not any(k.startswith("espocrm PUT") for k in tb.calls()), tb.calls()
    assert len(tb.advo.all()) == 1


async def test_a_hold_stays_when_the_index_is_gone(held: tuple[Testbed, dict[str, Any], dict[str, Any]]) -> None:
    """Without the index no create can look: releasing the record would create the duplicate."""
    tb, existing, rec = held
    store = tb.services.store
    await store.redis.delete(f"{store.prefix}:mwater")
    tb.advo.remove(existing["betNr"])  # even its candidate gone: nothing can tell there is no other
    await tb.sync_check()
    await tb.flush()
    after = tb.espo_record(rec["id"])
    assert after["syncStatus"] == "failed" and after["betnr"] is None
    assert tb.advo.all() == []
