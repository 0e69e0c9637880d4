"""A real installation that is crashed on purpose: for ``tests/test_crash_recovery.py`` and
``bench/faults.py``.

Standalone simulators, ``beteiligte-sync serve`` as a child process (``kill -9``-ed and started again),
and either a throwaway ``redis-server`` with its AOF (``REDIS_URL``) or the embedded store
(``STATE_DIR``). The workload keeps the expected end state unambiguous: every record has its own
``lastName``; EspoCRM staff change only ``addressCity`` and Advoware staff only ``email``: two fields
of ``field_merge`` groups, so the side that changed a field wins it, whatever the order of the syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.embedded_redis import EmbeddedRedis
from adapters.espocrm_api import EspoCRMAPI
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import free_port
from tests.advoware_staff import ADVO_ENTITY_PATH, HTTP_TIMEOUT_S, AdvowareStaff
from tests.embedded_support import (
    ESPO_API_KEY,
    STAFF_KEY,
    Process,
    advo_records,
    cli,
    env_for,
    espo_records,
    set_faults,
    start_serve,
    start_simulator,
)
from tests.redis_server import RedisServer

CLEAN = "clean"
SYNCING = "syncing"
ESPO_ENTITY_PATH = "/api/v1/CBeteiligte"
EVENTS = ("create", "update", "delete")


@dataclass
class Expected:
    """What people last wrote: the value each field must end with on both sides."""

    last_name: str
    city: str  # written by EspoCRM staff (addressCity / ort)
    email: str  # written by Advoware staff (emailAddress / email)


@dataclass
class Outcome:
    records: int
    beteiligte: int
    not_clean: dict[str, str] = field(default_factory=dict)  # espo id -> status
    duplicates: int = 0  # Beteiligte beyond the one of each EspoCRM record
    orphans: int = 0  # Beteiligte no EspoCRM record points to
    lost: list[str] = field(default_factory=list)  # "<id> <field>: want .., espocrm .., advoware .."

    @property
    def syncing(self) -> int:
        return sum(1 for s in self.not_clean.values() if s == SYNCING)

    def ok(self) -> bool:
        return not self.not_clean and not self.duplicates and not self.orphans and not self.lost


class Workload:
    """People creating and editing records; remembers what they wrote last."""

    def __init__(self, espo: str, advo: str, tag: str) -> None:
        self.espo, self.advo_staff, self.tag = espo, AdvowareStaff(advo), tag
        self.expected: dict[str, Expected] = {}
        self.espo_edits = self.advo_edits = 0
        self._seq = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def create(self) -> str:
        n = self._next()
        want = Expected(f"{self.tag}-{n}", f"Start-{n}", f"start{n}@example.org")
        answer = httpx.post(f"{self.espo}{ESPO_ENTITY_PATH}", headers={"X-Api-Key": STAFF_KEY}, timeout=HTTP_TIMEOUT_S,
                            json={"lastName": want.last_name, "firstName": "Crash", "rechtsform": "natürliche Person",
                                  "addressCity": want.city, "emailAddress": want.email})
        answer.raise_for_status()
        espo_id = str(answer.json()["id"])
        self.expected[espo_id] = want
        return espo_id

    def edit_espo(self, espo_id: str) -> None:
        city = f"City-{self._next()}"
        answer = httpx.put(f"{self.espo}{ESPO_ENTITY_PATH}/{espo_id}", headers={"X-Api-Key": STAFF_KEY},
                           json={"addressCity": city}, timeout=HTTP_TIMEOUT_S)
        answer.raise_for_status()
        self.expected[espo_id].city = city
        self.espo_edits += 1

    def edit_advo(self, espo_id: str, betnr: int) -> None:
        email = f"advo{self._next()}@example.org"
        self.advo_staff.set_email(betnr, email)
        self.expected[espo_id].email = email
        self.advo_edits += 1

    def linked(self) -> dict[str, int]:
        """EspoCRM id -> betnr of the records already linked."""
        recs = espo_records(self.espo)
        return {r["id"]: int(r["betnr"]) for r in recs if r.get("betnr") and r["id"] in self.expected}

    def verify(self, *, espo_edits_only: bool = False) -> Outcome:
        """Counts against the expectation; ``espo_edits_only``: Advoware staff edits are not checked
        (they reach EspoCRM only with a sync of the record: a later EspoCRM change or the sync check)."""
        espo = {r["id"]: r for r in espo_records(self.espo)}
        advo = advo_records(self.advo_staff.url)
        by_betnr = {int(b["betNr"]): b for b in advo}
        names = Counter(b.get("name") for b in advo)
        linked = {int(r["betnr"]) for r in espo.values() if r.get("betnr")}
        out = Outcome(records=len(espo), beteiligte=len(advo))
        out.duplicates = sum(c - 1 for c in names.values())
        out.orphans = len(set(by_betnr) - linked)
        out.not_clean = {i: str(r.get("syncStatus")) for i, r in espo.items()
                         if r.get("syncStatus") != CLEAN or not r.get("betnr")}
        for espo_id, want in self.expected.items():
            rec = espo.get(espo_id, {})
            twin = by_betnr.get(int(rec.get("betnr") or 0), {})
            pairs = [("addressCity", "ort", want.city)]
            if not espo_edits_only:
                pairs.append(("emailAddress", "email", want.email))
            for espo_field, advo_field, value in pairs:
                if rec.get(espo_field) != value or twin.get(advo_field) != value:
                    out.lost.append(f"{espo_id} {espo_field}: want {value!r}, espocrm {rec.get(espo_field)!r}, "
                                    f"advoware {twin.get(advo_field)!r}")
        return out


def all_clean(espo: str) -> bool:
    recs = espo_records(espo)
    return bool(recs) and all(r.get("syncStatus") == CLEAN and r.get("betnr") for r in recs)


def syncing_ids(espo: str) -> set[str]:
    return {r["id"] for r in espo_records(espo) if r.get("syncStatus") == SYNCING}


WEBHOOK_RETRY_DELAY_S = 10.0


class Installation:
    """Simulators, a store and ``serve`` under ``root``. ``redis``: a throwaway redis-server with AOF
    (``REDIS_URL``); otherwise the embedded store in ``root/state``."""

    def __init__(self, root: Path, *, redis: bool, profile: str = "8", occ: bool = False,
                 webhook_interval: float = 1.0) -> None:
        self.root = root
        self.state = root / "state"
        occ_flag = "--occ" if occ else "--no-occ"
        # EspoCRM retries a failed batch every 10 min, 4 times: far longer than a restart. Compressed
        # here, but still longer than the slowest restart on a loaded machine (10 s apart, 30 s in all).
        self.espo_sim, self.espo = start_simulator("simulators.espocrm", root, "--profile", profile, occ_flag,
                                                   "--webhook-interval", str(webhook_interval),
                                                   "--webhook-retry-delay", str(WEBHOOK_RETRY_DELAY_S))
        self.advo_sim, self.advo = start_simulator("simulators.advoware", root)
        self.redis = RedisServer(appendonly=True) if redis else None
        extra = {"REDIS_URL": self.redis.url} if self.redis else {}
        if self.redis:
            self.redis.start()
        self.port = free_port()
        self.env = env_for(self.state, self.port, **extra, **self._configured())
        self.serve: Process | None = None
        self.serve_starts = 0

    def _configured(self) -> dict[str, str]:
        secrets = asyncio.run(_register_webhooks(self.espo, f"http://127.0.0.1:{self.port}"))
        creds = AdvowareSimulator().client_settings()
        env = {"ESPOCRM_URL": self.espo, "ESPOCRM_API_KEY": ESPO_API_KEY,
               "ESPOCRM_WEBHOOK_SECRETS": json.dumps(secrets), "ADVOWARE_URL": self.advo,
               "ADVOWARE_TOKEN_URL": self.advo}
        env.update({f"ADVOWARE_{re.sub(r'[^A-Z]', '_', k.upper())}": v for k, v in creds.items()})
        return env

    # -- serve ----------------------------------------------------------------------------------
    def start_serve(self) -> None:
        self.serve = start_serve(self.env, self.root)
        self.serve_starts += 1

    def kill_serve(self) -> None:
        if self.serve is not None:
            self.serve.kill9()
            self.serve = None

    def serve_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.root.glob("serve-*.log")))

    # -- the store ------------------------------------------------------------------------------
    def stop_store(self, *, kill: bool = False) -> None:
        """Redis down: stopped as an operator would, or (``kill``) with ``kill -9``; the embedded
        server is always killed (``serve`` starts it again)."""
        if self.redis:
            if kill:
                self.redis.kill()
            else:
                self.redis.stop()
            return
        pid = EmbeddedRedis(self.state).server_pid()
        if pid is not None:
            _signal(pid, signal.SIGKILL)

    def start_store(self) -> None:
        """Redis back (the embedded server is started again by ``serve`` itself within seconds)."""
        if self.redis:
            self.redis.start()

    # -- people and operators -----------------------------------------------------------------------
    def slow_advoware(self, seconds: float) -> None:
        """Every Advoware write waits ``seconds`` before it is applied: syncs stay ``syncing`` that long."""
        rules = [{"method": m, "path": f"{ADVO_ENTITY_PATH}", "delay": seconds, "times": None} for m in ("POST", "PUT")]
        self.heal()  # the simulator adds rules to the ones it has
        set_faults(self.advo, {"rules": rules})

    def lose_create_answers(self, seconds: float) -> None:
        """Creates are applied at once, their answers held back ``seconds`` (lost when serve dies)."""
        self.heal()
        set_faults(self.advo, {"rules": [{"method": "POST", "path": f"{ADVO_ENTITY_PATH}$", "lose_answer": True,
                                          "delay": seconds, "times": None}]})

    def heal(self) -> None:
        set_faults(self.advo, None)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A ``beteiligte-sync`` command beside this installation's serve (if one runs)."""
        return cli(self.env, *args, cwd=self.root)

    def sync_check(self) -> subprocess.CompletedProcess[str]:
        return self.cli("sync-check")

    def close(self) -> None:
        if self.serve is not None:
            self.serve.stop()
        for sim in (self.espo_sim, self.advo_sim):
            sim.stop()
        if self.redis:
            self.redis.close()


def wait_until(probe: Callable[[], Any], deadline_s: float, every: float = 0.2) -> float | None:
    """Seconds until ``probe()`` was true, or None when ``deadline_s`` passed first."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        try:
            if probe():
                return time.monotonic() - start
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(every)
    return None


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


async def _register_webhooks(espo: str, service_url: str) -> dict[str, str]:
    async with EspoCRMAPI(espo, ESPO_API_KEY) as api:
        hooks = [await api.register_webhook(f"CBeteiligte.{ev}", f"{service_url}/vmh/webhook/beteiligte/{ev}")
                 for ev in EVENTS]
    return {h["id"]: h["secretKey"] for h in hooks}
