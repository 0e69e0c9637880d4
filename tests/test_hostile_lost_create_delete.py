"""Hostile: the delete of a record whose create had no answer must never delete a Beteiligter that
create did not make (under ``DELETE_POLICY=delete`` that is a party of the firm gone for good)."""

from __future__ import annotations

import json

from redis import Redis

from adapters.redis_ops import as_text
from domain.beteiligte_mapper import canonical_to_advoware, espo_to_canonical
from sync.create_match import OnCreateMatch
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed

ADVO_COLLECTION = "/advonet/Beteiligte$"
# Who SAMPLE is, as an Advoware user types it in by hand (other fields of their own).
BY_HAND = {"name": "Müller", "vorname": "Anna", "rechtsform": "natürliche Person",
           "geburtsdatum": "1980-04-12T00:00:00", "ort": "Köln"}


async def _bed(real_redis_url: str) -> Testbed:
    Redis.from_url(real_redis_url).flushdb()
    return await start_testbed(redis_url=real_redis_url, espo_profile="9", delete_policy="delete",
                               http_timeout=1.0)


async def test_a_refused_create_never_makes_a_hand_made_namesake_its_own(real_redis_url: str) -> None:
    """Advoware refuses the POST (400: nothing was created); a person then types the party into
    Advoware by hand and deletes the failing EspoCRM record. The hand-made party is not ours."""
    tb = await _bed(real_redis_url)
    try:
        tb.advo.faults.add(method="POST", path=ADVO_COLLECTION, status=400, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert tb.espo_record(rec["id"])["syncStatus"] == "failed"
        assert tb.advo.all() == []
        hand = tb.advo.seed(**BY_HAND)
        tb.espo.user_delete(rec["id"])
        await tb.flush()
        assert tb.advo.get(int(hand["betNr"])) is not None, "a hand-made Beteiligter was deleted"
    finally:
        await tb.close()


async def test_a_refused_get_after_a_landed_create_is_not_a_refused_create(real_redis_url: str) -> None:
    """The POST lands; the GET for its rowId answers 403: the create is done and linked, never repeated."""
    Redis.from_url(real_redis_url).flushdb()
    tb = await start_testbed(redis_url=real_redis_url, espo_profile="9", delete_policy="delete",
                             http_timeout=1.0, post_returns_rowid=False)
    try:
        tb.advo.faults.add(method="GET", path=r"/advonet/Beteiligte/\d+$", status=403, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        tb.clock.advance(3600)
        await tb.sync_check()
        [made] = tb.advo.all()
        assert tb.espo_record(rec["id"]).get("betnr") == made["betNr"]
    finally:
        await tb.close()


async def test_a_lost_create_that_never_landed_does_not_own_an_older_identical_party(real_redis_url: str) -> None:
    """ON_CREATE_MATCH=create: the POST answers 500 without creating anything; an identical party typed
    into Advoware days before (edited today) is not the one the create made, and outlives the delete."""
    tb = await _bed(real_redis_url)
    try:
        tb.services.sync.creates.on_match = OnCreateMatch.CREATE
        tb.advo.store.clock_offset_s = -3 * 86400  # typed in three days ago
        old = tb.advo.seed(**canonical_to_advoware(espo_to_canonical(SAMPLE), source=SAMPLE))
        tb.advo.store.clock_offset_s = 0
        tb.advo.edit(int(old["betNr"]), ort="Bonn")
        tb.advo.edit(int(old["betNr"]), ort=SAMPLE["addressCity"])  # and back: changed today, the same values
        tb.advo.faults.add(method="POST", path=ADVO_COLLECTION, status=500, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert [o["betNr"] for o in tb.advo.all()] == [old["betNr"]]  # nothing created
        tb.espo.user_delete(rec["id"])
        await tb.flush()
        assert tb.advo.get(int(old["betNr"])) is not None, "a party typed in by hand days ago was deleted"
    finally:
        await tb.close()


async def test_a_namesake_typed_in_after_a_create_that_never_landed_outlives_the_delete(real_redis_url: str) -> None:
    """The POST answers 500 without creating anything; the person, seeing the record failed, types the
    party into Advoware by hand (same identity, fields of their own) and deletes the EspoCRM record.
    Nothing proves that party is the create's: it stays, named for operators."""
    tb = await _bed(real_redis_url)
    try:
        tb.advo.faults.add(method="POST", path=ADVO_COLLECTION, status=500, times=1)
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert tb.advo.all() == []
        hand = tb.advo.seed(**BY_HAND)
        tb.espo.user_delete(rec["id"])
        await tb.flush()
        assert tb.advo.get(int(hand["betNr"])) is not None, "a hand-made Beteiligter was deleted"
        store = tb.services.store
        kept = json.loads(str(as_text(await store.redis.hget(f"{store.prefix}:failed_deletes", rec["id"]))))
        assert kept["betnr"] == hand["betNr"] and "von Hand" in kept["message"]
    finally:
        await tb.close()


async def test_a_lost_creates_beteiligter_another_record_names_is_not_deleted(real_redis_url: str) -> None:
    """The create's POST lands, its answer is lost; a person types that betNr into another record (the
    same party entered twice) and deletes the first. That record's sync has not run yet (its webhook comes
    later): the Beteiligter it names is not the deleted record's to delete."""
    tb = await _bed(real_redis_url)
    try:
        tb.advo.faults.add(method="POST", path=ADVO_COLLECTION, delay=1.5, lose_answer=True, times=1)
        first = tb.espo.seed(**SAMPLE)
        await tb.flush()
        [made] = tb.advo.all()
        second = tb.espo.seed(**{**SAMPLE, "betnr": made["betNr"]})
        assert tb.espo.take_webhook_events(), "its webhook comes later"
        tb.espo.user_delete(first["id"])
        await tb.flush()
        assert tb.advo.get(int(made["betNr"])) is not None, "the Beteiligter another record names was deleted"
        tb.espo.user_edit(second["id"], addressCity="Potsdam")
        await tb.flush()
        await tb.flush()
        after = tb.espo_record(second["id"])
        assert after["syncStatus"] == "clean" and after["betnr"] == made["betNr"], after["syncErrorMessage"]
    finally:
        await tb.close()


async def test_two_namesakes_both_creates_lost_one_deleted_leaves_one_party_for_the_other(
        real_redis_url: str) -> None:
    """Both creates land, both answers are lost (ON_CREATE_MATCH=create: no claims between them); one record
    is deleted. One Beteiligter goes, the other record's retry adopts the other: no orphan, no duplicate."""
    tb = await _bed(real_redis_url)
    try:
        tb.services.sync.creates.on_match = OnCreateMatch.CREATE
        tb.advo.faults.add(method="POST", path=ADVO_COLLECTION, delay=1.5, lose_answer=True, times=2)
        a, b = tb.espo.seed(**SAMPLE), tb.espo.seed(**SAMPLE)
        await tb.flush()
        assert len(tb.advo.all()) == 2
        tb.espo.user_delete(a["id"])
        await tb.flush()
        tb.clock.advance(3600)
        await tb.host.run_cron("beteiligte_retry_cron")
        await tb.host.drain(30)
        await tb.flush()
        [kept] = tb.advo.all()
        after = tb.espo_record(b["id"])
        assert after["syncStatus"] == "clean" and after["betnr"] == kept["betNr"], after["syncErrorMessage"]
    finally:
        await tb.close()
