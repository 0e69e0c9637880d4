"""A create never duplicates a possible match (issue 11): when no strong rule finds the party, the
create looks up the weak keys in the same index and holds the record for a person while an existing
Beteiligter may be it. Through HTTP against both simulators, on a real Redis."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.match_declines import MatchDeclines
from adapters.match_index import MatchKeyIndex
from domain.match_keys import KEY_VERSION, strong_keys, weak_keys
from domain.match_party import party_from_advoware
from onboarding.match_create_new import create_new
from sync.create_match import MAX_READS, OVERLAP
from tests.conftest import SAMPLE
from tests.match_support import index_all as _index
from tests.match_support import staff_creates as _staff_creates
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]

ANNA_ADVO = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": SAMPLE["emailAddress"], "ort": "Berlin"}
NO_DOB = {"dateOfBirth": None}
LIST = "GET /api/v1/advonet/Beteiligte"
POST = "POST /api/v1/advonet/Beteiligte"
GET_ONE = "GET /api/v1/advonet/Beteiligte/{id}"








def _advo_calls(tb: Testbed) -> dict[str, int]:
    return {k: v for k, v in tb.advo.calls.snapshot().items() if not k.endswith("/Token")}


async def test_name_and_email_without_birth_date_is_held_until_a_person_decides(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    firm.reset_calls()
    rec = await _staff_creates(firm, **NO_DOB)
    assert rec["syncStatus"] == "failed" and rec["betnr"] is None
    message = rec["syncErrorMessage"]
    assert f"betNr {existing['betNr']} (person_name_email" in message, message
    assert f"enter {existing['betNr']} in betnr to link it" in message
    assert f"beteiligte-sync match --create-new {rec['id']}" in message and "no retry until" in message
    calls = _advo_calls(firm)
    assert POST not in calls and len(firm.advo.all()) == 1
    assert calls[LIST] == 1  # the one list read; the candidate came with it (changed since the index)

    # the person decides: another party (as `match --create-new` does it)
    services = firm.services
    ok, line = await create_new(services.espo, services.sync.creates.matcher, firm.host.emit, rec["id"])
    assert ok and f"declined betNr {existing['betNr']}" in line, line
    assert await firm.host.drain(30)
    rec = firm.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"] not in (None, existing["betNr"])
    assert len(firm.advo.all()) == 2


async def test_a_typo_with_the_same_first_name_and_email_is_held(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    rec = await _staff_creates(firm, lastName="Müler", **NO_DOB)
    assert rec["syncStatus"] == "failed" and "person_typo_email" in rec["syncErrorMessage"]
    assert str(existing["betNr"]) in rec["syncErrorMessage"] and len(firm.advo.all()) == 1


async def test_a_candidate_older_than_the_watermark_is_read_once(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    index = MatchKeyIndex(firm.services.store.redis, firm.services.store.prefix)
    water = datetime.fromisoformat(str(await index.watermark()))
    await index.set_watermark((water + OVERLAP + timedelta(seconds=1)).isoformat())  # Anna: before the overlap
    firm.reset_calls()
    rec = await _staff_creates(firm, **NO_DOB)
    assert rec["syncStatus"] == "failed" and str(existing["betNr"]) in rec["syncErrorMessage"]
    calls = _advo_calls(firm)
    assert calls[LIST] == 1 and POST not in calls
    assert calls[GET_ONE] == 1  # the candidate, read afresh: one merged away in Advoware would not count


@pytest.mark.parametrize("espo", [
    {"dateOfBirth": "1981-04-12"},  # a namesake with another birth date: a contradiction
    {"dateOfBirth": "1981-04-12", "lastName": "Müler"},
    {"firstName": "Anne", "lastName": "Müler", "dateOfBirth": None},  # two differences
])
async def test_a_contradiction_is_no_possible_duplicate_and_is_created(firm: Testbed, espo: dict[str, Any]) -> None:
    firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    rec = await _staff_creates(firm, **espo)
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    assert len(firm.advo.all()) == 2


@pytest.mark.parametrize("dob", [None, "1980-04-12"])
async def test_an_index_before_the_birth_date_marks_still_holds_a_typo(firm: Testbed, dob: str | None) -> None:
    existing = firm.advo.seed(**ANNA_AT_10115)  # born 1980-04-12
    await _index(firm)
    store = firm.services.store
    index = MatchKeyIndex(store.redis, store.prefix)
    party = party_from_advoware(existing)  # its keys as version 3 wrote them: none marked
    await index.put_many([(existing["betNr"], strong_keys(party) + weak_keys(replace(party, dob=None)))])
    await store.redis.set(f"{store.prefix}:mversion", "3")
    water = datetime.fromisoformat(str(await index.watermark()))
    await index.set_watermark((water + OVERLAP + timedelta(seconds=1)).isoformat())  # not read again
    rec = await _staff_creates(firm, **{**TYPO_BARE, "dateOfBirth": dob})
    assert rec["syncStatus"] == "failed" and f"betNr {existing['betNr']} (" in rec["syncErrorMessage"]
    assert len(firm.advo.all()) == 1


async def test_empty_values_never_make_a_candidate(firm: Testbed) -> None:
    firm.advo.seed(name="Müller", vorname=None, anrede="Frau", email=None, plz=None)
    firm.advo.seed(name="Müller", vorname="", anrede="Frau", email="", plz="")
    await _index(firm)
    rec = await _staff_creates(firm, firstName=None, emailAddress=None, addressPostalCode=None, **NO_DOB)
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    assert len(firm.advo.all()) == 3


async def test_an_index_built_before_the_weak_keys_skips_the_weak_lookup(firm: Testbed) -> None:
    firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    store = firm.services.store
    await store.redis.delete(f"{store.prefix}:mversion")  # as an index built before this version
    firm.reset_calls()
    rec = await _staff_creates(firm, **NO_DOB)
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]  # no crash, no weak lookup: created
    assert LIST not in _advo_calls(firm)  # nothing a strong rule can look up: no read at all
    strong = await _staff_creates(firm, firstName="Berta")  # the strong lookup still works
    assert strong["syncStatus"] == "clean" and _advo_calls(firm)[LIST] == 1


async def test_a_declined_candidate_does_not_count_for_the_strong_rules_either(firm: Testbed) -> None:
    first, second = firm.advo.seed(**ANNA_ADVO), firm.advo.seed(**ANNA_ADVO)  # Anna entered twice in Advoware
    await _index(firm)
    store = firm.services.store
    rec = firm.espo.seed(**SAMPLE)
    await MatchDeclines(store.redis, store.prefix).add(rec["id"], [second["betNr"]])  # a `no` row applied
    await firm.flush()
    await firm.flush()
    linked = firm.espo_record(rec["id"])
    assert linked["syncStatus"] == "clean" and linked["betnr"] == first["betNr"]  # the one left: unique
    assert len(firm.advo.all()) == 2


ANNA_AT_10115 = {**ANNA_ADVO, "plz": SAMPLE["addressPostalCode"]}
# The near-duplicate nothing else tells: a family-name typo, no birth date, no e-mail; first name and
# postcode as in Advoware.
TYPO_BARE = {"lastName": "Müler", "dateOfBirth": None, "emailAddress": None}


async def test_a_typo_with_the_same_first_name_and_postcode_is_held_until_a_person_decides(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_AT_10115)
    await _index(firm)
    firm.reset_calls()
    rec = await _staff_creates(firm, **TYPO_BARE)
    assert rec["syncStatus"] == "failed" and rec["betnr"] is None
    message = rec["syncErrorMessage"]
    assert f"betNr {existing['betNr']} (person_typo_plz" in message, message
    assert f"enter {existing['betNr']} in betnr to link it" in message
    assert f"beteiligte-sync match --create-new {rec['id']}" in message
    assert POST not in _advo_calls(firm) and len(firm.advo.all()) == 1

    services = firm.services  # another party after all: `match --create-new`
    ok, line = await create_new(services.espo, services.sync.creates.matcher, firm.host.emit, rec["id"])
    assert ok and f"declined betNr {existing['betNr']}" in line, line
    assert await firm.host.drain(30)
    rec = firm.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"] not in (None, existing["betNr"])
    assert len(firm.advo.all()) == 2


@pytest.mark.parametrize("espo", [
    {"addressPostalCode": "10117"},  # another postcode
    {"lastName": "Müllerin"},  # two letters off: no key in common
    {"lastName": "Mülerr"},  # two letters off, a key in common: read, then no possible duplicate
    {"firstName": "Anne"},  # another first name
    {"dateOfBirth": "1981-04-12"},  # birth dates on both sides, different: another person
])
async def test_a_typo_with_postcode_but_another_difference_is_created(firm: Testbed, espo: dict[str, Any]) -> None:
    firm.advo.seed(**ANNA_AT_10115)
    await _index(firm)
    rec = await _staff_creates(firm, **{**TYPO_BARE, **espo})
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    assert rec["betnr"] is not None and len(firm.advo.all()) == 2


async def test_an_index_before_the_family_name_variants_skips_them_until_match_runs(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_AT_10115)
    await _index(firm)
    store = firm.services.store
    await store.redis.set(f"{store.prefix}:mversion", "2")  # as an index built by the version before
    first = await _staff_creates(firm, **TYPO_BARE)
    assert first["syncStatus"] == "clean", first["syncErrorMessage"]  # the variants not looked up: created
    await _index(firm)  # `beteiligte-sync match` again: the current version
    assert await MatchKeyIndex(store.redis, store.prefix).version() == KEY_VERSION
    second = await _staff_creates(firm, **TYPO_BARE)
    assert second["syncStatus"] == "failed" and str(existing["betNr"]) in second["syncErrorMessage"]


async def test_more_typo_candidates_than_it_reads_are_held_unread_as_several(firm: Testbed) -> None:
    near = ["Müller", "Mühler", "Mülar", "Mülers", "Mület", "Müle"]  # each one letter off "Müler"
    seeded = [firm.advo.seed(**{**ANNA_AT_10115, "name": name}) for name in near]
    await _index(firm)
    index = MatchKeyIndex(firm.services.store.redis, firm.services.store.prefix)
    water = datetime.fromisoformat(str(await index.watermark()))
    await index.set_watermark((water + OVERLAP + timedelta(seconds=1)).isoformat())  # none comes with the list read
    firm.reset_calls()
    rec = await _staff_creates(firm, **TYPO_BARE)
    message = rec["syncErrorMessage"]
    assert rec["syncStatus"] == "failed" and "enter the right one's betNr" in message, message
    assert f"and {len(near) - MAX_READS} more" in message
    assert str(min(int(o["betNr"]) for o in seeded)) in message
    calls = _advo_calls(firm)
    assert POST not in calls and GET_ONE not in calls  # more than MAX_READS: none read
