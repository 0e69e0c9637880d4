"""Hostile tests of the Advoware wire profiles (issue 21, items 2 and 3), as a firm's IT person writes
a profile and as a real Advoware that differs from the simulator answers: each test is a defect found
and fixed."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from adapters import advoware_listing
from config.advoware_dates import DatePattern
from config.advoware_profile import SHIPPED, ProfileError, load_profile
from config.settings import Settings
from entrypoints.serve_settings import publish_loop, refusal
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle, serve_in_thread
from simulators.faults import FaultRule
from tests.test_advoware_api import make_api
from tests.test_doctor_advoware import PERSON, apply, assert_read_only_and_private, doctor

BOM = b"\xef\xbb\xbf"


def write(tmp_path: Path, text: str, name: str = "firm.toml", prefix: bytes = b"") -> str:
    path = tmp_path / name
    path.write_bytes(prefix + text.encode())
    load_profile.cache_clear()
    return str(path)


def test_a_profile_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    """Windows editors (Notepad before 2019, PowerShell's Out-File) save UTF-8 with a BOM: tomllib then
    said 'not TOML (Invalid statement (at line 1, column 1))' about a correct file."""
    path = write(tmp_path, 'casing = "pascal"\r\nput_answer = "object"\r\n', prefix=BOM)
    profile = load_profile(path)
    assert profile.wire_name("betNr") == "BetNr" and profile.put_answer == "object"


def test_two_fields_whose_wire_names_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    """A .NET Advoware binds JSON properties case-insensitively: BetNr and betnr are one property there,
    so rowId = "betnr" beside betNr = "BetNr" would write the row version into the key."""
    path = write(tmp_path, '[fields]\nbetNr = "BetNr"\nrowId = "betnr"\n')
    with pytest.raises(ProfileError, match=r"firm\.toml:3: rowId: rowId and betNr would both be 'betnr' "
                                           r"on the wire \(Advoware does not tell BetNr from betnr\)"):
        load_profile(path)


@pytest.mark.parametrize("value", ['""', '"/"', '" "'])
def test_an_empty_list_endpoint_is_refused_not_taken_as_none(tmp_path: Path, value: str) -> None:
    """list_endpoint = "" silently turned the change feed off (as false does), without a word."""
    path = write(tmp_path, f'casing = "camel"\nlist_endpoint = {value}\n')
    with pytest.raises(ProfileError, match=r"firm\.toml:2: list_endpoint: is empty: true, false or the list's "
                                           "path"):
        load_profile(path)


def test_a_shipped_profile_named_with_its_file_suffix_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ADVOWARE_PROFILE=pascal-object.toml (the file's name as ls shows it) was 'cannot be read'."""
    monkeypatch.chdir(tmp_path)
    load_profile.cache_clear()
    assert load_profile("pascal-object.toml").source == str(SHIPPED / "pascal-object.toml")
    (tmp_path / "pascal-object.toml").write_text('casing = "camel"\n')  # a file of that name here wins
    load_profile.cache_clear()
    assert load_profile("pascal-object.toml").casing == "camel"


@pytest.fixture
def offset_sim(tmp_path: Path) -> Iterator[tuple[AdvowareSimulator, ServerHandle]]:
    """An Advoware whose geaendertAm carries its offset (%z), with the list endpoint, on the night the
    clocks went forward (2026-03-29, 02:00 CET → 03:00 CEST)."""
    text = (SHIPPED / "default.toml").read_text().replace(
        'geaendert_am_format = "%Y-%m-%dT%H:%M:%S.%3f"', 'geaendert_am_format = "%Y-%m-%dT%H:%M:%S.%3f%z"')
    profile = load_profile(write(tmp_path, text + '\n'))
    assert "%z" in profile.geaendert_am_format.pattern
    now = [datetime(2026, 3, 29, 1, 0, 5, tzinfo=UTC)]  # 03:00:05 CEST, five seconds after the jump
    sim = AdvowareSimulator(profile=profile, clock=lambda: now[0])
    handle = serve_in_thread(sim.app)
    try:
        yield sim, handle
    finally:
        handle.stop()


async def test_a_since_in_the_hour_the_clocks_skip_loses_no_row(
        offset_sim: tuple[AdvowareSimulator, ServerHandle]) -> None:
    """The feed reads from its watermark minus 30 s as a naive local time: 03:00:05 − 30 s = 02:59:35, a
    wall time that does not exist that night. With %z the client sent it as 02:59:35+01:00 (= 03:59:35
    CEST): an hour later than meant, so every change of that hour was skipped by the feed."""
    sim, handle = offset_sim
    row = sim.seed(name="Frühling")
    assert row["geaendertAm"] == "2026-03-29T03:00:05.000"
    api = make_api(sim, handle.url, timeout=2.0, profile=sim.profile)
    try:
        got = await api.list_beteiligte(geaendert_seit=datetime(2026, 3, 29, 2, 59, 35))
        assert [r["betNr"] for r in got] == [row["betNr"]]
        # the hour the clocks repeat (October): the earlier of the two instants, never the later
        got = await api.list_beteiligte(geaendert_seit=datetime(2025, 10, 26, 2, 30))
        assert [r["betNr"] for r in got] == [row["betNr"]]
    finally:
        await api.aclose()


def capped(app: Any, take: str, most: int) -> Any:
    """An Advoware that answers at most ``most`` rows a page whatever ``take`` asks, without an error (as
    many list APIs cap their page size)."""
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            query = [(k, str(min(int(v), most)) if k == take and v.isdigit() else v)
                     for k, v in parse_qsl(scope["query_string"].decode())]
            scope = {**scope, "query_string": urlencode(query).encode()}
        await app(scope, receive, send)
    return wrapped


def test_doctor_names_a_page_size_the_advoware_silently_caps(tmp_path: Path) -> None:
    """list_max_take = 200 against an Advoware that answers 2 rows a page: doctor said every line
    passes, and the match index and the sync check then took the first short page for the end of the list
    (the index missed all other parties: a create would not find its twin)."""
    sim = AdvowareSimulator(profile=load_profile("default"))
    for i in range(5):
        sim.seed(**{**PERSON, "kurzname": f"Z{i}"})
    handle = serve_in_thread(capped(sim.app, "take", 2))
    try:
        run = doctor(sim, handle.url, "default", tmp_path)
        assert run.returncode == 1, run.stdout + run.stderr
        assert ("✗ list page of 200: GET api/v1/advonet/Beteiligte answers at most 2 rows a page, not 200 (the sync "
                "would take a short page for the end of the list) → list_max_take = 2") in run.stdout, run.stdout
        keys = next(line for line in run.stdout.splitlines() if line.startswith("✗ profile keys to change: "))
        assert keys == "✗ profile keys to change: list_max_take = 2"
        assert_read_only_and_private(sim, run.stdout)
        copy = tmp_path / "firm.toml"
        copy.write_text(apply(["list_max_take = 2"]))
        again = doctor(sim, handle.url, str(copy), tmp_path)
        assert again.returncode == 0 and "✓ list page of 2: accepted and answered in full" in again.stdout, again.stdout
    finally:
        handle.stop()


async def test_a_command_beside_serve_with_the_same_profile_in_other_words_is_not_refused(tmp_path: Path) -> None:
    """serve and a CLI command compared ADVOWARE_PROFILE by the file's bytes: a copy without its comments
    (or with CRLF line ends, as a Windows editor saves it) was refused as 'other contents', though every
    request is the same. What counts is what the profile says; a change of meaning is still refused."""
    redis = fakeredis.FakeAsyncRedis()
    stop = asyncio.Event()
    serve = Settings(_env_file=None)  # type: ignore[call-arg]  # the default profile
    loop = asyncio.create_task(publish_loop(redis, "bsync", serve, 0.05, stop))
    await asyncio.sleep(0.02)
    try:
        default = (SHIPPED / "default.toml").read_text()
        bare = "\r\n".join(line for line in default.splitlines() if line and not line.startswith("#"))
        for text in (bare, 'casing = "camel"\n'):  # no comments, CRLF; only what differs from the default
            here = serve.model_copy(update={"advoware_profile": write(tmp_path, text)})
            assert await refusal(redis, "bsync", here) is None, text
        other = serve.model_copy(update={"advoware_profile": write(tmp_path, bare.replace('"array"', '"object"'))})
        line = await refusal(redis, "bsync", other)
        assert line is not None and "ADVOWARE_PROFILE has other contents in serve than here" in line
    finally:
        stop.set()
        await asyncio.wait_for(loop, 2)


@pytest.fixture
def served() -> Iterator[tuple[AdvowareSimulator, ServerHandle]]:
    sim = AdvowareSimulator(profile=load_profile("default"))
    sim.seed(**PERSON)
    handle = serve_in_thread(sim.app)
    try:
        yield sim, handle
    finally:
        handle.stop()


def test_doctor_on_a_list_whose_betnr_is_text_checks_that_item_and_never_says_the_profile_fits(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    """An Advoware that sends betNr as text ("10001"): doctor said 'no Beteiligter to read (the list gave
    none)', though it gave one, and ended '✓ profile keys to change: none: the profile … fits'. Values of
    unexpected types (an object, a list, a number, a boolean) are never printed."""
    sim, handle = served
    row = {"betNr": "10001", "rowId": "r1", "name": {"first": "Zwiebelmeier"}, "vorname": ["Hortensia"],
           "geburtsdatum": 19710309, "email": True, "geaendertAm": "09.03.1971 10:00"}
    sim.faults.add(FaultRule(method="GET", path=r"Beteiligte$", times=None, status=200, body=json.dumps([row])))
    run = doctor(sim, handle.url, "default", tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "the list gave none" not in run.stdout
    assert "✗ Beteiligter: the list's first item has no numeric betNr" in run.stdout, run.stdout
    assert "✗ field betNr: present as betNr, but not a number" in run.stdout
    assert "✗ field geburtsdatum: present as geburtsdatum, but not in the form" in run.stdout
    assert "✓ profile keys to change" not in run.stdout
    assert_read_only_and_private(sim, run.stdout)
    assert "19710309" not in run.stdout and "10:00" not in run.stdout


def test_doctor_on_a_list_wrapped_in_an_object_does_not_say_the_profile_fits(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    """A list answered as {"value": [...]} (as OData APIs do): '✗ list endpoint: … answered no JSON array'
    and then '✓ profile keys to change: none: the profile … fits what Advoware answered'. Now the shape has
    a key of its own (list_items), which doctor names; an object without a list is no list."""
    sim, handle = served
    sim.faults.add(FaultRule(method="GET", path=r"Beteiligte$", times=None, status=200,
                             body=json.dumps({"value": [dict(PERSON, betNr=10001, rowId="r")]})))
    run = doctor(sim, handle.url, "default", tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert ('✗ list answer: GET api/v1/advonet/Beteiligte answers an object with the rows under "value", the '
            'profile expects a bare JSON array → list_items = "value"') in run.stdout
    assert "✓ profile keys to change" not in run.stdout
    assert 'list_items = "value"' in next(line for line in run.stdout.splitlines()
                                         if line.startswith("✗ profile keys to change: "))
    sim.faults.clear()
    sim.faults.add(FaultRule(method="GET", path=r"Beteiligte$", times=None, status=200,
                             body=json.dumps({"count": 1, "next": None})))
    run = doctor(sim, handle.url, "default", tmp_path, "--betnr", "10001")
    assert ("✗ list endpoint: GET api/v1/advonet/Beteiligte answered neither a JSON array nor an object holding "
            "one") in run.stdout
    assert "✗ profile keys to change: none found, but checks above failed: their fixes say what to do" in run.stdout


@pytest.mark.parametrize("key, value", [("resource_path", "https://advo.kanzlei.example/api/v1/Beteiligte"),
                                        ("list_endpoint", "https://advo.kanzlei.example/api/v1/Beteiligte"),
                                        ("resource_path", "api/v1/Beteiligte?mandant=1")])
def test_a_full_url_or_a_query_as_a_path_is_refused(tmp_path: Path, key: str, value: str) -> None:
    """An IT person pastes the address Advoware's documentation shows: it was accepted, and every call
    went to <ADVOWARE_URL>/https://advo…, a 404 the sync reported as a missing Beteiligter."""
    path = write(tmp_path, f'casing = "camel"\n{key} = "{value}"\n')
    with pytest.raises(ProfileError, match=rf"firm\.toml:2: {key}: is a path relative to ADVOWARE_URL"):
        load_profile(path)


def test_a_dotted_key_in_the_fields_table_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'casing = "camel"\n\n# own names\nfields.betNr = "BetNr"\nfields.nachname = "Name"\n')
    with pytest.raises(ProfileError, match=r"firm\.toml:5: nachname: is not a field"):
        load_profile(path)


def apply_to(text: str, changes: list[str]) -> str:
    """A profile's text with each ``key = value`` doctor named set (``[fields] k = v`` in its table)."""
    for change in changes:
        key, value = change.split(" = ", 1)
        field_ = key.removeprefix("[fields] ")
        line = f"{field_} = {value}".replace("\\", "\\\\")
        if re.search(rf"^{field_} = .*$", text, flags=re.M):
            text = re.sub(rf"^{field_} = .*$", line, text, count=1, flags=re.M)
        else:
            text = text.rstrip("\n") + "\n" + line.replace("\\\\", "\\") + "\n"
    return text


@pytest.mark.parametrize("advoware, profile", [("default", "pascal-object"), ("no-list", "pascal-object")])
def test_the_keys_doctor_names_make_the_profile_fit_in_one_round(advoware: str, profile: str,
                                                                  tmp_path: Path) -> None:
    """From the pascal-object example against today's Advoware, doctor said casing = "camel" for
    handelsRegisterNummer too, which the example's [fields] entry overrides: the copy still did not fit.
    Against an Advoware without a list, the Beteiligter's 404 at the profile's resource_path was reported
    without trying the known paths, so resource_path was never named."""
    sim = AdvowareSimulator(profile=load_profile(advoware))
    for i in range(3):
        sim.seed(**{**PERSON, "kurzname": f"Z{i}"})
    handle = serve_in_thread(sim.app)
    try:
        run = doctor(sim, handle.url, profile, tmp_path, "--betnr", "10001")
        assert run.returncode == 1, run.stdout + run.stderr
        keys = next(line for line in run.stdout.splitlines() if line.startswith("✗ profile keys to change: "))
        changes = keys.removeprefix("✗ profile keys to change: ").split("; ")
        assert '[fields] handelsRegisterNummer = "handelsRegisterNummer"' in changes, run.stdout
        assert 'resource_path = "api/v1/advonet/Beteiligte"' in changes, run.stdout
        copy = tmp_path / "firm.toml"
        copy.write_text(apply_to((SHIPPED / f"{profile}.toml").read_text(), changes))
        again = doctor(sim, handle.url, str(copy), tmp_path, "--betnr", "10001")
        assert again.returncode == 0 and "✓ profile keys to change: none" in again.stdout, again.stdout
        assert_read_only_and_private(sim, run.stdout + again.stdout)
    finally:
        handle.stop()


async def test_stamps_whose_trailing_zeros_dotnet_trims_are_read(tmp_path: Path) -> None:
    """A .NET Advoware (System.Text.Json, and Newtonsoft's default ISO converter) writes a DateTime with the
    fraction's trailing zeros trimmed, and no fraction at all on a whole second: ticks .1200000 go as .12.
    With geaendert_am_format %7f (or %3f) such a row failed the whole read: 'GeaendertAm does not have the
    form …', one row in ten, so the feed and the sync check failed on every page that held one."""
    sim = AdvowareSimulator(profile=load_profile("pascal-object"))
    handle = serve_in_thread(sim.app)
    row = {"BetNr": 10001, "RowId": "r1", "Name": "X", "GeaendertAm": "2026-03-01T10:00:00.12",
           "AngelegtAm": "2026-03-01T09:00:00", "Geburtsdatum": "1971-03-09"}
    sim.faults.add(FaultRule(method="GET", path=r"Beteiligte/10001$", times=None, status=200, body=json.dumps(row)))
    sim.faults.add(FaultRule(method="GET", path=r"Beteiligte$", times=None, status=200, body=json.dumps([row])))
    api = make_api(sim, handle.url, timeout=2.0, profile=sim.profile)
    try:
        got = await api.get_beteiligter(10001)
        assert (got["geaendertAm"], got["angelegtAm"]) == ("2026-03-01T10:00:00.120", "2026-03-01T09:00:00.000")
        assert [r["geaendertAm"] for r in await api.list_beteiligte()] == ["2026-03-01T10:00:00.120"]
    finally:
        await api.aclose()
        handle.stop()
    p = sim.profile.geaendert_am_format
    zone = ZoneInfo("Europe/Berlin")
    assert p.matches("2026-03-01T10:00:00.1234567", zone) and p.matches("2026-03-01T10:00:00.12", zone)
    assert not DatePattern("%Y-%m-%dT%H:%M:%S.%3f").matches("2026-03-01T10:00:00.1234567", zone)  # doctor: %7f
    assert p.format(p.parse("2026-03-01T10:00:00.12", zone), zone) == "2026-03-01T10:00:00.1200000"


def test_a_key_set_twice_is_refused_with_file_and_line_as_every_other_mistake(tmp_path: Path) -> None:
    """tomllib's own message carried the line in its text ('… (at line 3, column 18)'), after
    'firm.toml: not TOML': the one refusal without the file:line prefix every other one has."""
    path = write(tmp_path, 'casing = "camel"\nput_answer = "none"\ncasing = "pascal"\n')
    with pytest.raises(ProfileError, match=r"firm\.toml:3: not TOML \(Cannot overwrite a value\)$"):
        load_profile(path)


async def test_a_passing_404_of_a_declared_list_does_not_turn_the_feed_off_for_good(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The profile says there is a list (list_endpoint = true); one 404 on it (IIS while Advoware's app pool
    restarts, a proxy during an update) was cached as 'this Advoware has no list endpoint' for the life
    of the process: the change feed stayed off until serve was restarted. Now it is asked again after
    LIST_RECHECK_S; a profile with list_endpoint = false never asks."""
    sim = AdvowareSimulator(profile=load_profile("default"))
    sim.seed(**PERSON)
    handle = serve_in_thread(sim.app)
    api = make_api(sim, handle.url, timeout=2.0, profile=sim.profile)
    try:
        sim.faults.add(FaultRule(method="GET", path=r"Beteiligte$", status=404, times=1))
        assert await api.supports_list() is False
        assert await api.supports_list() is False  # not asked again at once
        monkeypatch.setattr(advoware_listing, "LIST_RECHECK_S", 0.0, raising=False)
        assert await api.supports_list() is True
    finally:
        await api.aclose()
        handle.stop()
