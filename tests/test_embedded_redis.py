"""The embedded store itself: one real redis-server per state folder, on a socket, with an AOF."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import adapters.embedded_redis as embedded_redis
from adapters.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_redis_server
from config.settings import Settings
from entrypoints.bootstrap import build_services, is_real_redis, make_redis
from entrypoints.runtime import build_host
from stephost.bus_redis import RedisStreamBus
from tests.embedded_support import cli, env_for, state_root

pytestmark = pytest.mark.redis

START_AND_PRINT_PID = (
    "import sys; from pathlib import Path; from adapters.embedded_redis import EmbeddedRedis; "
    "s = EmbeddedRedis(Path(sys.argv[1])); s.ensure_running(); print(s.server_pid())"
)


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as path:
        yield path


def test_one_server_per_folder_however_many_processes_start_it_at_once(root: Path) -> None:
    folder = root / "state"
    starters = [subprocess.Popen([sys.executable, "-c", START_AND_PRINT_PID, str(folder)], stdout=subprocess.PIPE,
                                 text=True) for _ in range(6)]
    pids = {p.communicate(timeout=120)[0].strip() for p in starters}
    assert all(p.returncode == 0 for p in starters)
    assert len(pids) == 1
    assert pids == {str(EmbeddedRedis(folder).server_pid())}


def test_listens_on_an_owner_only_socket_and_no_tcp_port(root: Path) -> None:
    store = EmbeddedRedis(root / "state")
    store.ensure_running()
    with store.sync_client() as client:
        assert client.config_get("port") == {"port": "0"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert stat.S_IMODE(os.stat(store.socket_path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.folder).st_mode) == 0o700


def test_data_survives_a_kill_9_of_the_server_and_a_clean_stop(root: Path) -> None:
    store = EmbeddedRedis(root / "state")
    store.ensure_running()
    with store.sync_client() as client:
        client.set("bsync:link:a", "base-a")
        client.xadd("bsync:bus:step:x", {"topic": "t"})
    pid = store.server_pid()
    assert pid is not None
    os.kill(pid, 9)
    store.ensure_running()  # the lock died with the server: a new one starts and replays the AOF
    assert store.server_pid() != pid
    with store.sync_client() as client:
        assert client.get("bsync:link:a") == b"base-a"
        assert client.xlen("bsync:bus:step:x") == 1
    assert store.stop() is True
    assert store.stop() is False
    store.ensure_running()
    with store.sync_client() as client:
        assert client.get("bsync:link:a") == b"base-a"


def test_make_redis_without_redis_url_is_the_real_embedded_server_and_the_bus_is_durable(root: Path) -> None:
    settings = Settings(_env_file=None, state_dir=str(root / "state"),  # type: ignore[call-arg]
                        espocrm_url="http://espo.invalid", advoware_url="http://advo.invalid")
    client = make_redis(settings)
    assert is_real_redis(client)
    assert EmbeddedRedis.for_settings(settings).is_running()
    services = build_services(settings.model_copy(update=_complete_config()), redis=client)
    assert isinstance(build_host(services, cron=False).bus, RedisStreamBus)


def test_sandbox_store_is_kept_apart_from_the_real_one(root: Path) -> None:
    sandbox = Settings(_env_file=None, state_dir=str(root / "state"))  # type: ignore[call-arg]
    configured = sandbox.model_copy(update={"espocrm_url": "http://espo.invalid"})
    assert EmbeddedRedis.for_settings(sandbox).folder == root / "state" / "sandbox"
    assert EmbeddedRedis.for_settings(configured).folder == root / "state"


def test_missing_redis_server_is_one_line_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_redis.shutil, "which", lambda _name: None)
    monkeypatch.setattr(embedded_redis, "FALLBACK_BINARIES", ())
    with pytest.raises(EmbeddedRedisError) as err:
        find_redis_server()
    assert "apt-get install redis-server" in str(err.value) and "REDIS_URL" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("command", [["sync-check"], ["dead-letters"], ["serve"]])
def test_command_without_redis_server_exits_2_with_one_line(root: Path, command: list[str]) -> None:
    env = env_for(root / "state", 1, REDIS_SERVER_BIN=str(root / "no-such-redis-server"),
                  ESPOCRM_URL="http://espo.invalid", ADVOWARE_URL="http://advo.invalid")
    done = cli(env, *command, cwd=root)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "apt-get install redis-server" in lines[0] and "REDIS_URL" in lines[0]


def test_state_dir_too_long_for_a_socket_is_refused_in_one_line(root: Path) -> None:
    deep = root / ("d" * 60) / ("e" * 60)
    done = cli(env_for(deep, 1), "dead-letters", cwd=root)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "too long for a unix socket" in done.stderr


def test_production_code_never_loads_fakeredis() -> None:
    probe = ("import sys, entrypoints.cli, entrypoints.startup, entrypoints.bootstrap, stephost.host; "
             "print('fakeredis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _complete_config() -> dict[str, object]:
    from pydantic import SecretStr

    return {"espocrm_api_key": SecretStr("k"), "advoware_token_url": "http://advo.invalid", "advoware_app_id": "a",
            "advoware_api_key": SecretStr("a2V5"), "advoware_kanzlei": "k", "advoware_database": "d",
            "advoware_user": "u", "advoware_password": SecretStr("p")}
