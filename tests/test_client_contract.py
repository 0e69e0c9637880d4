"""One contract, two implementations (vdirsyncer's storage-test pattern): every test runs against
the production HTTP client talking to a simulator over real HTTP, and against the in-memory fake
over the same simulator. Both must answer alike: the same values, the same errors with the same text
and details, the same counted calls. Tests that use the fakes rely on this module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.errors import (
    AuthenticationError,
    BadResponseError,
    DeferredError,
    ForbiddenError,
    NotFoundError,
    ReferencedError,
    RetryableError,
    StaleWriteError,
    ValidationError,
)
from config.advoware_profile import PutAnswer, load_profile
from simulators.espocrm.fields import GERMAN_SALUTATIONS
from simulators.espocrm.profiles import Profile
from simulators.faults import FaultRule
from tests.fakes.backends import (
    ADMIN_KEY,
    Backend,
    Kind,
    Servers,
    advo_row,
    counted,
    error_facts,
    espo_row,
    make_backend,
    shared_servers,
)

E = "CBeteiligte"
PERSON = {"salutationName": "Ms.", "firstName": "Anna", "lastName": "Müller", "phoneNumber": "+49 30 1234567",
          "dateOfBirth": "1980-04-12", "addressCity": "Berlin"}
PARTY = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "geburtsdatum": "1980-04-12T00:00:00",
         "ort": "Berlin", "kurzname": "MÜLLER"}


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with shared_servers() as s:
        yield s


@pytest.fixture(params=list(Kind))
async def b(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[Backend]:
    backend = make_backend(request.param, servers)
    yield backend
    await backend.aclose()


# The Advoware tests also run over the wire of the two other shipped profiles (issue 21): PascalCase with
# an object PUT answer and no rowId from POST; no list endpoint, an empty PUT answer, offsets in stamps.
ADVO_BACKENDS = [(Kind.HTTP, "default"), (Kind.FAKE, "default"), (Kind.HTTP, "pascal-object"),
                 (Kind.HTTP, "no-list")]


@pytest.fixture(params=ADVO_BACKENDS, ids=[f"{k}-{p}" for k, p in ADVO_BACKENDS])
async def ab(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[Backend]:
    kind, name = request.param
    backend = make_backend(kind, servers, None if kind == Kind.FAKE else load_profile(name))
    yield backend
    await backend.aclose()


def resource(ab: Backend) -> str:
    """The counted path of the Beteiligte resource in the backend's profile."""
    return "/" + ab.advo_sim.profile.resource_path


# -- EspoCRM --------------------------------------------------------------------------------------
async def test_espo_create_answers_the_stored_record_with_phone_normalised(b: Backend):
    rec = await b.espo.create(E, PERSON)
    assert len(rec["id"]) == 17 and rec["phoneNumber"] == "+49301234567" and rec["name"] == "Anna Müller"
    assert rec["syncStatus"] == "pending_sync" and "versionNumber" not in rec  # OCC off by default
    assert await b.espo.get(E, rec["id"]) == rec == b.espo_sim.get(rec["id"])
    assert counted(b, "espo") == {"POST /api/v1/CBeteiligte": 1, "GET /api/v1/CBeteiligte/{id}": 1}


async def test_espo_validation_failures_name_field_and_type_and_change_nothing(b: Backend):
    for data, field, kind in [({"firstName": "X"}, "lastName", "required"),
                              ({**PERSON, "salutationName": "Herr"}, "salutationName", "valid"),
                              ({**PERSON, "dateOfBirth": "1980-02-30"}, "dateOfBirth", "valid")]:
        with pytest.raises(ValidationError) as caught:
            await b.espo.create(E, data)
        assert error_facts(caught.value) == (
            ValidationError, f"espocrm: HTTP 400: Field validation failure; entityType: {E}, field: {field}, "
                             f"type: {kind}.", 400,
            {"messageTranslation": {"label": "validationFailure", "scope": None,
                                    "data": {"field": field, "type": kind}}})
    assert b.espo_sim.all() == []
    b.espo_sim.set_salutation_options(GERMAN_SALUTATIONS)
    assert (await b.espo.create(E, {**PERSON, "salutationName": "Herr"}))["salutationName"] == "Herr"


