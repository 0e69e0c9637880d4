"""Operator errors of every command as real processes: one line naming the setting and the fix, exit
code 2, no traceback (only with ``--debug``, before or after the subcommand), and nothing started or
changed. Also ``sync`` of an id EspoCRM does not have, and global options after the subcommand.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import free_port
from tests.embedded_support import (
    ESPO_API_KEY,
    Process,
    advo_records,
    cli,
    create_as_staff,
    env_for,
    start_simulator,
    state_root,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CREDS = AdvowareSimulator().client_settings()
NOWHERE = "http://127.0.0.1:9"  # discard port: nothing answers


def systems_env(espo_url: str, advo_url: str) -> dict[str, str]:
    env = {"ESPOCRM_URL": espo_url, "ESPOCRM_API_KEY": ESPO_API_KEY, "ADVOWARE_URL": advo_url,
           "ADVOWARE_TOKEN_URL": advo_url}
    env.update({f"ADVOWARE_{k.upper()}": v for k, v in CREDS.items()})
    return env


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The command's error line, after checking it is the only line on stderr (issue 19: no INFO noise
    around it), exit code 2 and no traceback."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr.strip()


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as path:
        yield path


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("ADVOWARE_TIMEZONE", "Berlin", "use an IANA zone name such as Europe/Berlin"),
    ("LOG_LEVEL", "verbose", "use one of DEBUG, INFO"),
    ("PORT", "abc", "use a number from 1 to 65535"),
    ("DELETE_POLICY", "purge", "use unlink or delete"),
    ("SYNC_CHECK_CRON", "every hour", "use five cron fields"),
    ("ESPOCRM_URL", "crm.example.com", "use the base address"),
    ("REDIS_URL", "localhost:6379", "use e.g. redis://host:6379/0"),
    ("REDIS_URL", "redis://", "names no host"),  # redis-py would quietly use localhost:6379
    ("REDIS_URL", "redis:///0", "names no host"),
    ("REDIS_URL", "rediss://:pw@/0", "names no host"),
    ("STATUS_TOKEN", "short", "use at least 16 random characters"),
    ("LOG_FORMAT", "xml", "use one of text, json"),
    ("ON_CREATE_MATCH", "merge", "use one of link, create, ask"),
])
@pytest.mark.parametrize("command", [["sync-check"], ["serve"]], ids=["sync-check", "serve"])
def test_a_wrong_setting_is_one_line_and_starts_nothing(
    root: Path, command: list[str], variable: str, value: str, named: str,
) -> None:
    env = env_for(root / "state", free_port(), **{**systems_env(NOWHERE, NOWHERE), variable: value})
    line = one_line_error(cli(env, *command, cwd=root))
    assert line.startswith(f"configuration: {variable} ") and named in line
    assert not (root / "state").exists()  # no store, no sandbox was started


def test_serve_on_a_port_in_use_is_one_line_naming_port(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = env_for(root / "state", taken.getsockname()[1], **systems_env(NOWHERE, NOWHERE))
        line = one_line_error(cli(env, "serve", cwd=root))
    assert line.startswith("configuration: cannot listen on HOST 127.0.0.1 PORT ") and "set PORT" in line


def test_some_systems_settings_but_not_all_name_the_missing_ones(root: Path) -> None:
    env = env_for(root / "state", free_port(), ESPOCRM_URL=NOWHERE)
    line = one_line_error(cli(env, "sync", "abc", cwd=root))
    assert "ESPOCRM_API_KEY" in line and "ADVOWARE_PASSWORD" in line and "not set" in line
    assert not (root / "state").exists()


@pytest.mark.parametrize(("variable", "text", "expected"), [
    ("CONFLICT_POLICY_FILE", '[groups.kontakt]\nstrategy = "field_merge"\n\n[kontakt]\nstrategy = "advoware_wins"\n',
     ":4: unknown table or key 'kontakt'"),
    ("CONFLICT_POLICY_FILE", '# adresse\n[groups.adresse]\nstratgy = "advoware_wins"\n', ":3: unknown key 'stratgy'"),
    ("CONFLICT_POLICY_FILE", '[groups.adresse]\nstrategy = "oldest_wins"\n', ":2: unknown strategy 'oldest_wins'"),
    ("VALUE_MAPS_FILE", '[salutationName]\nHerr = ["Herr", "Mr."]\nFrau = ["Frau", "Mr."]\n',
     ":3: [salutationName] lists 'Mr.' under Herr and Frau"),
    ("VALUE_MAPS_FILE", '[salutationName]\nHerr = ["Herr", "Mr."]\nFrima = ["Firma"]\n',
     ":3: [salutationName] Frima is not a value of Advoware's anrede (it knows Herr, Frau, Divers, Firma)"),
])
def test_a_wrong_policy_or_value_map_file_names_file_and_line_in_sandbox_mode_too(
    root: Path, variable: str, text: str, expected: str,
) -> None:
    path = root / "file.toml"
    path.write_text(text)
    env = env_for(root / "state", free_port(), **{variable: str(path)})  # sandbox mode: nothing configured
    line = one_line_error(cli(env, "sync-check", cwd=root))
    assert line.startswith(str(path)) and expected in line
    assert not (root / "state").exists()


def test_unreachable_systems_are_one_line_and_debug_after_the_subcommand_shows_the_traceback(
    root: Path, real_redis_url: str,
) -> None:
    env = env_for(root / "state", free_port(), REDIS_URL=real_redis_url, **systems_env(NOWHERE, NOWHERE))
    # The sync check reads both systems at once: whichever answers first names its own setting.
    def names_its_setting(line: str) -> bool:
        return ((line.startswith("EspoCRM: ") and "check ESPOCRM_URL" in line)
                or (line.startswith("Advoware: ") and "check ADVOWARE_" in line))

    line = one_line_error(cli(env, "sync-check", cwd=root))
    assert names_its_setting(line), line
    debug = cli(env, "sync-check", "--debug", cwd=root)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert names_its_setting(debug.stderr.strip().splitlines()[-1])

    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    line = one_line_error(cli(env, "sync", "abc", cwd=root))
    assert line.startswith("Redis: ") and "check REDIS_URL" in line


@dataclass
class Systems:
    root: Path
    env: dict[str, str]
    espo: str
    advo: str


@pytest.fixture(scope="module")
def systems() -> Iterator[Systems]:
    """Both standalone simulators; the service configured with ESPOCRM_URL as the simulator prints it."""
    with state_root() as root:
        espo, espo_url = start_simulator("simulators.espocrm", root)
        advo, advo_url = start_simulator("simulators.advoware", root)
        procs: list[Process] = [espo, advo]
        try:
            env = env_for(root / "state", free_port(), **systems_env(f"{espo_url}/api/v1/", advo_url))
            yield Systems(root, env, espo_url, advo_url)
        finally:
            for proc in procs:
                proc.stop()


def test_sync_of_an_unknown_id_says_so_exits_2_and_creates_nothing(systems: Systems) -> None:
    s = systems
    before = advo_records(s.advo)
    done = cli(s.env, "sync", "doesnotexist0001", cwd=s.root)
    line = one_line_error(done)
    assert "no CBeteiligte with id 'doesnotexist0001' in EspoCRM" in line and "check the id" in line
    assert done.stdout == ""
    assert advo_records(s.advo) == before


def test_global_options_work_after_the_subcommand(systems: Systems) -> None:
    s = systems
    espo_id = create_as_staff(s.espo, "Nachgestellt")
    quiet = cli(s.env, "sync", espo_id, "--log-level", "warning", cwd=s.root)
    assert quiet.returncode == 0, quiet.stderr
    assert "decision=create" in quiet.stdout
    assert " INFO " not in quiet.stderr  # --log-level after the subcommand took effect
    assert [r["name"] for r in advo_records(s.advo)].count("Nachgestellt") == 1
    chatty = cli(s.env, "--log-level=info", "sync-check", "--dry-run", cwd=s.root)  # before it still works
    assert chatty.returncode == 0 and " INFO " in chatty.stderr


def test_espocrm_url_with_api_v1_is_accepted(systems: Systems) -> None:
    done = cli(systems.env, "sync-check", "--dry-run", cwd=systems.root)
    assert done.returncode == 0, done.stderr
    assert systems.env["ESPOCRM_URL"].endswith("/api/v1/")
    assert httpx.get(f"{systems.espo}/__sim/calls", timeout=10).is_success


def test_a_wrong_advoware_password_fails_although_a_token_is_cached(systems: Systems) -> None:
    """Issue 19: a token cached with the right settings is never used for changed ones; the wrong
    password is Advoware's to check, and the command says so in one line."""
    s = systems
    assert cli(s.env, "sync-check", "--dry-run", cwd=s.root).returncode == 0  # a token is cached now
    line = one_line_error(cli({**s.env, "ADVOWARE_PASSWORD": "falsch"}, "sync-check", cwd=s.root))
    assert line.startswith("Advoware: ") and "ADVOWARE_" in line, line
    assert cli(s.env, "sync-check", "--dry-run", cwd=s.root).returncode == 0  # the right one works again
