"""Issue 17, item 4: a CLI command never handles serve's events. Real processes on one real Redis: a
``serve`` configured with ``DELETE_POLICY=unlink`` and, beside it, ``DELETE_POLICY=delete
beteiligte-sync sync <id>`` / ``sync-check --dry-run`` / ``dead-letters replay``. Staff deletes wait in
serve's shared queue while each command runs (serve is paused, so a command that read that queue would
take every one of them: before the fix ``sync`` deleted 5 of 5 Advoware parties). A writing command with
other sync settings than serve's refuses; with serve's it runs and leaves serve's queue as it was.
Afterwards serve works the deletes off with its own policy: 0 Advoware parties deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from entrypoints.runtime import CONFIG_FILE
from stephost.config import load_host_config
from stephost.host import StepHost
from tests.crash_support import ESPO_ENTITY_PATH, Installation, Workload, all_clean, wait_until
from tests.embedded_support import STAFF_KEY, advo_records, cli, state_root

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PER_COMMAND = 5
COMMANDS = (("sync", "{other}"), ("sync-check", "--dry-run"), ("sync-check", "--confirm-mass-change"),
            ("dead-letters", "replay"))


@pytest.fixture
def installation() -> Iterator[Installation]:
    with state_root() as root:
        inst = Installation(root, redis=True)
        try:
            inst.start_serve()
            yield inst
        finally:
            if inst.serve is not None:
                inst.serve.resume()
            inst.close()


async def _queue_for_serve(redis_url: str, espo_ids: list[str]) -> None:
    """What serve's delete webhook queues: one ``vmh.beteiligte.delete`` event per record, on the
    shared queue (the same host configuration as serve; not started, so it only publishes)."""
    client = aioredis.from_url(redis_url)
    try:
        host = StepHost(load_host_config(CONFIG_FILE, {"cron.enabled": False}), client, durable_bus=True)
        for espo_id in espo_ids:
            await host.emit("vmh.beteiligte.delete", {"id": espo_id, "deleted": True})
    finally:
        await client.aclose()


async def _queued(redis_url: str) -> int:
    """Events on serve's shared queue (queued or in flight)."""
    client = aioredis.from_url(redis_url)
    try:
        host = StepHost(load_host_config(CONFIG_FILE, {"cron.enabled": False}), client, durable_bus=True)
        await host.drain(0)
        return host.queue_depth()
    finally:
        await client.aclose()


def test_cli_commands_never_handle_serves_deletes(installation: Installation) -> None:
    inst = installation
    assert inst.redis is not None and inst.serve is not None
    work = Workload(inst.espo, inst.advo, "Own")
    ids = [work.create() for _ in range(PER_COMMAND * len(COMMANDS) + 1)]
    assert wait_until(lambda: all_clean(inst.espo) and len(work.linked()) == len(ids), 90) is not None
    betnrs = work.linked()
    other, doomed = ids[-1], ids[:-1]
    url = inst.redis.url
    delete_env = {**inst.env, "DELETE_POLICY": "delete"}

    inst.serve.pause()  # serve is there (its consumers, its queue, its settings) but takes nothing meanwhile
    for n, (command, *args) in enumerate(COMMANDS):
        batch = doomed[n * PER_COMMAND:(n + 1) * PER_COMMAND]
        for espo_id in batch:  # staff delete them in EspoCRM ...
            httpx.delete(f"{inst.espo}{ESPO_ENTITY_PATH}/{espo_id}", headers={"X-Api-Key": STAFF_KEY},
                         timeout=10).raise_for_status()
        asyncio.run(_queue_for_serve(url, batch))  # ... and serve's webhook queued the deletes
        queued = asyncio.run(_queued(url))
        argv = [command, *[a.format(other=other) for a in args]]
        # Another DELETE_POLICY: a writing command refuses in one line; a dry run looks, writes nothing.
        answer = cli(delete_env, *argv, cwd=inst.root)
        if "--dry-run" in argv:
            assert answer.returncode == 0, answer.stdout + answer.stderr
        else:
            assert answer.returncode == 2, answer.stdout + answer.stderr
            assert answer.stderr.strip().splitlines() == [
                "refused: the running serve syncs with other settings (DELETE_POLICY is unlink in serve, delete "
                "here): run this command with serve's settings (the same environment / .env), or stop serve first"]
        # serve's settings: it runs, working only its own events.
        same = cli(inst.env, *argv, cwd=inst.root)
        assert same.returncode in (0, 3), same.stdout + same.stderr
        left = {r["betNr"] for r in advo_records(inst.advo)}
        assert {betnrs[i] for i in batch} <= left, f"{command} handled serve's deletes with its own policy"
        assert asyncio.run(_queued(url)) == queued, f"{command} took events from serve's queue"

    inst.serve.resume()
    assert wait_until(lambda: asyncio.run(_queued(url)) == 0, 60) is not None
    left = {r["betNr"] for r in advo_records(inst.advo)}
    assert {betnrs[i] for i in doomed} <= left  # serve's policy: unlink, 0 Advoware deletes
    assert "policy delete" not in inst.serve_logs()
