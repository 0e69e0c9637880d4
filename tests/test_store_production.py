"""Issue 18, items 6 and 7: the Redis a production store runs on, and the state's format version.

Real redis-servers set as a firm might set them, and ``serve`` / ``doctor`` as real processes:

- an evicting ``maxmemory-policy`` (every one but ``noeviction``) stops ``serve`` with one line naming
  the fix, read with ``CONFIG GET``, and from ``INFO`` where ``CONFIG`` is renamed away;
- a Redis without persistence: ``serve`` runs and warns once, naming what a restart loses;
- a store of 0.1.0 (our keys, no format key) is migrated by ``serve``; a newer format is refused in one
  line; several processes migrating at once run each step once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from adapters.redis_settings import read_facts
from adapters.state_format import CURRENT, FORMAT_KEY, StateFormatRefused, ensure_current
from entrypoints.doctor import redis_settings
from entrypoints.setup_store import OpenStore
from simulators.common import free_port
from tests.embedded_support import CLI_TIMEOUT_S, env_for, start_serve, state_root, wait_for
from tests.redis_server import _binary, _free_port

pytestmark = [pytest.mark.redis]


class Server:
    """A redis-server with the given options on a free port (stopped by the test's ``with``)."""

    def __init__(self, root: Path, *options: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen([_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(root),
                                      "--daemonize", "no", "--loglevel", "warning", *options],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        try:
            wait_for("redis-server", self._answers, 10)
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        assert self.proc.poll() is None, "redis-server exited"
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as folder:
        yield folder


def serve_until_exit(root: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = env_for(root / "state", free_port(), REDIS_URL=url)
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", "serve"], env=env, cwd=root, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)


PERSISTENT = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "")


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_an_evicting_policy_stops_serve_with_one_line(root: Path, policy: str) -> None:
    server = Server(root, "--maxmemory-policy", policy, *PERSISTENT)
    try:
        done = serve_until_exit(root, server.url)
    finally:
        server.stop()
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"maxmemory-policy is {policy}" in lines[0] and "set maxmemory-policy noeviction" in lines[0]


def test_the_policy_is_read_from_info_where_config_is_renamed(root: Path) -> None:
    server = Server(root, "--maxmemory-policy", "allkeys-random", "--rename-command", "CONFIG", "", *PERSISTENT)
    try:
        with server.client() as client, pytest.raises(redis.ResponseError):
            client.config_get("maxmemory-policy")  # CONFIG is really gone
        with server.client() as client:
            facts = read_facts(client)
        done = serve_until_exit(root, server.url)
    finally:
        server.stop()
    assert facts.policy == "allkeys-random" and facts.aof and facts.rdb is None
    assert done.returncode == 2 and "maxmemory-policy is allkeys-random" in done.stderr, done.stderr


def test_a_redis_without_persistence_gets_a_warning_naming_what_a_restart_loses(root: Path) -> None:
    server = Server(root, "--appendonly", "no", "--save", "")
    try:
        env = env_for(root / "state", free_port(), REDIS_URL=server.url)
        serve = start_serve(env, root)
        try:
            out = wait_for("the warning", lambda: serve.output() if "persistence" in serve.output() else None, 30)
        finally:
            serve.stop()
    finally:
        server.stop()
    line = next(x for x in out.splitlines() if "Redis has no persistence" in x)
    assert "WARNING" in line and "a Redis restart loses the links and bases of every record, queued events" in line
    assert "set appendonly yes" in line


async def test_doctor_shows_the_redis_settings(root: Path) -> None:
    """The doctor's line for the three kinds of Redis (its own run needs both systems configured:
    test_doctor_processes runs it whole, with this line ✓ on the embedded store)."""
    from redis.asyncio import Redis

    options = {"evicting": ("--maxmemory-policy", "allkeys-lfu", *PERSISTENT),
               "no persistence": ("--appendonly", "no", "--save", ""), "good": PERSISTENT}
    servers = {}
    for i, (name, opts) in enumerate(options.items()):
        (root / str(i)).mkdir()
        servers[name] = Server(root / str(i), *opts)
    lines = {}
    try:
        for name, server in servers.items():
            store = OpenStore(Redis.from_url(server.url), "test")
            lines[name] = (await redis_settings(store))[0]
            await store.aclose()
    finally:
        for server in servers.values():
            server.stop()
    assert lines["evicting"].status == "fail" and "set maxmemory-policy noeviction" in lines["evicting"].fix
    assert lines["no persistence"].status == "warn" and "restart loses" in lines["no persistence"].text
    assert lines["good"].status == "ok"
    assert lines["good"].text == "maxmemory-policy noeviction, AOF (read with CONFIG GET)"


def test_serve_migrates_a_store_of_the_first_release(root: Path) -> None:
    server = Server(root, *PERSISTENT)
    try:
        with server.client() as client:
            client.set("bsync:store_id", "from-0.1.0")  # what 0.1.0 left: its keys, no format key
            client.hset("bsync:link:abc", mapping={"betnr": "1001"})
        env = env_for(root / "state", free_port(), REDIS_URL=server.url)
        serve = start_serve(env, root)
        serve.stop()
        with server.client() as client:
            assert client.get(FORMAT_KEY) == str(CURRENT).encode()
            assert client.hget("bsync:link:abc", "betnr") == b"1001"  # the data is kept
        assert "migrating the store's state from format 0 to 1" in serve.output()
    finally:
        server.stop()


def test_a_newer_state_format_is_refused_in_one_line(root: Path) -> None:
    server = Server(root, *PERSISTENT)
    try:
        with server.client() as client:
            client.set(FORMAT_KEY, CURRENT + 1)
        done = serve_until_exit(root, server.url)
        with server.client() as client:
            assert client.get(FORMAT_KEY) == str(CURRENT + 1).encode()  # untouched
    finally:
        server.stop()
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"state format {CURRENT + 1}, written by a newer beteiligte-sync" in lines[0]
    assert "run the release the other processes run" in lines[0]


def test_an_empty_store_is_labelled_and_an_old_one_refused_without_migrate(real_redis_url: str) -> None:
    """A command (no migrate) labels an empty store and an unlabelled one (a label changes no data), but
    leaves a migration that changes data to serve."""
    with redis.Redis.from_url(real_redis_url) as client:
        client.flushdb()
        assert ensure_current(client, version="t", migrate=False) is None
        assert client.get(FORMAT_KEY) == str(CURRENT).encode()
        client.delete(FORMAT_KEY)
        client.set("bsync:store_id", "written-before-any-serve")
        assert ensure_current(client, version="t", migrate=False) == 0
        assert client.get(FORMAT_KEY) == str(CURRENT).encode()

        changed: list[int] = []
        steps = {0: lambda _c: None, 1: lambda _c: changed.append(1)}
        client.set(FORMAT_KEY, 1)
        with pytest.raises(StateFormatRefused, match="start serve of this release first"):
            ensure_current(client, version="t", migrate=False, current=2, migrations=steps)
        assert changed == [] and client.get(FORMAT_KEY) == b"1"
        assert ensure_current(client, version="t", migrate=True, current=2, migrations=steps) == 1
        assert changed == [1] and client.get(FORMAT_KEY) == b"2"
        client.flushdb()


def test_processes_migrating_at_once_run_every_step_once(real_redis_url: str) -> None:
    """Four processes' worth of clients start on a format-0 store at the same moment; the steps 0->1->2->3
    run once each, in order, and every caller returns with the store at 3."""
    runs: list[int] = []

    def step(n: int) -> Callable[[redis.Redis], None]:
        def run(_client: redis.Redis) -> None:
            runs.append(n)
            time.sleep(0.2)  # wide enough for the others to arrive while it runs
        return run

    migrations = {n: step(n) for n in range(3)}
    with redis.Redis.from_url(real_redis_url) as client:
        client.flushdb()
        client.set("bsync:store_id", "old")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        with redis.Redis.from_url(real_redis_url) as client:
            start.wait()
            try:
                ensure_current(client, version="t", migrate=True, current=3, migrations=migrations)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and runs == [0, 1, 2]
    with redis.Redis.from_url(real_redis_url) as client:
        assert client.get(FORMAT_KEY) == b"3"
        client.flushdb()


def test_backup_and_restore_as_documented(root: Path) -> None:
    """docs/install.md → Backup and restore: ``redis-cli --rdb`` while it runs; restore into a Redis
    started with the AOF off, then the AOF turned on; everything is back, and survives a restart."""
    cli = shutil.which("redis-cli")
    assert cli, "redis-cli comes with redis-server (redis-tools)"
    (root / "old").mkdir()
    server = Server(root / "old", *PERSISTENT)
    try:
        with server.client() as client:
            client.set(FORMAT_KEY, CURRENT)
            client.hset("bsync:link:abc", mapping={"betnr": "1001"})
        backup = root / "backup.rdb"
        done = subprocess.run([cli, "-u", server.url, "--rdb", str(backup)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and backup.stat().st_size > 0, done.stderr
    finally:
        server.stop()
    (root / "new").mkdir()
    shutil.copy(backup, root / "new" / "dump.rdb")
    restored = Server(root / "new", "--dbfilename", "dump.rdb", "--appendonly", "no")
    try:
        with restored.client() as client:
            client.config_set("appendonly", "yes")
            wait_for("the AOF rewrite", lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0 and
                     client.info("persistence")["aof_enabled"] == 1, 30)
            assert client.hget("bsync:link:abc", "betnr") == b"1001" and client.get(FORMAT_KEY) == b"1"
    finally:
        restored.stop()
    (root / "new" / "dump.rdb").unlink()  # from now on the AOF alone carries it
    again = Server(root / "new", "--appendonly", "yes")
    try:
        with again.client() as client:
            assert client.hget("bsync:link:abc", "betnr") == b"1001"
    finally:
        again.stop()
