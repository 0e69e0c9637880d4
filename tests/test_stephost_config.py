"""motia.config.json loading and overrides."""

import json
from pathlib import Path

import pytest

from stephost.config import ConfigFileError, load_host_config


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "motia.config.json"
    path.write_text(json.dumps(data))
    return path


def test_full_file_is_read_and_step_dirs_resolve_against_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "steps": {"dirs": ["steps"]},
            "flows": ["beteiligte-sync"],
            "http": {"host": "0.0.0.0", "port": 8080, "maxBodyBytes": 1024},
            "queue": {"maxAttempts": 7, "backoffBaseSeconds": 0.5, "backoffMaxSeconds": 9, "workers": 2},
            "cron": {"enabled": False},
            "redis": {"keyPrefix": "xy"},
        },
    )
    cfg = load_host_config(path, {})
    assert cfg.step_dirs == [tmp_path.resolve() / "steps"]
    assert cfg.flows == ["beteiligte-sync"]
    assert (cfg.http.host, cfg.http.port, cfg.http.max_body_bytes) == ("0.0.0.0", 8080, 1024)
    assert (cfg.queue.max_attempts, cfg.queue.backoff_base_seconds, cfg.queue.workers) == (7, 0.5, 2)
    assert cfg.cron.enabled is False
    assert cfg.redis.key_prefix == "xy"


def test_defaults_for_an_empty_file(tmp_path: Path) -> None:
    cfg = load_host_config(write(tmp_path, {}), {})
    assert (cfg.http.host, cfg.http.port) == ("127.0.0.1", 3111)
    assert cfg.queue.max_attempts == 5 and cfg.queue.max_size == 10_000
    assert cfg.redis.key_prefix == "bsync"


def test_host_and_port_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, {"http": {"host": "127.0.0.1", "port": 3111}})
    cfg = load_host_config(path, {"HOST": "0.0.0.0", "PORT": "9000", "queue.workers": 9, "cron.enabled": None})
    assert (cfg.http.host, cfg.http.port, cfg.queue.workers) == ("0.0.0.0", 9000, 9)
    assert cfg.cron.enabled is True


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"http": {"port": "not-a-port"}}, "http.port"),
        ({"queue": {"maxAttempts": 0}}, "queue.maxAttempts"),
        ({"queue": {"workerz": 3}}, "queue.workerz"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, data: dict[str, object], needle: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigFileError, match=needle) as err:
        load_host_config(path, {})
    assert str(path) in str(err.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_host_config(tmp_path / "nope.json", {})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigFileError, match="not valid JSON"):
        load_host_config(bad, {})
