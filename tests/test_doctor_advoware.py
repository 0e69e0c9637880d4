"""``beteiligte-sync doctor --advoware`` as an operator runs it, against the simulator speaking each
shipped wire profile: with the matching ADVOWARE_PROFILE every line passes; with today's default
against another Advoware it names each difference and the profile key to change. It only reads, and it
prints field names and formats, never a value."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.advoware_profile import SHIPPED, load_profile
from simulators.advoware.configurator import PATH as CONFIGURATOR_PATH
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
WRAPPED = str(ROOT / "tests" / "advoware_profiles" / "wrapped-location.toml")
PERSON = {"name": "Zwiebelmeier", "vorname": "Hortensia", "anrede": "Frau", "titel": "Dr.",
          "rechtsform": "natürliche Person", "geburtsdatum": "1971-03-09T00:00:00", "email": "h.z@example.org",
          "telefon": "0221 123456", "strasse": "Weg 1", "plz": "50667", "ort": "Köln", "land": "DE",
          "kurzname": "ZWIEBEL", "briefAnrede": "Sehr geehrte Frau Dr. Zwiebelmeier", "geburtsname": "Knoblauch",
          "zusatz": "Mandantin", "handelsRegisterNummer": "HRB 9", "registergericht": "AG Köln"}
PERSONAL = ("Zwiebelmeier", "Hortensia", "1971", "09.03", "h.z@example.org", "0221", "Knoblauch")


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[AdvowareSimulator, ServerHandle]]:
    sim = AdvowareSimulator(profile=load_profile(request.param))
    sim.store.clock_offset_s = -3600  # changed an hour ago: the changes since now are none
    for i in range(3):
        sim.seed(**{**PERSON, "kurzname": f"Z{i}"})
    sim.store.clock_offset_s = 0
    handle = serve_in_thread(sim.app)
    try:
        yield sim, handle
    finally:
        handle.stop()


def doctor(sim: AdvowareSimulator, url: str, profile: str, tmp_path: Path,
           *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    more = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVOWARE_", "ESPOCRM_"))}
    env.update({f"ADVOWARE_{k.upper()}": v for k, v in sim.client_settings().items()})
    env.update({"ADVOWARE_URL": url, "ADVOWARE_TOKEN_URL": url, "ADVOWARE_PROFILE": profile,
                "STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(ROOT), **more})
    sim.calls.reset()
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", "doctor", "--advoware", *extra], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


def assert_read_only_and_private(sim: AdvowareSimulator, out: str) -> None:
    methods = {key.split()[0] for key in sim.calls.snapshot() if not key.endswith("/Token")}
    assert methods == {"GET"}, sim.calls.snapshot()
    shown = re.sub(r"https?://[^/\s]+|(?<!\S)/\S+", "", out)  # the random port, file paths: not data
    assert not [word for word in PERSONAL if word in shown], out


@pytest.mark.parametrize("served, extra", [("default", ()), ("pascal-object", ()), ("no-list", ("--betnr", "10002")),
                                           (WRAPPED, ())],
                         indirect=["served"], ids=["default", "pascal-object", "no-list", "wrapped-location"])
def test_the_matching_profile_passes_every_line(served: tuple[AdvowareSimulator, ServerHandle], extra: tuple[str, ...],
                                                tmp_path: Path) -> None:
    sim, handle = served
    run = doctor(sim, handle.url, sim.profile.source, tmp_path, *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert not [line for line in lines if line.startswith(("✗", "⚠"))], run.stdout
    for name in ("betNr", "rowId", "geaendertAm", "geburtsdatum", "handelsRegisterNummer", "zusatz"):
        assert sum(line.startswith(f"✓ field {name}: present as {sim.profile.wire_name(name)}") for line in lines) == 1
    assert f"format {sim.profile.geburtsdatum_format.human()} matches" in run.stdout
    assert "– PUT answer: put_answer" in run.stdout and "not probed (it would write)" in run.stdout
    assert "✓ profile keys to change: none" in run.stdout
    assert_read_only_and_private(sim, run.stdout)


@pytest.mark.parametrize("served", ["pascal-object"], indirect=True)
def test_today_s_profile_against_a_pascal_case_advoware_names_each_key_to_change(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    sim, handle = served
    run = doctor(sim, handle.url, "default", tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "✗ field betNr: found as BetNr, the profile expects betNr → casing = \"pascal\"" in out
    assert ("✗ field handelsRegisterNummer: found as HandelsregisterNummer, the profile expects "
            "handelsRegisterNummer → [fields] handelsRegisterNummer = \"HandelsregisterNummer\"") in out
    keys = next(line for line in out.splitlines() if line.startswith("✗ profile keys to change: "))
    assert keys.removeprefix("✗ profile keys to change: ").split("; ") == [
        'resource_path = "api/v1/Beteiligte"', 'list_take_param = "Take"', 'list_skip_param = "Skip"',
        'list_since_param = "GeaendertSeit"', 'list_max_take = 100', 'casing = "pascal"',
        'geburtsdatum_format = "%Y-%m-%d"', '[fields] handelsRegisterNummer = "HandelsregisterNummer"',
        'geaendert_am_format = "%Y-%m-%dT%H:%M:%S.%7f"']
    assert_read_only_and_private(sim, out)
    # the keys as doctor names them, set in a copy of the default profile: then every line passes
    copy = tmp_path / "firm.toml"
    copy.write_text(apply(keys.removeprefix("✗ profile keys to change: ").split("; ")))
    again = doctor(sim, handle.url, str(copy), tmp_path)
    assert again.returncode == 0 and "✓ profile keys to change: none" in again.stdout, again.stdout


def apply(changes: list[str]) -> str:
    """The default profile's text with each ``key = value`` doctor named (``[fields] k = v`` in its table)."""
    text = (SHIPPED / "default.toml").read_text()
    for change in changes:
        key, value = change.split(" = ", 1)
        if key.startswith("[fields] "):
            text += f"{key.removeprefix('[fields] ')} = {value}\n"
        else:
            text = re.sub(rf"^{key} = .*$", f"{key} = {value}".replace("\\", "\\\\"), text, count=1, flags=re.M)
    return text


