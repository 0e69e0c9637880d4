"""Hostile tests of issue 11's holds, declines and the create's index (through HTTP against both
simulators, on a real Redis): each xfail is a bug found, not fixed."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.match_declines import MatchDeclines
from onboarding.match_create_new import create_new
from sync.create_match import OnCreateMatch
from tests.conftest import SAMPLE
from tests.match_support import index_all as _index
from tests.match_support import staff_creates as _staff_creates
from tests.test_match_cli import _env, _match, _rows, _write
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]

ANNA_ADVO = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": SAMPLE["emailAddress"], "ort": "Berlin"}
NO_DOB = {"dateOfBirth": None}








async def _create_new(tb: Testbed, espo_id: str) -> tuple[bool, str]:
    s = tb.services
    return await create_new(s.espo, s.sync.creates.matcher, tb.host.emit, espo_id)


ANNA_AT_10115 = {**ANNA_ADVO, "plz": SAMPLE["addressPostalCode"]}


def _advo_count(tb: Testbed) -> int:
    return len(tb.advo.all())


@pytest.mark.parametrize("change", ["deleted", "no_longer_matching"])
async def test_a_hold_whose_candidate_is_gone_is_released_by_the_sync_check(firm: Testbed, change: str) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    rec = await _staff_creates(firm, **NO_DOB)
    assert rec["syncStatus"] == "failed" and f"betNr {existing['betNr']}" in rec["syncErrorMessage"]
    if change == "deleted":  # merged away in Advoware: the only reason for the hold is gone
        firm.advo.remove(existing["betNr"])
    else:  # Advoware learns her birth date and a new e-mail: a contradiction, no possible duplicate any more
        firm.advo.edit(existing["betNr"], geburtsdatum="1961-01-01T00:00:00", email="anna.alt@example.net")
    await firm.sync_check()
    await firm.flush()
    rec = firm.espo_record(rec["id"])
    assert f"betNr {existing['betNr']}" not in (rec["syncErrorMessage"] or ""), rec["syncErrorMessage"]
    assert rec["syncStatus"] == "clean" and rec["betnr"] is not None


async def test_namesakes_with_other_birth_dates_never_hold_the_create(firm: Testbed) -> None:
    for year in range(1950, 1957):  # seven "Anna Müller" in 10115 over the years, none born 1980-04-12
        firm.advo.seed(**{**ANNA_AT_10115, "email": None, "geburtsdatum": f"{year}-01-02T00:00:00"})
    await _index(firm)
    rec = await _staff_creates(firm, emailAddress=None)  # born 1980-04-12: none of them
    assert rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    assert rec["betnr"] is not None and _advo_count(firm) == 8


async def test_a_bulk_change_with_one_stamp_does_not_stop_the_index_for_good(firm: Testbed) -> None:
    await _index(firm)
    real_clock, stamp = firm.advo.store.clock, datetime.now().astimezone()
    firm.advo.store.clock = lambda: stamp  # a bulk update in Advoware: 201 rows in one transaction
    for i in range(201):
        firm.advo.seed(name=f"Bulk{i}", vorname="Otto", anrede="Herr", rechtsform="natürliche Person")
    firm.advo.store.clock = real_clock
    anna = firm.advo.seed(**ANNA_ADVO)  # entered in Advoware after the bulk change
    for first in ("Berta", "Clara", "Doris"):  # the following creates (the documented limit: they catch up)
        other = await _staff_creates(firm, firstName=first, emailAddress=f"{first.lower()}@example.org")
        assert other["syncStatus"] == "clean", other["syncErrorMessage"]
    await _anna_links_to(firm, anna)


async def test_a_held_record_links_when_staff_enter_the_named_betnr(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    rec = await _staff_creates(firm, **NO_DOB)
    assert rec["syncStatus"] == "failed" and rec["betnr"] is None
    firm.espo.user_edit(rec["id"], betnr=existing["betNr"])
    await firm.flush()
    await firm.flush()
    rec = firm.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"] == existing["betNr"], rec["syncErrorMessage"]
    assert _advo_count(firm) == 1


async def test_create_new_refuses_linked_unknown_and_path_ids_and_declines_nothing(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    linked = await _staff_creates(firm)  # a strong match: linked
    assert linked["betnr"] == existing["betNr"]
    store = firm.services.store
    declines = MatchDeclines(store.redis, store.prefix)
    for espo_id, why in ((linked["id"], "linked to betnr"), ("0000000000000000a", "no such EspoCRM record"),
                         ("../../Account", "invalid espo id")):
        ok, line = await _create_new(firm, espo_id)
        assert not ok and "not changed" in line and why in line, line
        assert await declines.of(espo_id) == set()
    assert _advo_count(firm) == 1 and firm.espo_record(linked["id"])["betnr"] == existing["betNr"]


async def test_twins_held_for_one_party_stay_held_for_the_one_created_by_create_new(firm: Testbed) -> None:
    x = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    twin = {k: v for k, v in SAMPLE.items() if k != "dateOfBirth"}
    a, b = firm.espo.seed(**twin), firm.espo.seed(**twin)  # entered twice at once, no birth date
    await firm.flush()
    await firm.flush()
    for rid in (a["id"], b["id"]):
        rec = firm.espo_record(rid)
        assert rec["syncStatus"] == "failed" and f"betNr {x['betNr']} (" in rec["syncErrorMessage"]
    ok, _ = await _create_new(firm, a["id"])
    assert ok and await firm.host.drain(30)
    created = firm.espo_record(a["id"])["betnr"]
    assert created not in (None, x["betNr"])
    firm.espo.user_edit(b["id"], addressStreet="Hauptstraße 2")  # staff touch the twin
    await firm.flush()
    await firm.flush()
    rb = firm.espo_record(b["id"])
    assert rb["syncStatus"] == "failed" and rb["betnr"] is None
    assert f"betNr {x['betNr']}, {created} (" in rb["syncErrorMessage"], rb["syncErrorMessage"]
    assert _advo_count(firm) == 2


async def test_an_nfd_family_name_links_like_the_nfc_one(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    rec = await _staff_creates(firm, lastName=unicodedata.normalize("NFD", " Müller "), firstName="ANNA")
    assert rec["betnr"] == existing["betNr"] and rec["syncStatus"] == "clean", rec["syncErrorMessage"]
    assert _advo_count(firm) == 1


async def test_a_no_row_for_a_held_record_releases_it(firm: Testbed, tmp_path: Path) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    rec = await _staff_creates(firm, **NO_DOB)  # serve runs: the record is held for betNr 10001
    assert rec["syncStatus"] == "failed" and f"betNr {existing['betNr']}" in rec["syncErrorMessage"]
    env, review = _env(firm, tmp_path), tmp_path / "match.csv"
    assert _match(env, tmp_path, "--out", str(review)).returncode == 0
    rows = _rows(review)
    assert [(r["espo_id"], r["betnr"]) for r in rows] == [(rec["id"], str(existing["betNr"]))], rows
    rows[0]["keep"] = "no"  # the operator: another Anna
    _write(review, rows)
    done = _match(env, tmp_path, "--apply", str(review), "--yes")
    assert done.returncode == 0 and "1 declined" in done.stdout, done.stdout + done.stderr
    await firm.sync_check()
    await firm.flush()
    rec = firm.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"] not in (None, existing["betNr"]), rec["syncErrorMessage"]
    assert _advo_count(firm) == 2


async def test_a_no_row_for_a_linked_pair_is_not_reported_declined_while_linked(firm: Testbed, tmp_path: Path) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    rec = firm.espo.seed(**{k: v for k, v in SAMPLE.items() if k != "dateOfBirth"})
    firm.espo.take_webhook_events()  # entered before the sync was installed
    env, review = _env(firm, tmp_path), tmp_path / "match.csv"
    assert _match(env, tmp_path, "--out", str(review)).returncode == 0
    rows = _rows(review)
    assert len(rows) == 1, rows
    rows[0]["keep"] = "yes"
    _write(review, rows)
    linked = _match(env, tmp_path, "--apply", str(review), "--yes")
    assert linked.returncode == 0 and "1 linked" in linked.stdout, linked.stdout + linked.stderr
    assert firm.espo_record(rec["id"])["betnr"] == existing["betNr"]
    rows[0]["keep"] = "no"  # on second thought: another Anna
    _write(review, rows)
    undo = _match(env, tmp_path, "--apply", str(review), "--yes")
    still = firm.espo_record(rec["id"])["betnr"] == existing["betNr"]
    assert not (still and "1 declined" in undo.stdout and undo.returncode == 0), undo.stdout


async def test_the_several_message_keeps_its_advice_with_many_candidates(firm: Testbed) -> None:
    authority = {"name": "Finanzamt Mitte", "anrede": "Firma", "rechtsform": "Behörde", "plz": "10179"}
    betnrs = {int(firm.advo.seed(**authority)["betNr"]) for _ in range(60)}  # entered again for each matter
    await _index(firm)
    rec = await _staff_creates(firm, lastName="Finanzamt Mitte", firstName=None, salutationName="Firma",
                               dateOfBirth=None, emailAddress=None, rechtsform="Behörde", addressPostalCode="10179")
    message = rec["syncErrorMessage"] or ""
    assert rec["syncStatus"] == "failed" and "several" in message, message
    named = {int(n) for n in re.findall(r"\b\d{3,}\b", message.split("betNr", 1)[1])}
    assert named <= betnrs, sorted(named - betnrs)
    assert "link one by entering its betNr" in message, message
    assert named == betnrs or "more" in message, message  # every candidate named, or "and N more"


async def test_a_party_entered_in_the_repeated_autumn_hour_is_found_by_the_create(firm: Testbed) -> None:
    store = firm.advo.store
    at = {"now": datetime(2026, 10, 25, 0, 0, tzinfo=UTC)}  # 02:00 CEST, the night summer time ends
    store.clock = lambda: at["now"]
    firm.advo.seed(name="Alt", vorname="Otto", anrede="Herr", rechtsform="natürliche Person")
    await _index(firm)
    at["now"] = datetime(2026, 10, 25, 0, 59, tzinfo=UTC)  # 02:59 CEST
    firm.advo.seed(name="Neu", vorname="Otto", anrede="Herr", rechtsform="natürliche Person")
    other = await _staff_creates(firm, firstName="Berta", emailAddress="berta@example.org")  # a create: refresh
    assert other["syncStatus"] == "clean", other["syncErrorMessage"]
    at["now"] = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, half an hour after 02:59 CEST
    anna = firm.advo.seed(**ANNA_ADVO)
    at["now"] = datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # the morning: staff enter her in EspoCRM
    await _anna_links_to(firm, anna)


async def test_twins_sent_to_create_new_at_once_make_one_party_and_hold_the_other(firm: Testbed) -> None:
    x = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    twin = {k: v for k, v in SAMPLE.items() if k != "dateOfBirth"}
    a, b = firm.espo.seed(**twin), firm.espo.seed(**twin)
    await firm.flush()
    await firm.flush()
    assert (await _create_new(firm, a["id"]))[0] and (await _create_new(firm, b["id"]))[0]
    assert await firm.host.drain(30)
    await firm.flush()
    ra, rb = firm.espo_record(a["id"]), firm.espo_record(b["id"])
    assert ra["syncStatus"] == "clean" and ra["betnr"] not in (None, x["betNr"])
    assert rb["syncStatus"] == "failed" and rb["betnr"] is None  # held for its twin's new party
    assert f"betNr {ra['betnr']} (" in rb["syncErrorMessage"], rb["syncErrorMessage"]
    assert _advo_count(firm) == 2


async def test_a_yes_row_links_a_held_record(firm: Testbed, tmp_path: Path) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    rec = await _staff_creates(firm, **NO_DOB)
    assert rec["syncStatus"] == "failed"
    env, review = _env(firm, tmp_path), tmp_path / "match.csv"
    assert _match(env, tmp_path, "--out", str(review)).returncode == 0
    rows = _rows(review)
    rows[0]["keep"] = "yes"
    _write(review, rows)
    done = _match(env, tmp_path, "--apply", str(review), "--yes")
    assert done.returncode == 0 and "1 linked" in done.stdout, done.stdout + done.stderr
    await firm.flush()
    await firm.sync_check()
    rec = firm.espo_record(rec["id"])
    assert rec["syncStatus"] == "clean" and rec["betnr"] == existing["betNr"], rec["syncErrorMessage"]
    assert _advo_count(firm) == 1


async def test_after_the_advised_merge_in_advoware_the_record_links_to_the_one_left(firm: Testbed) -> None:
    copies = [int(firm.advo.seed(**ANNA_ADVO)["betNr"]) for _ in range(6)]  # Anna entered six times in Advoware
    await _index(firm)
    rec = await _staff_creates(firm)
    assert rec["syncStatus"] == "failed" and "several" in rec["syncErrorMessage"], rec["syncErrorMessage"]
    kept, *merged = copies
    for betnr in merged:  # the message's advice: merge the duplicates in Advoware
        firm.advo.remove(betnr)
    await _index(firm)  # and `match` runs again, for good measure
    firm.espo.user_edit(rec["id"], addressStreet="Hauptstraße 2")  # staff touch the record
    await firm.flush()
    await firm.flush()
    rec = firm.espo_record(rec["id"])
    assert not any(str(b) in (rec["syncErrorMessage"] or "") for b in merged), rec["syncErrorMessage"]
    assert rec["betnr"] == kept and rec["syncStatus"] == "clean", rec["syncErrorMessage"]


@pytest.mark.parametrize(("mode", "held"), [(OnCreateMatch.ASK, True), (OnCreateMatch.CREATE, False)])
async def test_a_possible_duplicate_is_held_in_ask_mode_and_created_in_create_mode(
        firm: Testbed, mode: OnCreateMatch, held: bool) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    firm.services.sync.creates.on_match = mode
    rec = await _staff_creates(firm, **NO_DOB)
    if held:
        assert rec["syncStatus"] == "failed" and rec["betnr"] is None
        assert f"enter {existing['betNr']} in betnr to link it" in rec["syncErrorMessage"]
        assert _advo_count(firm) == 1
    else:
        assert rec["syncStatus"] == "clean" and rec["betnr"] not in (None, existing["betNr"])
        assert _advo_count(firm) == 2


async def test_a_placeholder_postcode_never_links_two_companies(firm: Testbed) -> None:
    hamburg = firm.advo.seed(name="Müller GmbH", anrede="Firma", rechtsform="GmbH", plz="00000", ort="Hamburg")
    await _index(firm)
    rec = await _staff_creates(firm, lastName="Müller GmbH", firstName=None, salutationName="Firma",
                               rechtsform="GmbH", dateOfBirth=None, emailAddress=None,
                               addressPostalCode="00000", addressCity="München")
    assert rec["betnr"] != hamburg["betNr"], rec["syncErrorMessage"]
    assert rec["syncStatus"] == "clean" and _advo_count(firm) == 2


async def test_a_second_first_name_is_never_created_again_in_advoware(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_AT_10115)
    await _index(firm)
    rec = await _staff_creates(firm, firstName="Anna Maria")  # everything else as Advoware has her
    assert rec["betnr"] in (None, existing["betNr"]), rec["syncErrorMessage"]
    assert _advo_count(firm) == 1


async def test_twins_entered_at_once_create_one_beteiligter(firm_both: Testbed) -> None:
    firm_both.advo.seed(name="Alt", vorname="Otto", anrede="Herr", rechtsform="natürliche Person")
    await _index(firm_both)
    late = await _staff_creates(firm_both, firstName="Berta")  # one after the other: the twin is held
    again = await _staff_creates(firm_both, firstName="Berta")
    assert late["syncStatus"] == "clean" and again["syncStatus"] == "failed", again["syncErrorMessage"]
    ids = [firm_both.espo.seed(**SAMPLE)["id"] for _ in range(3)]  # at once: the same webhook batch
    await firm_both.flush()
    await firm_both.flush()
    created = {firm_both.espo_record(i)["betnr"] for i in ids} - {None}
    assert len(created) == 1, created
    assert _advo_count(firm_both) == 3  # Otto, Berta, Anna


async def test_a_betnr_linked_to_another_record_is_not_linked_again_by_hand(firm_both: Testbed) -> None:
    existing = firm_both.advo.seed(**ANNA_ADVO)
    await _index(firm_both)
    first = await _staff_creates(firm_both)
    twin = await _staff_creates(firm_both)
    assert first["betnr"] == existing["betNr"] and twin["syncStatus"] == "failed"
    assert f"already linked to EspoCRM record {first['id']}" in twin["syncErrorMessage"]
    firm_both.espo.user_edit(twin["id"], betnr=existing["betNr"])  # staff copy the betNr from the message
    await firm_both.flush()
    await firm_both.flush()
    twin, first = firm_both.espo_record(twin["id"]), firm_both.espo_record(first["id"])
    assert first["betnr"] == existing["betNr"] and first["syncStatus"] == "clean"
    assert twin["syncStatus"] != "clean", "two EspoCRM records linked to one Beteiligter"
    assert await firm_both.services.store.betnr_owner(existing["betNr"]) == first["id"]


async def test_a_hold_never_advises_linking_a_beteiligter_linked_elsewhere(firm: Testbed) -> None:
    existing = firm.advo.seed(**ANNA_ADVO)
    await _index(firm)
    first = await _staff_creates(firm)  # name + birth date: linked
    assert first["betnr"] == existing["betNr"]
    twin = await _staff_creates(firm, **NO_DOB)  # the same Anna entered again, without her birth date
    message = twin["syncErrorMessage"] or ""
    assert twin["syncStatus"] == "failed" and str(existing["betNr"]) in message, message
    assert f"enter {existing['betNr']} in betnr to link it" not in message, message
    assert first["id"] in message, message  # names the record it is linked to, as the strong path does


async def _anna_links_to(firm: Testbed, anna: dict[str, Any]) -> None:
    """Staff enter Anna Müller, born 1980-04-12 (a strong, unique match): linked to ``anna``, nothing created."""
    before = _advo_count(firm)
    rec = await _staff_creates(firm)
    assert rec["betnr"] == anna["betNr"], (rec["betnr"], rec["syncErrorMessage"])
    assert _advo_count(firm) == before