async def test_espo_update_is_partial_and_ignores_system_attributes(b: Backend):
    rec = await b.espo.create(E, PERSON)
    after = await b.espo.update(E, rec["id"], {"addressCity": "Köln", "modifiedAt": "2000-01-01 00:00:00",
                                              "versionNumber": 99, "unknownThing": 1})
    assert after["addressCity"] == "Köln" and after["firstName"] == "Anna"
    assert after["modifiedAt"] != "2000-01-01 00:00:00" and "versionNumber" not in after


async def test_espo_without_occ_a_stale_version_overwrites(b: Backend):
    rec = await b.espo.create(E, PERSON)
    b.espo_sim.user_edit(rec["id"], addressCity="Bonn")
    after = await b.espo.update(E, rec["id"], {"addressCity": "Köln"}, version_number=1)
    assert after["addressCity"] == "Köln"


async def test_espo_with_occ_a_stale_version_changing_a_moved_field_is_409(b: Backend):
    b.espo_sim.set_occ(True)
    rec = await b.espo.create(E, PERSON)
    assert rec["versionNumber"] == 1
    b.espo_sim.user_edit(rec["id"], addressCity="Bonn")
    with pytest.raises(StaleWriteError) as caught:
        await b.espo.update(E, rec["id"], {"addressCity": "Köln"}, version_number=1)
    assert error_facts(caught.value) == (StaleWriteError, "espocrm: HTTP 409: modified", 409,
                                         {"values": {"addressCity": "Bonn"}, "versionNumber": 2})
    same = await b.espo.update(E, rec["id"], {"addressCity": "Bonn"}, version_number=1)  # changes nothing
    assert same["versionNumber"] == 2
    assert (await b.espo.update(E, rec["id"], {"addressCity": "Köln"}, version_number=2))["versionNumber"] == 3


@pytest.mark.parametrize("profile", [Profile.V8, Profile.V9])
async def test_espo_occ_check_and_write_are_two_steps_a_save_between_is_overwritten(b: Backend, profile: Profile):
    """Issue 17 item 6: EspoCRM compares the version in PHP, then saves without a condition. A person
    saving with the same current version between our check and our write: both answer 200."""
    b.espo_sim.set_profile(profile)
    b.espo_sim.set_occ(True)
    rec = await b.espo.create(E, PERSON)
    b.espo_sim.between_check_and_write(lambda: b.espo_sim.user_edit(rec["id"], addressCity="Bonn"))
    after = await b.espo.update(E, rec["id"], {"addressCity": "Köln"}, version_number=1)
    assert (after["addressCity"], after["versionNumber"]) == ("Köln", 3)  # the person's save is gone


async def test_espo_stream_shows_who_changed_an_audited_field_from_what_to_what(b: Backend):
    b.espo_sim.set_audited(["addressCity"])
    rec = await b.espo.create(E, PERSON)
    b.espo_sim.user_edit(rec["id"], addressCity="Bonn", firstName="Anne")  # firstName is not audited
    await b.espo.update(E, rec["id"], {"addressCity": "Köln"})
    await b.espo.post_note(E, rec["id"], "Hallo")
    notes = await b.espo.stream(E, rec["id"], max_size=5)
    assert [n["type"] for n in notes] == ["Post", "Update", "Update"]  # newest first
    ours, person = notes[1], notes[2]
    assert (ours["createdById"], ours["data"]) == (b.espo_sim.api_user_id, {
        "fields": ["addressCity"], "attributes": {"was": {"addressCity": "Bonn"}, "became": {"addressCity": "Köln"}}})
    assert person["createdById"] == b.espo_sim.ui_user_id
    assert person["data"]["attributes"]["became"] == {"addressCity": "Bonn"}
    assert b.espo_sim.notes_for(rec["id"]) == [notes[0]]  # the posts only
    meta = await b.espo.get_raw("Metadata")
    assert meta["entityDefs"][E]["fields"]["addressCity"].get("audited") is True
    with pytest.raises(NotFoundError):
        await b.espo.stream(E, "0123456789abcdef0")


async def test_espo_missing_and_deleted_records_are_404_but_an_admin_sees_deleted(b: Backend):
    with pytest.raises(NotFoundError) as caught:
        await b.espo.get(E, "0123456789abcdef0")
    assert error_facts(caught.value) == (NotFoundError, "espocrm: HTTP 404: Record 0123456789abcdef0 does not "
                                                        "exist.", 404, {})
    rec = await b.espo.create(E, PERSON)
    assert await b.espo.delete(E, rec["id"]) is None
    for call in (b.espo.get(E, rec["id"]), b.espo.delete(E, rec["id"]), b.espo.update(E, rec["id"], {})):
        with pytest.raises(NotFoundError):
            await call
    admin = b.espo_as(ADMIN_KEY)
    assert (await admin.get(E, rec["id"]))["deleted"] is True
    await admin.aclose()


