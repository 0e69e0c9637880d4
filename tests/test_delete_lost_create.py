"""A record deleted in EspoCRM while its create had no answer yet (the ``POST`` landed, its answer was
lost): the Beteiligter that create made follows DELETE_POLICY like a linked twin. It was left behind
unlinked ("no link known"), under ``delete`` an orphan for good (the chaos run found one)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis import Redis

from sync.create_match import OnCreateMatch
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed

PROFILES = [("8", False), ("9", True)]


async def _bed(real_redis_url: str, espo: str, occ: bool, delete_policy: str, advo: str = "default") -> Testbed:
    Redis.from_url(real_redis_url).flushdb()
    return await start_testbed(redis_url=real_redis_url, espo_profile=espo, occ=occ, delete_policy=delete_policy,
                               http_timeout=1.0, advo_profile=advo)


async def _deleted_after_a_lost_create(tb: Testbed) -> tuple[str, int]:
    """The create's POST lands, its answer is lost, the record is deleted before the next attempt."""
    tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$|/Beteiligte$", delay=1.5, lose_answer=True,
                       times=1)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    assert tb.espo_record(rec["id"])["syncStatus"] == "failed"
    [made] = tb.advo.all()  # the POST landed
    assert not tb.espo_record(rec["id"]).get("betnr")
    tb.espo.user_delete(rec["id"])
    await tb.flush()
    return rec["id"], int(made["betNr"])


