"""No duplicate on create (issue 11): before creating in Advoware the sync looks for the party among
the existing Beteiligte, through HTTP against both simulators. The match key index is built by
``beteiligte-sync match`` (here: its scan); each create brings it up to date with one list read."""

from __future__ import annotations

from typing import Any

from onboarding.match import scan
from sync.create_match import OnCreateMatch
from tests.conftest import SAMPLE, synced_record
from tests.testbed import Testbed

ANNA_ADVO = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": None, "telefon": None, "ort": "Berlin",
             "kurzname": "MUELLER"}
LIST = "GET /api/v1/advonet/Beteiligte"


async def _index(tb: Testbed) -> None:
    """What ``beteiligte-sync match`` does first: page through Advoware into the match key index."""
    await scan(tb.services.espo, tb.services.advo, tb.services.store)


def _advo_calls(tb: Testbed) -> dict[str, int]:
    return {k: v for k, v in tb.advo.calls.snapshot().items() if not k.endswith("/Token")}


async def _staff_creates(tb: Testbed, **overrides: Any) -> dict[str, Any]:
    rec = tb.espo.seed(**{**SAMPLE, **overrides})
    await tb.flush()
    await tb.flush()
    return tb.espo_record(rec["id"])


async def test_a_party_entered_in_espocrm_that_advoware_has_is_linked_not_created(tb: Testbed) -> None:
    await _index(tb)
    existing = tb.advo.seed(**ANNA_ADVO)  # entered in Advoware after the index was built
    tb.reset_calls()
    rec = await _staff_creates(tb)
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    assert rec["betnr"] == existing["betNr"]
    assert len(tb.advo.all()) == 1  # no duplicate
    calls = _advo_calls(tb)
    assert "POST /api/v1/advonet/Beteiligte" not in calls
    assert calls[LIST] == 1  # the one extra read; the candidate's GET replaces the POST
    twin = tb.advo_record(existing["betNr"])
    # values only EspoCRM had went to Advoware, Advoware's kurzname (unmapped) survived
    assert (twin["email"], twin["kurzname"]) == (SAMPLE["emailAddress"], "MUELLER")
    assert twin["telefon"].replace(" ", "") == SAMPLE["phoneNumber"].replace(" ", "")


async def test_ask_fails_the_record_naming_the_candidate(tb: Testbed) -> None:
    await _index(tb)
    existing = tb.advo.seed(**ANNA_ADVO)
    tb.services.sync.creates.on_match = OnCreateMatch.ASK
    rec = await _staff_creates(tb)
    assert rec["syncStatus"] == "failed"
    assert str(existing["betNr"]) in rec["syncErrorMessage"]
    assert rec["betnr"] is None and len(tb.advo.all()) == 1


async def test_create_mode_creates_without_looking(tb: Testbed) -> None:
    await _index(tb)
    tb.advo.seed(**ANNA_ADVO)
    tb.services.sync.creates.on_match = OnCreateMatch.CREATE
    tb.reset_calls()
    rec = await _staff_creates(tb)
    assert rec["syncStatus"] == "clean" and len(tb.advo.all()) == 2
    assert LIST not in _advo_calls(tb)


async def test_several_candidates_are_never_linked(tb: Testbed) -> None:
    await _index(tb)
    first, second = tb.advo.seed(**ANNA_ADVO), tb.advo.seed(**ANNA_ADVO)
    rec = await _staff_creates(tb)
    assert rec["syncStatus"] == "failed" and rec["betnr"] is None
    assert str(first["betNr"]) in rec["syncErrorMessage"] and str(second["betNr"]) in rec["syncErrorMessage"]
    assert len(tb.advo.all()) == 2


async def test_an_espocrm_duplicate_of_a_linked_record_is_not_created_twice(tb: Testbed) -> None:
    await _index(tb)
    original = await synced_record(tb)
    dup = await _staff_creates(tb)
    assert dup["syncStatus"] == "failed" and dup["betnr"] is None
    assert original["id"] in dup["syncErrorMessage"]
    assert len(tb.advo.all()) == 1


async def test_a_namesake_with_another_birth_date_is_created(tb: Testbed) -> None:
    await _index(tb)
    tb.advo.seed(**{**ANNA_ADVO, "geburtsdatum": "1981-04-12T00:00:00"})
    rec = await _staff_creates(tb)
    assert rec["syncStatus"] == "clean" and len(tb.advo.all()) == 2


async def test_without_the_index_or_the_list_endpoint_no_extra_read(tb: Testbed) -> None:
    tb.advo.seed(**ANNA_ADVO)
    tb.reset_calls()
    rec = await _staff_creates(tb)  # match never ran: no index, the create goes ahead as before
    assert rec["syncStatus"] == "clean" and LIST not in _advo_calls(tb)
    await _index(tb)
    tb.advo.set_list_endpoint(False)
    tb.reset_calls()
    other = await _staff_creates(tb, firstName="Berta", dateOfBirth="1970-01-01")
    assert other["syncStatus"] == "clean"
    assert _advo_calls(tb).get(LIST, 0) <= 1  # at most the one refused probe, and no lookup