@pytest.mark.parametrize("served", ["no-list"], indirect=True)
def test_today_s_profile_against_an_advoware_without_a_list_names_each_key_to_change(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    sim, handle = served
    run = doctor(sim, handle.url, "default", tmp_path, "--betnr", "10001")
    assert run.returncode == 1, run.stdout + run.stderr
    keys = next(line for line in run.stdout.splitlines() if line.startswith("✗ profile keys to change: "))
    assert keys.removeprefix("✗ profile keys to change: ").split("; ") == [
        "list_endpoint = false", 'geburtsdatum_format = "%d.%m.%Y"', 'geaendert_am_format = "%Y-%m-%dT%H:%M:%S.%3f%z"']
    assert "✗ list endpoint: GET api/v1/advonet/Beteiligte answered 404 → list_endpoint = false" in run.stdout
    assert_read_only_and_private(sim, run.stdout)


@pytest.mark.parametrize("served", ["pascal-object"], indirect=True)
def test_with_discovery_the_probe_uses_the_discovered_address_and_names_it(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    """ADVOWARE_KANZLEI without URLs: doctor --advoware asks the configurator, probes what it names and
    says so (before, its first line read "Advoware None" and no discovery line was printed)."""
    sim, handle = served
    env_urls = {"ADVOWARE_URL": "", "ADVOWARE_TOKEN_URL": "",
                "ADVOWARE_CONFIGURATOR_URL": handle.url + CONFIGURATOR_PATH}
    run = doctor(sim, "", sim.profile.source, tmp_path, env=env_urls)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Advoware discovered for Kanzlei {sim.client_settings()['kanzlei']}" in run.stdout
    assert re.search(r"^✓ Advoware discovery: .*connectorUrl", run.stdout, re.M), run.stdout
    assert "✓ profile keys to change: none" in run.stdout
    assert any(key.startswith("GET") and "AdvonetConfigurator" in key for key in sim.calls.snapshot())
    assert_read_only_and_private(sim, run.stdout)


@pytest.mark.parametrize("served", [WRAPPED], indirect=True)
def test_today_s_profile_against_a_wrapped_list_names_list_items_and_post_answer(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    sim, handle = served
    run = doctor(sim, handle.url, "default", tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert ('✗ list answer: GET api/v1/advonet/Beteiligte answers an object with the rows under "items", the '
            'profile expects a bare JSON array → list_items = "items"') in run.stdout
    keys = next(line for line in run.stdout.splitlines() if line.startswith("✗ profile keys to change: "))
    assert keys == '✗ profile keys to change: list_items = "items"'  # paging probed through the wrapper: honoured
    assert '– POST answer: post_answer = "body", post_returns_row_id = true: not probed (it would write)' in run.stdout
    assert_read_only_and_private(sim, run.stdout)


@pytest.mark.parametrize("served", ["default"], indirect=True)
def test_a_profile_expecting_a_wrapped_list_against_a_bare_array_names_list_items(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    sim, handle = served
    run = doctor(sim, handle.url, WRAPPED, tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert ('✗ list answer: GET api/v1/advonet/Beteiligte answers a bare JSON array, the profile expects an object '
            'with the rows under "items" → list_items = ""') in run.stdout
    assert '✗ profile keys to change: list_items = ""' in run.stdout
    assert '– POST answer: post_answer = "location", post_returns_row_id = false: not probed' in run.stdout


@pytest.mark.parametrize("served", ["default"], indirect=True)
def test_a_list_that_ignores_the_since_parameter_names_list_since_param(
        served: tuple[AdvowareSimulator, ServerHandle], tmp_path: Path) -> None:
    """Advoware answers every row whatever the since parameter says (a wrong name, or none at all): doctor
    asks for the changes since now and gets rows an hour old."""
    sim, handle = served
    sim.ignore_since = True
    run = doctor(sim, handle.url, "default", tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert ("✗ list parameter geaendertSeit: seems ignored (asked for the changes since now, it answered rows "
            'changed before) → list_since_param = "<its name in your Advoware>"') in run.stdout
    assert "check list_since_param" in run.stdout
    assert '✗ profile keys to change: list_since_param = "<its name in your Advoware>"' in run.stdout