@pytest.mark.parametrize(("espo", "occ"), PROFILES, ids=["espo8", "espo9"])
async def test_under_delete_the_lost_creates_beteiligter_is_deleted(real_redis_url: str, espo: str, occ: bool,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    tb = await _bed(real_redis_url, espo, occ, "delete")
    try:
        with caplog.at_level(logging.INFO):
            espo_id, betnr = await _deleted_after_a_lost_create(tb)
        assert tb.advo.get(betnr) is None, "the Beteiligter the lost create made is an orphan in Advoware"
        line = next(r.getMessage() for r in caplog.records if "did reach Advoware" in r.getMessage())
        assert espo_id in line and f"betnr={betnr}" in line
        assert await tb.services.store.create_attempt(espo_id) is None
        tb.clock.advance(3600)
        await tb.sync_check()
        assert tb.advo.all() == []  # nothing created again
    finally:
        await tb.close()


@pytest.mark.parametrize(("espo", "occ"), PROFILES, ids=["espo8", "espo9"])
async def test_under_unlink_it_is_kept(real_redis_url: str, espo: str, occ: bool) -> None:
    tb = await _bed(real_redis_url, espo, occ, "unlink")
    try:
        espo_id, betnr = await _deleted_after_a_lost_create(tb)
        assert tb.advo.get(betnr) is not None  # kept, as a linked twin would be
        assert await tb.services.store.create_attempt(espo_id) is None
        assert await tb.services.store.betnr_owner(betnr) is None
    finally:
        await tb.close()


async def test_without_the_list_endpoint_the_delete_says_where_to_look(real_redis_url: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    tb = await _bed(real_redis_url, "8", False, "delete", advo="no-list")
    try:
        with caplog.at_level(logging.INFO):
            espo_id, betnr = await _deleted_after_a_lost_create(tb)
        line = next(r.getMessage() for r in caplog.records if "look for a Beteiligter created then" in r.getMessage())
        assert espo_id in line and "without Advoware's list" in line
        assert tb.advo.get(betnr) is not None  # nothing deleted blindly
    finally:
        await tb.close()


@pytest.mark.parametrize(("espo", "occ"), PROFILES, ids=["espo8", "espo9"])
async def test_its_delete_webhook_lost_too_the_retry_applies_the_policy(real_redis_url: str, espo: str,
                                                                       occ: bool) -> None:
    tb = await _bed(real_redis_url, espo, occ, "delete")
    try:
        tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", delay=1.5, lose_answer=True, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        [made] = tb.advo.all()
        tb.espo.user_delete(rec["id"])
        assert tb.espo.take_webhook_events(), "the delete webhook is lost"
        tb.clock.advance(3600)  # the create's retry is due: it finds the record gone
        await tb.host.run_cron("beteiligte_retry_cron")
        await tb.host.drain(30)
        assert tb.advo.get(int(made["betNr"])) is None
        assert await tb.services.store.create_attempt(rec["id"]) is None
    finally:
        await tb.close()


async def test_an_older_party_with_the_same_values_is_never_taken_for_the_lost_creates(real_redis_url: str) -> None:
    """Under ``delete``: a Beteiligter a person made two years ago with exactly the values the lost create
    sent (edited lately, so the list shows it) is not the lost create's and is never deleted."""
    tb = await _bed(real_redis_url, "8", False, "delete")
    try:
        tb.services.sync.creates.on_match = OnCreateMatch.CREATE  # no lookup before the POST
        first = tb.espo.seed(**SAMPLE)  # its twin shows the exact values a create of SAMPLE sends
        await tb.flush()
        twin = tb.advo_record(tb.espo_record(first["id"])["betnr"])
        tb.advo.store.clock_offset_s = -2 * 365 * 86400
        old = tb.advo.seed(**{k: v for k, v in twin.items()
                              if k not in ("betNr", "rowId", "angelegtAm", "geaendertAm")})
        tb.advo.store.clock_offset_s = 0.0
        tb.advo.edit(old["betNr"], kurzname="Müller A.")  # not synced: its values stay those sent
        tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", status=500, times=1)  # not applied
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert await tb.services.store.create_attempt(rec["id"]) is not None
        tb.espo.user_delete(rec["id"])
        await tb.flush()
        assert tb.advo.get(old["betNr"]) is not None, "a person's older Beteiligter was deleted"
    finally:
        await tb.close()


async def test_one_edited_since_is_kept_and_named_not_deleted(real_redis_url: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Under ``delete``: the party found by identity only (edited in Advoware since) may be a namesake a
    person made in the same minutes; deleting the wrong party is worse than one left to a person."""
    tb = await _bed(real_redis_url, "9", True, "delete")
    try:
        tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", delay=1.5, lose_answer=True, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        [made] = tb.advo.all()
        tb.advo.edit(made["betNr"], ort="Potsdam")
        tb.espo.user_delete(rec["id"])
        with caplog.at_level(logging.INFO):
            await tb.flush()
        assert tb.advo.get(made["betNr"]) is not None
        line = next(r.getMessage() for r in caplog.records if "kept, check it" in r.getMessage())
        assert rec["id"] in line and f"betnr={made['betNr']}" in line
    finally:
        await tb.close()


@pytest.mark.parametrize(("espo", "occ"), PROFILES, ids=["espo8", "espo9"])
async def test_the_delete_webhook_and_the_due_retry_at_once_delete_it_once(real_redis_url: str, espo: str,
                                                                          occ: bool) -> None:
    """Both find the record gone under the same lease: one deletes the Beteiligter, the other finds
    nothing left to do; nothing is created again, no error."""
    tb = await _bed(real_redis_url, espo, occ, "delete")
    try:
        tb.advo.faults.add(method="POST", path="/advonet/Beteiligte$", delay=1.5, lose_answer=True, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        [made] = tb.advo.all()
        tb.espo.user_delete(rec["id"])
        tb.clock.advance(3600)  # the create's retry is due as the delete webhook arrives
        tb.reset_calls()
        await asyncio.gather(tb.flush(), tb.host.run_cron("beteiligte_retry_cron"))
        await tb.host.drain(30)
        assert tb.advo.get(int(made["betNr"])) is None
        assert tb.advo.all() == []
        assert tb.advo.calls.snapshot().get("DELETE /api/v1/advonet/Beteiligte/{id}") == 1
        assert tb.advo.calls.snapshot().get("POST /api/v1/advonet/Beteiligte") is None
        assert await tb.services.store.create_attempt(rec["id"]) is None
    finally:
        await tb.close()
