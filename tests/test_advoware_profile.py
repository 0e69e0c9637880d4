"""Loading an Advoware wire profile (ADVOWARE_PROFILE): the shipped ones, and every refusal naming the
file and the line, as the operator sees it at start (one line, exit 2)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.advoware_dates import DatePattern
from config.advoware_profile import SHIPPED, Casing, PostAnswer, ProfileError, PutAnswer, load_profile
from config.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
GOOD = (SHIPPED / "default.toml").read_text()


def test_the_shipped_profiles_load_and_say_what_the_docs_say() -> None:
    default, pascal, nolist = (load_profile(n) for n in ("default", "pascal-object", "no-list"))
    assert (default.resource_path, default.casing, default.put_answer, default.list_path) == (
        "api/v1/advonet/Beteiligte", Casing.CAMEL, PutAnswer.ARRAY, "api/v1/advonet/Beteiligte")
    assert default.timezone is None and default.wire_name("geaendertAm") == "geaendertAm"
    assert (pascal.wire_name("betNr"), pascal.wire_name("handelsRegisterNummer")) == ("BetNr", "HandelsregisterNummer")
    assert pascal.internal_name("HandelsregisterNummer") == "handelsRegisterNummer"
    assert (pascal.put_answer, pascal.post_returns_row_id, pascal.list_take_param) == (PutAnswer.OBJECT, False, "Take")
    assert nolist.list_path is None and nolist.put_answer == PutAnswer.NONE


@pytest.mark.parametrize("pattern, text", [
    ("%Y-%m-%dT%H:%M:%S.%3f", "2026-10-25T02:30:00.123"),
    ("%Y-%m-%dT%H:%M:%S.%7f", "2026-07-01T12:00:00.1230000"),
    ("%Y-%m-%dT%H:%M:%S.%3f%z", "2026-07-01T12:00:00.123+02:00"),
    ("%d.%m.%Y", "12.04.1980"),
])
def test_date_patterns_round_trip_milliseconds(pattern: str, text: str) -> None:
    p = DatePattern(pattern)
    assert p.format(p.parse(text, BERLIN), BERLIN) == text
    assert not p.matches("12/04/1980", BERLIN)


def test_an_offset_is_read_in_the_firms_zone() -> None:
    p = DatePattern("%Y-%m-%dT%H:%M:%S.%3f%z")
    assert p.parse("2026-07-01T10:00:00.005Z", BERLIN) == datetime(2026, 7, 1, 12, 0, 0, 5000)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "firm.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("change, line, words", [
    (('casing = "camel"', 'casing = "camel"\nlist_page_size = 50'), 9, "list_page_size: unknown key"),
    (('casing = "camel"', 'casing = "kebab"'), 8, "'kebab' is not one of camel, pascal"),
    (('list_take_param = "take"', 'list_take_param = ""'), 26, "needs a take parameter"),
    (('list_skip_param = "skip"', 'list_skip_param = "take"'), 26, "two list parameters have the same name"),
    (('geburtsdatum_format = "%Y-%m-%dT00:00:00"', 'geburtsdatum_format = "%Y-%m"'), 34, "has no %d"),
    (('geaendert_am_format = "%Y-%m-%dT%H:%M:%S.%3f"', 'geaendert_am_format = "%Y-%m-%dT%H:%M:%S"'), 33,
     "no fraction of a second"),
    (('[fields]', '[fields]\nvorname = "name"'), 40, "vorname and name would both be 'name'"),
    (('[fields]', '[fields]\nnachname = "Name"'), 40, "nachname: is not a field"),
    (('# timezone = "Europe/Berlin"', 'timezone = "Berlin"'), 36, "'Berlin' is not a time zone"),
    (('post_answer = "body"', 'post_answer = "header"'), 16, "'header' is not one of body, location"),
    (('post_answer = "body"', 'post_answer = "location"'), 19,
     'post_returns_row_id: post_answer = "location" answers no rowId: set post_returns_row_id = false'),
    (('list_items = ""', 'list_items = 1'), 30, "list_items: has the wrong type (int)"),
])
def test_wrong_profiles_are_refused_with_file_and_line(tmp_path: Path, change: tuple[str, str], line: int,
                                                       words: str) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"{path}:{line}: ") and words in str(caught.value)


def test_the_new_answer_shapes_load_and_their_impossible_combinations_are_refused(tmp_path: Path) -> None:
    """list_items and post_answer (the shapes a .NET Web API commonly has): "" is a bare array, as absent;
    post_answer = "location" without post_returns_row_id means false; a list key without a list is refused."""
    assert load_profile("default").list_items is None and load_profile("default").post_answer == PostAnswer.BODY
    wrapped = load_profile(write(tmp_path, 'list_items = " value "\npost_answer = "location"\n'))
    assert (wrapped.list_items, wrapped.post_answer, wrapped.post_returns_row_id) == ("value", PostAnswer.LOCATION,
                                                                                      False)
    path = str(tmp_path / "no-list-wrapped.toml")  # another file: profiles are cached by path
    Path(path).write_text((SHIPPED / "no-list.toml").read_text().replace("list_endpoint = false",
                                                                         'list_endpoint = false\nlist_items = "value"'))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value) == (f"{path}:8: list_items: names the rows' key in the list's answer, but list_endpoint = "
                                 "false: leave list_items out, or name the list endpoint")


def test_pascal_casing_and_a_field_table_that_collide_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'casing = "pascal"\n\n[fields]\nort = "Name"\n')
    with pytest.raises(ProfileError, match=r"firm\.toml:4: ort: ort and name would both be 'Name'"):
        load_profile(path)


def test_the_profiles_timezone_sets_the_zone_and_another_advoware_timezone_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('# timezone = "Europe/Berlin"', 'timezone = "Europe/Vienna"'))
    assert load_settings(_env_file=None, advoware_profile=path).advoware_timezone == "Europe/Vienna"
    assert load_settings(_env_file=None, advoware_profile=path,
                         advoware_timezone="Europe/Vienna").advoware_timezone == "Europe/Vienna"
    with pytest.raises(ConfigError, match="ADVOWARE_TIMEZONE Europe/Berlin differs from timezone = "
                                          '"Europe/Vienna" of ADVOWARE_PROFILE .*: unset one of them'):
        load_settings(_env_file=None, advoware_profile=path, advoware_timezone="Europe/Berlin")


def test_a_wrong_profile_stops_a_command_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('put_answer = "array"', 'put_answer = "list"'))
    env = {"PATH": "/usr/bin:/bin", "ADVOWARE_PROFILE": path, "HOME": str(tmp_path), "STATE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "entrypoints.cli", "sync-check", "--dry-run"], cwd=tmp_path,
                         env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines() == [
        f"configuration: ADVOWARE_PROFILE {path}:11: put_answer: 'list' is not one of array, object, none: "
        "fix that line of the profile (docs/advoware.md: wire profiles)"]