async def test_espo_list_filters_orders_selects_and_pages(b: Backend):
    for i, city in enumerate(["Bonn", "Köln", "Berlin", None]):
        await b.espo.create(E, {"lastName": f"P{i}", "addressCity": city, "betnr": 100 + i if i % 2 else None})
    page = await b.espo.list(E, where=[{"type": "isNotNull", "attribute": "addressCity"}],
                             select=["lastName", "addressCity"], order_by="addressCity", max_size=2)
    assert page == {"total": 3, "list": [{"id": page["list"][0]["id"], "lastName": "P2", "addressCity": "Berlin"},
                                         {"id": page["list"][1]["id"], "lastName": "P0", "addressCity": "Bonn"}]}
    linked = [r["lastName"] async for r in b.espo.iter_list(
        E, where=[{"type": "or", "value": [{"type": "isNull", "attribute": "betnr"},
                                           {"type": "greaterThan", "attribute": "betnr", "value": 102}]}],
        page_size=1)]
    assert linked == ["P0", "P2", "P3"]


async def test_espo_list_refuses_big_pages_and_unknown_attributes(b: Backend):
    with pytest.raises(ForbiddenError) as caught:
        await b.espo.list(E, max_size=201)
    assert caught.value.status == 403
    with pytest.raises(ValidationError) as bad:
        await b.espo.list(E, where=[{"type": "equals", "attribute": "nope", "value": "x"}])
    assert str(bad.value) == "espocrm: HTTP 400: Bad where item: unknown attribute …."


async def test_espo_notes_need_an_existing_parent(b: Backend):
    rec = await b.espo.create(E, PERSON)
    note = await b.espo.post_note(E, rec["id"], "Hallo **Team**")
    assert note["post"] == "Hallo **Team**" and b.espo_sim.notes_for(rec["id"]) == [note]
    with pytest.raises(NotFoundError):
        await b.espo.post_note(E, "0123456789abcdef0", "x")


async def test_espo_tells_its_user_and_metadata(b: Backend):
    user = await b.espo.get_raw("App/user")
    assert user["user"]["id"] == b.espo_sim.api_user_id and user["user"]["type"] == "api"
    meta = await b.espo.get_raw("Metadata")
    assert meta["entityDefs"][E]["optimisticConcurrencyControl"] is False
    assert meta["entityDefs"][E]["fields"]["salutationName"]["options"] == ["", "Mr.", "Ms.", "Mrs.", "Dr."]


async def test_espo_webhooks_and_the_events_our_writes_queue(b: Backend):
    b.espo_sim.set_profile(Profile.V8)
    hook = await b.espo.register_webhook(f"{E}.update", "http://sync.test/hook", skip_own=True)
    assert len(hook["secretKey"]) == 32 and "skipOwn" not in hook  # 8.1.5 drops the option
    rec = await b.espo.create(E, PERSON)
    await b.espo.update(E, rec["id"], {"addressCity": "Berlin"})  # a no-op save still counts on 8.x
    (_, items), = b.espo_sim.take_webhook_events()
    assert [i["id"] for i in items] == [rec["id"]] and items[0]["modifiedById"] == b.espo_sim.api_user_id
    with pytest.raises(ValidationError):
        await b.espo.register_webhook("Account.update", "http://sync.test/hook")


async def test_espo_wrong_key_and_bad_ids(b: Backend):
    stranger = b.espo_as("not-a-key")
    with pytest.raises(AuthenticationError):
        await stranger.get(E, "0123456789abcdef0")
    await stranger.aclose()
    with pytest.raises(ValidationError) as caught:
        await b.espo.get(E, "..")
    assert "dot segment" in str(caught.value)
    assert counted(b, "espo") == {"GET /api/v1/CBeteiligte/{id}": 1}  # the bad id never left


