"""The installation ``bench/throughput.py`` measures: simulators far away, a throwaway Redis, real
``serve`` processes; EspoCRM's webhook job played by the script; probes and process figures."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from simulators.espocrm.signing import delivery_headers, php_json_encode
from tests.crash_support import _register_webhooks
from tests.embedded_support import (
    ESPO_API_KEY,
    STAFF_KEY,
    Process,
    cli,
    env_for,
    set_faults,
    start_serve,
    start_simulator,
)
from tests.redis_server import RedisServer

ENTITY_PATH = "/api/v1/CBeteiligte"
BATCH = 50  # EspoCRM's webhookBatchSize
DEADLINE_S = 600.0
STALL_S = 20.0  # a run with records still unsynced this long after its last write runs a sync check


class Rig:
    """Simulators, Redis and ``procs`` serve processes under ``root``."""

    def __init__(self, root: Path, *, procs: int, concurrency: int) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.espo_sim, self.espo = start_simulator("simulators.espocrm", root, "--profile", "9",
                                                   "--webhook-interval", "1000000")
        self.advo_sim, self.advo = start_simulator("simulators.advoware", root)
        self.redis = RedisServer()
        self.redis.start()
        self.ports = [_free_port() for _ in range(procs)]
        self.secrets = asyncio.run(_register_webhooks(self.espo, f"http://127.0.0.1:{self.ports[0]}"))
        self.hooks = _hook_ids(self.espo, self.secrets)
        self.concurrency = concurrency
        self.serves: list[Process] = []
        self.envs: list[dict[str, str]] = []
        self.sync_checks = 0  # run by finish_stragglers
        for port in self.ports:
            # No scheduled sync check: one firing in the middle of a run would re-read the records still
            # pending (a second sync each) and move the figures at random; finish_stragglers runs one
            # when a sync failed transiently (a connection reset under load), as the schedule would.
            env = env_for(root / f"state-{port}", port, REDIS_URL=self.redis.url, SYNC_CONCURRENCY=str(concurrency),
                          **self._configured())
            self.envs.append(env)
            self.serves.append(start_serve(env, root))
        self.client = httpx.Client(timeout=30)
        self._next = 0

    def _configured(self) -> dict[str, str]:
        from simulators.advoware.simulator import AdvowareSimulator

        creds = AdvowareSimulator().client_settings()
        env = {"ESPOCRM_URL": self.espo, "ESPOCRM_API_KEY": ESPO_API_KEY,
               "ESPOCRM_WEBHOOK_SECRETS": json.dumps(self.secrets), "ADVOWARE_URL": self.advo,
               "ADVOWARE_TOKEN_URL": self.advo}
        env.update({f"ADVOWARE_{''.join(c if c.isalpha() else '_' for c in k.upper())}": v for k, v in creds.items()})
        return env

    # -- people and EspoCRM's webhook job ---------------------------------------------------------
    def create_staff(self, n: int, tag: str) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            answer = self.client.post(f"{self.espo}{ENTITY_PATH}", headers={"X-Api-Key": STAFF_KEY},
                                      json={"lastName": f"{tag}-{i}", "firstName": "Bench",
                                            "rechtsform": "natürliche Person", "addressCity": "Start"})
            answer.raise_for_status()
            out.append(answer.json())
        return out

    def edit_staff(self, ids: list[str], city: str) -> list[dict[str, Any]]:
        for espo_id in ids:
            self.client.put(f"{self.espo}{ENTITY_PATH}/{espo_id}", headers={"X-Api-Key": STAFF_KEY},
                            json={"addressCity": city}).raise_for_status()
        return [{"id": espo_id, "addressCity": city} for espo_id in ids]

    def post_webhook(self, event: str, items: list[dict[str, Any]], client: httpx.Client | None = None) -> float:
        """One signed batch to the next serve process; returns the answer time in ms."""
        return self.post_prepared(self.prepare_webhook(event, items), client)

    def prepare_webhook(self, event: str, items: list[dict[str, Any]]) -> tuple[str, bytes, dict[str, str]]:
        """The next serve process's URL, the batch's body and its signed headers."""
        hook_id = self.hooks[event]
        body = php_json_encode(items)
        headers = delivery_headers(hook_id, self.secrets[hook_id], body, with_signature=True)
        port = self.ports[self._next % len(self.ports)]
        self._next += 1
        return f"http://127.0.0.1:{port}/vmh/webhook/beteiligte/{event}", body, headers

    def post_prepared(self, prepared: tuple[str, bytes, dict[str, str]], client: httpx.Client | None = None) -> float:
        url, body, headers = prepared
        started = time.perf_counter()
        answer = (client or self.client).post(url, content=body, headers=headers)
        took = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"webhook answered {answer.status_code}: {answer.text}")
        return took

    def finish_stragglers(self) -> None:
        """One sync check now (the CLI's), for records a transient failure left unsynced."""
        self.sync_checks += 1
        done = cli(self.envs[0], "sync-check", cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"sync-check failed ({done.returncode}): {done.stderr[-2000:]}")

    # -- observing ----------------------------------------------------------------------------------
    def latency(self, seconds: float) -> None:
        for url in (self.espo, self.advo):
            set_faults(url, {"latency": seconds})

    def reset_counts(self) -> None:
        for url in (self.espo, self.advo):
            self.client.delete(f"{url}/__sim/calls").raise_for_status()

    def api_calls(self) -> int:
        n = 0
        for url in (self.espo, self.advo):
            for key, count in self.client.get(f"{url}/__sim/calls").json().items():
                if not key.endswith("/Token") and not any(s in key for s in ("/App/user", "/Metadata", "/Settings")):
                    n += count
        return n

    def espo_puts(self) -> int:
        return int(self.client.get(f"{self.espo}/__sim/calls").json().get("PUT /api/v1/CBeteiligte/{id}", 0))

    def last_espo_answer(self) -> float:
        return float(self.client.get(f"{self.espo}/__sim/activity").json()["last_done"])

    def records(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.client.get(f"{self.espo}/__sim/records").json()}

    def advo_records(self) -> dict[int, dict[str, Any]]:
        return {int(b["betNr"]): b for b in self.client.get(f"{self.advo}/__sim/records").json()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each process of the installation (user + system)."""
        procs = {"serve" if len(self.serves) == 1 else f"serve{i + 1}": p.proc.pid for i, p in enumerate(self.serves)}
        procs.update(espocrm=self.espo_sim.proc.pid, advoware=self.advo_sim.proc.pid)
        if self.redis._proc is not None:
            procs["redis"] = self.redis._proc.pid
        return {name: _cpu_seconds(pid) for name, pid in procs.items()}

    def peak_rss_mb(self) -> list[float]:
        return [_vm_hwm_kb(p.proc.pid) / 1024 for p in self.serves]

    def close(self) -> None:
        self.client.close()
        for p in self.serves:
            p.stop()
        for sim in (self.espo_sim, self.advo_sim):
            sim.stop()
        self.redis.close()


def _free_port() -> int:
    from simulators.common import free_port

    return free_port()


def _hook_ids(espo: str, secrets: dict[str, str]) -> dict[str, str]:
    hooks = httpx.get(f"{espo}/api/v1/Webhook", headers={"X-Api-Key": ESPO_API_KEY}, timeout=10).json()["list"]
    return {h["event"].split(".")[1]: h["id"] for h in hooks if h["id"] in secrets}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wait_until(what: str, probe: Callable[[], bool], every: float = 0.1,
               stalled: Callable[[], None] | None = None, stall_s: float = STALL_S) -> None:
    """Poll ``probe`` until it holds; ``stalled`` is called each time ``stall_s`` passes without it."""
    end = time.monotonic() + DEADLINE_S
    nudge = time.monotonic() + stall_s
    while time.monotonic() < end:
        if probe():
            return
        if stalled is not None and time.monotonic() > nudge:
            stalled()
            nudge = time.monotonic() + stall_s
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


class Prober:
    """Posts one-item update webhooks naming only an unmapped field (nothing to sync) every
    ``every`` seconds while a run syncs; keeps their answer times."""

    def __init__(self, rig: Rig, espo_id: str, every: float = 0.04) -> None:
        self.rig, self.espo_id, self.every = rig, espo_id, every
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self._stop.wait(self.every):
                n += 1
                self.times.append(self.rig.post_webhook("update", [{"id": self.espo_id, "description": f"p{n}"}],
                                                        client))


def send_all(rig: Rig, event: str, items: list[dict[str, Any]]) -> float:
    """Post every batch at once (one thread each, as EspoCRM's job for several webhooks would);
    returns the wall-clock time the batches went out. The clients and the signed bodies are made
    before that: an ``httpx.Client`` loads its TLS context when it is made (about 15 ms each), and
    encoding and signing 8 batches in the bench's threads took another 20 ms before the first one
    left; both are the bench's own work (EspoCRM's job has its batch ready), not the service's."""
    batches = [rig.prepare_webhook(event, items[i:i + BATCH]) for i in range(0, len(items), BATCH)]
    clients = [httpx.Client(timeout=30) for _ in batches]
    go = threading.Event()

    def post(batch: tuple[str, bytes, dict[str, str]], client: httpx.Client) -> None:
        go.wait()
        rig.post_prepared(batch, client)

    threads = [threading.Thread(target=post, args=(b, c)) for b, c in zip(batches, clients, strict=True)]
    for t in threads:
        t.start()
    started = time.time()
    go.set()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    return started
