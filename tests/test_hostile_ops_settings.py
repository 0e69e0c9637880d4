"""Hostile tests of issue 9's claim "every value is checked when a command starts; a wrong one stops it
with one line naming the variable and the fix (exit code 2)" (README "Configuration", "Operations:
errors"). Each xfail test is a bug found by attacking that claim; it passes once the bug is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT, ConfigError, load_settings
from simulators.common import free_port
from tests.embedded_support import cli, env_for, state_root
from tests.test_ops_errors import NOWHERE, one_line_error, systems_env


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as path:
        yield path


@pytest.mark.redis
@pytest.mark.parametrize("url", ["redis://127.0.0.1:notaport", "redis://[::1", "redis://127.0.0.1:6379?socket_timeout=x"])
def test_hostile_an_unparsable_redis_url_is_a_configuration_line(root: Path, url: str) -> None:
    env = env_for(root / "state", free_port(), **{**systems_env(NOWHERE, NOWHERE), "REDIS_URL": url})
    line = one_line_error(cli(env, "sync-check", cwd=root))
    assert "REDIS_URL" in line
    assert "unexpected error" not in line


@pytest.mark.parametrize(("variable", "value"), [
    ("espocrm_url", "https://crm.example.com/?lang=de"),
    ("espocrm_url", "https://crm.example.com/api/v1?x=1"),
    ("advoware_url", "https://advo.example.com/api/v1/?tenant=1"),
])
def test_hostile_a_url_with_a_query_string_is_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable.upper()):
        load_settings(**{variable: value})


@pytest.mark.parametrize("variable", ["http_timeout_seconds", "health_check_interval_seconds"])
@pytest.mark.parametrize("value", ["inf", "1e400"])
def test_hostile_an_infinite_timeout_or_interval_is_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable.upper()):
        load_settings(**{variable: value})


def test_hostile_an_empty_state_dir_is_not_the_project_folder() -> None:
    try:
        settings = load_settings(state_dir="")
    except ConfigError as exc:  # refusing it is a fix too
        assert "STATE_DIR" in str(exc)
        return
    assert settings.state_path() != PROJECT_ROOT.resolve()
    assert settings.state_path() == (PROJECT_ROOT / ".state").resolve()


def test_hostile_espocrm_url_with_api_v1_and_a_doubled_slash_is_cut_back() -> None:
    assert load_settings(espocrm_url="https://crm.example.com/api/v1//").espocrm_url == "https://crm.example.com"
