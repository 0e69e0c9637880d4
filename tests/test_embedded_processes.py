"""``serve`` and CLI commands as real processes on the embedded store (no REDIS_URL).

They share one redis-server (locks, links, the queue), a CLI command that would not share it refuses,
and a ``kill -9`` of serve and of the server loses neither the links nor the queued events.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.embedded_redis import SANDBOX_SUBDIR, EmbeddedRedis
from adapters.espocrm_api import EspoCRMAPI
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import free_port
from stephost.state import DeadLetterStore
from tests.crash_support import WEBHOOK_RETRY_DELAY_S
from tests.embedded_support import (
    ESPO_API_KEY,
    Process,
    advo_records,
    all_clean,
    cli,
    create_as_staff,
    env_for,
    espo_records,
    published_sandbox,
    set_faults,
    start_serve,
    start_simulator,
    state_root,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SLOW_POST_S = 10  # Advoware's answer to the first POST: time enough to see the record syncing and freeze serve
HTTP_TIMEOUT = "60"
SAMPLES = 3
KEY_PREFIX = "bsync"  # motia.config.json redis.keyPrefix


@dataclass
class SandboxServe:
    root: Path
    state: Path
    env: dict[str, str]
    espo: str
    advo: str
    serve: Process


@pytest.fixture(scope="module")
def sandbox_serve() -> Iterator[SandboxServe]:
    """``serve`` in sandbox mode on a fresh state folder, its three samples synced."""
    with state_root() as root:
        state = root / "state"
        env = env_for(state, free_port(), HTTP_TIMEOUT_SECONDS=HTTP_TIMEOUT)
        serve = start_serve(env, root)
        try:
            sims = published_sandbox(state)
            wait_for("the samples to be synced", lambda: len(all_clean(sims["espocrm_url"]) or []) == SAMPLES)
            yield SandboxServe(root, state, env, sims["espocrm_url"], sims["advoware_simulator_url"], serve)
        finally:
            serve.stop()


def test_cli_beside_serve_sees_its_links_and_creates_nothing(sandbox_serve: SandboxServe) -> None:
    s = sandbox_serve
    before = advo_records(s.advo)
    done = cli(s.env, "sync-check", cwd=s.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"scanned {SAMPLES}, queued 0 records" in done.stdout  # serve's links are this command's links
    assert advo_records(s.advo) == before


def test_cli_sync_meets_the_lock_serve_holds_and_no_second_beteiligter_is_created(sandbox_serve: SandboxServe) -> None:
    s = sandbox_serve
    set_faults(s.advo, {"rules": [{"method": "POST", "path": "/Beteiligte$", "delay": SLOW_POST_S, "times": 1}]})
    espo_id = create_as_staff(s.espo, "Geteilt")
    wait_for("serve to take the record's lock", lambda: _status(s.espo, espo_id) == "syncing")
    s.serve.pause()  # frozen mid-create, lock held
    with ThreadPoolExecutor(1) as pool:  # before the shared store: a second POST, a duplicate
        running = pool.submit(cli, s.env, "sync", espo_id, cwd=s.root)
        with EmbeddedRedis(s.state / SANDBOX_SUBDIR).sync_client() as client:
            # the command meets serve's lease and flags its change for the holder
            wait_for("the command to flag its change", lambda: bool(client.exists(f"{KEY_PREFIX}:dirty:{espo_id}")))
        s.serve.resume()  # the holder takes the flag: its next pass covers the command's change
        done = running.result()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "covered_by_lock_holder" in done.stdout
    wait_for("serve to finish the create", lambda: all_clean(s.espo, {espo_id}))
    assert [r["name"] for r in advo_records(s.advo)].count("Geteilt") == 1


def test_dead_letters_beside_serve_read_serve_s_store(sandbox_serve: SandboxServe) -> None:
    s = sandbox_serve
    letter = {"step": "beteiligte_sync_event", "topic": "vmh.beteiligte.update", "error": "planted by the test"}
    key = DeadLetterStore(None, KEY_PREFIX).key  # where serve's host keeps them
    with EmbeddedRedis(s.state / SANDBOX_SUBDIR).sync_client() as client:
        client.rpush(key, json.dumps(letter))
    try:
        done = cli(s.env, "dead-letters", cwd=s.root)
        assert done.returncode == 0, done.stderr
        assert "planted by the test" in done.stdout
        health = httpx.get(f"http://127.0.0.1:{s.env['PORT']}/health", timeout=10).json()
        assert health["dead_letters"] >= 1
    finally:
        with EmbeddedRedis(s.state / SANDBOX_SUBDIR).sync_client() as client:
            client.lrem(key, 0, json.dumps(letter))


def test_cli_with_another_state_dir_refuses_and_starts_nothing(sandbox_serve: SandboxServe) -> None:
    s = sandbox_serve
    other = s.root / "other"
    done = cli({**s.env, "STATE_DIR": str(other)}, "sync-check", cwd=s.root)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "refusing to run" in done.stderr and "an embedded store in another STATE_DIR" in done.stderr
    assert str(s.state) not in done.stderr  # /health/store names no path (it needs no login)
    assert not (other / SANDBOX_SUBDIR / "redis.sock").exists()


def test_cli_with_a_redis_url_refuses_while_serve_uses_the_embedded_store(
    sandbox_serve: SandboxServe, real_redis_url: str,
) -> None:
    s = sandbox_serve
    done = cli({**s.env, "REDIS_URL": real_redis_url}, "dead-letters", cwd=s.root)
    assert done.returncode == 2
    assert "refusing to run" in done.stderr and "REDIS_URL" in done.stderr


def test_store_stop_is_refused_while_serve_uses_the_store(sandbox_serve: SandboxServe) -> None:
    s = sandbox_serve
    done = cli(s.env, "store", "stop", cwd=s.root)
    assert done.returncode == 2 and "stop serve first" in done.stderr
    assert EmbeddedRedis(s.state / SANDBOX_SUBDIR).is_running()


def test_a_second_sandbox_serve_on_the_same_state_refuses(sandbox_serve: SandboxServe) -> None:
    s = sandbox_serve
    done = cli({**s.env, "PORT": str(free_port())}, "serve", cwd=s.root)
    assert done.returncode == 2 and "a sandbox already runs" in done.stderr


def test_serve_starts_a_killed_embedded_server_again_with_its_data() -> None:
    with state_root() as root:
        env = env_for(root / "state", free_port())
        serve = start_serve(env, root)
        try:
            store = EmbeddedRedis(root / "state" / SANDBOX_SUBDIR)
            store_id = _store_id(env)
            pid = store.server_pid()
            assert pid is not None
            os.kill(pid, 9)
            wait_for("serve to start the server again", lambda: store.server_pid() not in (None, pid))
            assert _store_id(env) == store_id  # the same data, replayed from the AOF
        finally:
            serve.stop()


def test_kill_9_of_serve_and_of_the_server_loses_no_link_and_no_queued_event() -> None:
    with state_root() as root:
        # EspoCRM retries a failed batch every 10 min; compressed, but longer than a restart (see crash_support).
        espo_sim, espo = start_simulator("simulators.espocrm", root, "--webhook-interval", "0.5",
                                         "--webhook-retry-delay", str(WEBHOOK_RETRY_DELAY_S))
        advo_sim, advo = start_simulator("simulators.advoware", root)
        try:
            _crash_and_recover(root, espo, advo)
        finally:
            espo_sim.stop()
            advo_sim.stop()


def _crash_and_recover(root: Path, espo: str, advo: str) -> None:
    port = free_port()
    # 4 syncs in flight (SYNC_CONCURRENCY): at most those are held by the dead worker's leases below
    env = env_for(root / "state", port, HTTP_TIMEOUT_SECONDS=HTTP_TIMEOUT, SYNC_CONCURRENCY="4",
                  **_configured(espo, advo, port))
    store = EmbeddedRedis(root / "state")
    serve = start_serve(env, root)
    try:
        first = {create_as_staff(espo, f"Erst{i}") for i in range(5)}
        wait_for("the first records to be synced", lambda: all_clean(espo, first))
        links = _links(store)
        assert set(links) == {f"bsync:link:{i}" for i in first}
        set_faults(advo, {"latency": 2})  # every sync now takes seconds: the queue fills up
        later = {create_as_staff(espo, f"Spaet{i}") for i in range(24)}
        wait_for("events to queue up", lambda: _health(port)["queue_depth"] >= 12)
        server_pid = store.server_pid()
        serve.kill9()
    finally:
        serve.stop()
    assert server_pid is not None
    os.kill(server_pid, 9)  # the store crashes too: only its append-only file is left
    wait_for("the server to be gone", lambda: not store.is_running())
    set_faults(advo, None)
    serve = start_serve(env, root)  # no webhook is sent again and no sync check runs: only the queue
    try:
        wait_for("every record to be synced or held by the dead worker's lock",
                 lambda: _settled(espo, store, first | later))
        assert {k: v for k, v in _links(store).items() if k in links} == links
        clean = _clean_ids(espo)
        assert len(clean & later) >= len(later) - 4  # at most the 4 syncs in flight at the kill are held
        names = Counter(r["name"] for r in advo_records(advo))
        assert max(names.values()) == 1, names  # nothing created twice
        for rec in espo_records(espo):
            if rec["id"] in clean:
                assert _advo_name(advo, rec["betnr"]) == rec["lastName"]
    finally:
        serve.stop()


# -- helpers ----------------------------------------------------------------------------------------
def _status(espo: str, espo_id: str) -> str | None:
    return next((r.get("syncStatus") for r in espo_records(espo) if r["id"] == espo_id), None)


def _health(port: int) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json())


def _store_id(env: dict[str, str]) -> str:
    url = f"http://127.0.0.1:{env['PORT']}/health/store"
    answer = wait_for("serve's store id", lambda: httpx.get(url, timeout=10).text)
    assert env["STATE_DIR"] not in answer  # the route needs no login: it names no server path (issue 19)
    return str(wait_for("serve's store id", lambda: httpx.get(url, timeout=10).json().get("store_id")))


def _links(store: EmbeddedRedis) -> dict[str, bytes]:
    with store.sync_client() as client:
        return {k.decode(): client.get(k) for k in client.scan_iter("bsync:link:*")}


def _settled(espo: str, store: EmbeddedRedis, ids: set[str]) -> bool:
    with store.sync_client() as client:
        locked = {k.decode().rsplit(":", 1)[1] for k in client.scan_iter("bsync:lock:*")}
    return _clean_ids(espo) | locked >= ids


def _clean_ids(espo: str) -> set[str]:
    return {r["id"] for r in espo_records(espo) if r.get("syncStatus") == "clean" and r.get("betnr")}


def _advo_name(advo: str, betnr: int) -> str | None:
    return next((r["name"] for r in advo_records(advo) if r["betNr"] == betnr), None)


def _configured(espo: str, advo: str, port: int) -> dict[str, str]:
    """Environment of a configured installation against the standalone simulators."""
    secrets = asyncio.run(_register_webhooks(espo, f"http://127.0.0.1:{port}"))
    creds = AdvowareSimulator().client_settings()
    env = {"ESPOCRM_URL": espo, "ESPOCRM_API_KEY": ESPO_API_KEY, "ESPOCRM_WEBHOOK_SECRETS": json.dumps(secrets),
           "ADVOWARE_URL": advo, "ADVOWARE_TOKEN_URL": advo}
    env.update({f"ADVOWARE_{re.sub(r'[^A-Z]', '_', k.upper())}": v for k, v in creds.items()})
    return env


async def _register_webhooks(espo: str, service_url: str) -> dict[str, str]:
    async with EspoCRMAPI(espo, ESPO_API_KEY) as api:
        hooks = [await api.register_webhook(f"CBeteiligte.{ev}", f"{service_url}/vmh/webhook/beteiligte/{ev}")
                 for ev in ("create", "update", "delete")]
    return {h["id"]: h["secretKey"] for h in hooks}
