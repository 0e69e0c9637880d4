"""Hostile test of "``dead-letters replay`` queues each dead letter again (it leaves the list once
queued)" with two replays at once (two operators, or a retried cron job). Real processes, real Redis.

The interleaving is forced, not hoped for: the commands reach Redis through a small TCP proxy that
holds the first ``LREM`` of the dead-letter list until another connection has read the list
(``LINDEX``) and got its answer. Without that hold the same race shows up by chance: 25 letters
replayed by two concurrent commands came out as "replayed 18" + "replayed 20" (38 events queued).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from simulators.common import free_port
from tests.embedded_support import CLI_TIMEOUT_S, env_for, state_root
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

DEAD_LETTERS = b"bsync:deadletters"
HOLD_DEADLINE_S = 60.0  # only a fixed replay that never reads the list while one is held waits this long


class HoldFirstRemoveProxy:
    """Forwards bytes both ways between clients and Redis; holds the first LREM of the dead letters
    until a LINDEX of them on another connection has been answered (or HOLD_DEADLINE_S passed)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held = threading.Event()  # the first LREM is being held
        self.read_by_other = threading.Event()  # another connection's LINDEX was answered meanwhile
        self._lock = threading.Lock()
        self._holder: int | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        conn_id = 0
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            conn_id += 1
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            reading = threading.Event()  # this connection sent a LINDEX of the dead letters
            threading.Thread(target=self._up, args=(conn_id, client, server, reading), daemon=True).start()
            threading.Thread(target=self._down, args=(conn_id, server, client, reading), daemon=True).start()

    def _up(self, conn_id: int, client: socket.socket, server: socket.socket, reading: threading.Event) -> None:
        while chunk := _recv(client):
            if DEAD_LETTERS in chunk and b"LREM\r\n" in chunk:
                with self._lock:
                    first = self._holder is None
                    if first:
                        self._holder = conn_id
                if first:
                    self.held.set()
                    self.read_by_other.wait(HOLD_DEADLINE_S)
            elif DEAD_LETTERS in chunk and b"LINDEX\r\n" in chunk and self.held.is_set() and conn_id != self._holder:
                reading.set()
            _send(server, chunk)
        server.close()

    def _down(self, conn_id: int, server: socket.socket, client: socket.socket, reading: threading.Event) -> None:
        while chunk := _recv(server):
            _send(client, chunk)
            if reading.is_set():  # the answer to the other connection's LINDEX went out
                self.read_by_other.set()
        client.close()

    def close(self) -> None:
        self.read_by_other.set()
        self.listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


@pytest.fixture
def redis_and_proxy() -> Iterator[tuple[RedisServer, HoldFirstRemoveProxy]]:
    server = RedisServer()
    server.start()
    proxy = HoldFirstRemoveProxy(server.port)
    try:
        yield server, proxy
    finally:
        proxy.close()
        server.close()


def test_hostile_two_replays_at_once_queue_a_dead_letter_once(
    redis_and_proxy: tuple[RedisServer, HoldFirstRemoveProxy],
) -> None:
    server, proxy = redis_and_proxy
    letter = {"topic": "vmh.beteiligte.update", "step": "beteiligte_sync_event",
              "data": {"id": "a58c05a98168dec10", "trigger": "webhook_update"}, "error": "DeferredError: x",
              "attempts": 5, "trace_id": "trace-dead-1", "failed_at": "2026-11-29T18:35:32+00:00"}
    redis.Redis.from_url(server.url).rpush(DEAD_LETTERS.decode(), json.dumps(letter))
    with state_root() as root:
        # sandbox mode on the shared REDIS_URL; each its own STATE_DIR (one sandbox command per folder)
        replays = [_start_replay(env_for(root / f"state{n}", free_port(), REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0"),
                                 root) for n in (1, 2)]
        outputs = [_finish(p) for p in replays]
    replayed = [int(m.group(1)) for out in outputs for m in re.finditer(r"replayed (\d+) dead letters", out)]
    assert sorted(replayed) == [0, 1], outputs  # one of them queued it, the other found nothing
    assert redis.Redis.from_url(server.url).llen(DEAD_LETTERS.decode()) == 0


def _start_replay(env: dict[str, str], root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "dead-letters", "replay", "--timeout", "60"],
                            env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=CLI_TIMEOUT_S + HOLD_DEADLINE_S)
    assert proc.returncode == 0, out + err
    return out


@pytest.mark.parametrize("command", [["sync-check"], ["dead-letters", "replay"]], ids=["sync-check", "replay"])
def test_hostile_a_full_shared_queue_does_not_stop_a_command_that_works_its_own(command: list[str]) -> None:
    """Issue 17, item 4: a command works its own events in its own process, never serve's shared queue
    (so a full shared queue is serve's matter): it does its work, and serve's queue is left as it was."""
    server = RedisServer()
    server.start()
    try:
        store = redis.Redis.from_url(server.url)
        store.rpush(DEAD_LETTERS.decode(), json.dumps({
            "topic": "vmh.beteiligte.update", "step": "beteiligte_sync_event",
            "data": {"id": "a58c05a98168dec10", "trigger": "webhook_update"}, "error": "x", "attempts": 5,
            "trace_id": "trace-dead-2", "failed_at": "2026-11-29T18:35:32+00:00"}))
        store.set("bsync:bus:pending", 10000)  # the bus's own count of queued events: motia.config.json maxSize
        with state_root() as root:
            env = env_for(root / "state", free_port(), REDIS_URL=server.url)
            done = subprocess.run([sys.executable, "-m", "entrypoints.cli", *command], env=env, cwd=root,
                                  capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "unexpected error" not in done.stderr, done.stderr
        assert int(store.get("bsync:bus:pending") or 0) == 10000  # serve's queue: untouched
        if command[0] == "dead-letters":
            assert "replayed 1 dead letters" in done.stdout
            assert store.llen(DEAD_LETTERS.decode()) == 0 and store.llen(DEAD_LETTERS.decode() + ":replaying") == 0
    finally:
        server.close()