async def test_espo_injected_faults(b: Backend):
    rec = await b.espo.create(E, PERSON)
    b.espo_sim.faults.add(method="GET", path=r"/CBeteiligte/", status=503, retry_after=42)
    with pytest.raises(DeferredError) as deferred:
        await b.espo.get(E, rec["id"])
    assert (deferred.value.retry_after, str(deferred.value)) == (42, "espocrm: HTTP 503: service unavailable")
    b.espo_sim.faults.add(method="GET", status=200, body="<html>maintenance</html>")
    with pytest.raises(BadResponseError):
        await b.espo.get(E, rec["id"])
    seen: list[str] = []
    b.espo_sim.faults.add(FaultRule(method="PUT", path=r"/CBeteiligte/", status=500,
                                    before=lambda: seen.append("before")))
    with pytest.raises(RetryableError) as failed:
        await b.espo.update(E, rec["id"], {"addressCity": "Köln"})
    assert (str(failed.value), seen) == ("espocrm: HTTP 500: server error", ["before"])
    assert espo_row(b, rec["id"])["addressCity"] == "Berlin"


async def test_espo_a_lost_answer_times_out_but_the_write_landed(b: Backend):
    rec = await b.espo.create(E, PERSON)
    b.espo_sim.faults.add(method="PUT", path=r"/CBeteiligte/", delay=4.0, lose_answer=True)
    with pytest.raises(RetryableError) as caught:
        await b.espo.update(E, rec["id"], {"addressCity": "Köln"})
    assert str(caught.value) == f"espocrm: PUT CBeteiligte/{rec['id']}: timeout"
    assert espo_row(b, rec["id"])["addressCity"] == "Köln"


# -- Advoware -------------------------------------------------------------------------------------
async def test_advo_create_fills_every_writable_field_and_stamps_berlin_time(ab: Backend):
    created = await ab.advo.create_beteiligter(PARTY)
    assert created["betNr"] == 10001 and created["rowId"] and created["telefon"] is None
    assert created["geaendertAm"] == created["angelegtAm"] and created["geaendertAm"].startswith("2026-07-01T12:00")
    assert await ab.advo.get_beteiligter(10001) == created == ab.advo_sim.get(10001)


async def test_advo_create_without_row_id_in_the_answer_costs_one_get(ab: Backend):
    ab.advo_sim.set_post_returns_rowid(False)
    created = await ab.advo.create_beteiligter(PARTY)
    assert created["rowId"] == advo_row(ab, created["betNr"])["rowId"]
    assert counted(ab, "advo") == {f"POST {resource(ab)}": 1, f"GET {resource(ab)}/{{id}}": 1}


async def test_advo_put_replaces_fully_and_needs_the_current_row_id(ab: Backend):
    created = await ab.advo.create_beteiligter(PARTY)
    ab.advo_sim.calls.reset()
    updated = await ab.advo.update_beteiligter(10001, {"name": "Meier", "rowId": created["rowId"]})
    read_after_put = ab.advo_sim.profile.put_answer == PutAnswer.NONE  # an empty PUT answer: one GET
    assert counted(ab, "advo") == {f"PUT {resource(ab)}/{{id}}": 1, **({f"GET {resource(ab)}/{{id}}": 1}
                                                                       if read_after_put else {})}
    assert updated == advo_row(ab, 10001)
    assert updated["name"] == "Meier" and updated["vorname"] is None and updated["kurzname"] is None
    assert updated["rowId"] != created["rowId"]
    for row_id, word in [(created["rowId"], "stale"), (None, "missing")]:
        with pytest.raises(StaleWriteError) as caught:
            await ab.advo.update_beteiligter(10001, {"name": "X", "rowId": row_id})
        assert str(caught.value) == (f"advoware: HTTP 409: PUT Beteiligte/{{betNr}}: rowId is {word}: "
                                     "Beteiligter … was changed in between; read it again")
    assert advo_row(ab, 10001)["name"] == "Meier"


async def test_advo_validation_and_missing_records(ab: Backend):
    profile = ab.advo_sim.profile
    bad_date = f"{profile.wire_name('geburtsdatum')} must have the form {profile.geburtsdatum_format.human()}"
    required = f"{profile.wire_name('name')} is required"
    for body, text in [({"vorname": "X"}, required), ({"name": "X", "geburtsdatum": "1980/04/12"}, bad_date)]:
        with pytest.raises(ValidationError) as caught:
            await ab.advo.create_beteiligter(body)
        assert str(caught.value) == f"advoware: HTTP 400: POST Beteiligte: {text}"
    with pytest.raises(NotFoundError) as missing:
        await ab.advo.get_beteiligter(4242)
    assert error_facts(missing.value) == (
        NotFoundError, "advoware: HTTP 404: GET Beteiligte/{betNr}: Beteiligter … does not exist.", 404,
        {"type": "about:blank", "title": "Not Found", "detail": "Beteiligter … does not exist."})
    with pytest.raises(ValidationError):
        await ab.advo.get_beteiligter(0)
    assert ab.advo_sim.all() == []


async def test_advo_delete_and_a_referenced_beteiligter(ab: Backend):
    one, two = [await ab.advo.create_beteiligter({**PARTY, "name": n}) for n in ("Eins", "Zwei")]
    ab.advo_sim.set_referenced(two["betNr"])
    assert await ab.advo.delete_beteiligter(one["betNr"]) is None
    with pytest.raises(NotFoundError):
        await ab.advo.delete_beteiligter(one["betNr"])
    with pytest.raises(ReferencedError) as caught:
        await ab.advo.delete_beteiligter(two["betNr"])
    assert caught.value.status == 409 and ab.advo_sim.get(two["betNr"]) is not None


async def test_advo_list_orders_by_change_pages_and_filters_in_local_time(ab: Backend):
    if not ab.advo_sim.profile.has_list:
        pytest.skip("this profile has no list endpoint (test_advo_without_the_list_endpoint)")
    first = await ab.advo.create_beteiligter({"name": "Eins"})
    ab.clock.advance(hours=1)
    second = await ab.advo.create_beteiligter({"name": "Zwei"})
    ab.advo_sim.edit(first["betNr"], ort="Bonn")
    names = [p["name"] async for p in ab.advo.iter_beteiligte(page_size=1)]
    assert names == ["Zwei", "Eins"]
    since = datetime(2026, 7, 1, 10, 30, tzinfo=UTC)  # 12:30 in Berlin: after the first create
    assert [p["betNr"] for p in await ab.advo.list_beteiligte(geaendert_seit=since)] == [
        second["betNr"], first["betNr"]]
    assert await ab.advo.list_beteiligte(geaendert_seit=since + timedelta(hours=2)) == []
    assert await ab.advo.supports_list() is True


async def test_advo_without_the_list_endpoint(ab: Backend):
    ab.advo_sim.set_list_endpoint(False)
    assert await ab.advo.supports_list() is False
    with pytest.raises(NotFoundError):
        await ab.advo.list_beteiligte()


async def test_advo_injected_faults(ab: Backend):
    created = await ab.advo.create_beteiligter(PARTY)
    ab.advo_sim.faults.add(method="GET", path=r"/Beteiligte/\d+$", status=429, retry_after=3)
    with pytest.raises(DeferredError) as deferred:
        await ab.advo.get_beteiligter(created["betNr"])
    assert (deferred.value.retry_after, str(deferred.value)) == (
        3, "advoware: HTTP 429: GET Beteiligte/{betNr}: simulated fault (HTTP 429)")
    ab.advo_sim.faults.add(method="GET", path=r"/Beteiligte/\d+$", status=401, times=1)
    assert (await ab.advo.get_beteiligter(created["betNr"]))["betNr"] == created["betNr"]  # renewed once
    ab.advo_sim.faults.add(method="GET", path=r"/Beteiligte/\d+$", status=401, times=2)
    with pytest.raises(AuthenticationError):
        await ab.advo.get_beteiligter(created["betNr"])
    ab.advo_sim.faults.add(method="DELETE", status=500)
    with pytest.raises(RetryableError) as failed:
        await ab.advo.delete_beteiligter(created["betNr"])
    assert str(failed.value) == "advoware: HTTP 500: DELETE Beteiligte/{betNr}: simulated fault (HTTP 500)"
    assert ab.advo_sim.get(created["betNr"]) is not None


async def test_advo_a_create_whose_answer_was_lost_still_landed(ab: Backend):
    ab.advo_sim.faults.add(method="POST", path=r"/Beteiligte$", delay=4.0, lose_answer=True)
    with pytest.raises(RetryableError) as caught:
        await ab.advo.create_beteiligter(PARTY)
    assert str(caught.value) == "advoware: POST Beteiligte: timed out"
    assert [p["name"] for p in ab.advo_sim.all()] == ["Müller"]
