"""Runs the five step files unchanged under the real Motia 0.17 (npm): one create ends clean in both systems.

The app folder is made in a temporary directory: ``package.json`` with motia 0.17, the files of
``steps/``, and ``python_modules`` pointing at this venv (which has the package installed). Motia gets
its own throwaway redis-server (``MOTIA_REDIS_*``; the service's state uses the same one through
``REDIS_URL``), both simulators run standalone, and ``motia dev`` listens on a port of at most 43857.
The check creates one record as staff in EspoCRM, waits until it is clean with a betnr, and prints the
time and the EspoCRM calls per create (App/user, Metadata and Settings come from the store after the first).
Without npm it says so and exits 0. Everything it starts is stopped by its PID (Motia's process group).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.espocrm_api import EspoCRMAPI  # noqa: E402
from simulators.advoware.simulator import AdvowareSimulator  # noqa: E402
from tests.embedded_support import ESPO_API_KEY, all_clean, create_as_staff, start_simulator, wait_for  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

MOTIA = "0.17.6-beta.187"  # the last 0.17 on npm
MAX_PORT = 43857
ROOT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT_S = 600
EVENTS = ("create", "update", "delete")


def motia_port() -> int:
    import random
    import socket

    for port in random.sample(range(30000, MAX_PORT + 1), 200):  # random: two checks at once get two ports
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 43857")


async def register(espo_url: str, service: str) -> dict[str, str]:
    secrets = {}
    async with EspoCRMAPI(espo_url, ESPO_API_KEY) as api:
        for ev in EVENTS:
            hook = await api.register_webhook(f"CBeteiligte.{ev}", f"{service}/vmh/webhook/beteiligte/{ev}")
            secrets[hook["id"]] = hook["secretKey"]
    return secrets


def app_folder(work: Path) -> Path:
    app = work / "app"
    (app / "steps").mkdir(parents=True)
    for step in (ROOT / "steps").glob("*_step.py"):
        shutil.copy2(step, app / "steps" / step.name)
    (app / "package.json").write_text(json.dumps({"name": "bsync-motia-check", "private": True,
                                                  "dependencies": {"motia": MOTIA}}))
    (app / "python_modules").symlink_to(sys.prefix)
    # Our own config: without one, motia writes a template whose plugins it then installs at a version
    # that does not exist on npm for the 0.17 betas (ETARGET); the steps need none of them.
    (app / "motia.config.js").write_text("export default { plugins: [] }\n")
    return app


def main() -> int:
    if not shutil.which("npm"):
        print("npm not available, skipped")
        return 0
    work = Path(tempfile.mkdtemp(prefix="motia-check-", dir="/tmp"))
    started: list[subprocess.Popen[bytes]] = []
    sims = []
    ok = False
    redis = RedisServer(appendonly=False)
    try:
        app = app_folder(work)
        t0 = time.monotonic()
        # Motia's redis-memory-server would download Redis in its postinstall: use the machine's instead.
        npm_env = {**os.environ, "REDISMS_DISABLE_POSTINSTALL": "1",
                   "REDISMS_SYSTEM_BINARY": shutil.which("redis-server") or "/usr/bin/redis-server"}
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=app,
                              env=npm_env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            print(f"npm install of motia {MOTIA} failed:\n{done.stderr[-2000:]}")
            return 1
        print(f"npm install motia {MOTIA}: {time.monotonic() - t0:.0f} s")
        redis.start()
        espo, espo_url = start_simulator("simulators.espocrm", work, "--webhook-interval", "2")
        advo, advo_url = start_simulator("simulators.advoware", work)
        sims += [espo, advo]
        port = motia_port()
        service = f"http://127.0.0.1:{port}"
        secrets = asyncio.run(register(espo_url, service))
        creds = AdvowareSimulator().client_settings()
        env = {**os.environ, "MOTIA_REDIS_HOST": "127.0.0.1", "MOTIA_REDIS_PORT": str(redis.port),
               "MOTIA_DISABLE_MEMORY_SERVER": "true",
               "REDIS_URL": redis.url, "ESPOCRM_URL": espo_url, "ESPOCRM_API_KEY": ESPO_API_KEY,
               "ESPOCRM_WEBHOOK_SECRETS": json.dumps(secrets), "ADVOWARE_URL": advo_url,
               "ADVOWARE_TOKEN_URL": advo_url, "ADVOWARE_APP_ID": creds["app_id"],
               "ADVOWARE_API_KEY": creds["api_key"], "ADVOWARE_KANZLEI": creds["kanzlei"],
               "ADVOWARE_DATABASE": creds["database"], "ADVOWARE_USER": creds["user"],
               "ADVOWARE_PASSWORD": creds["password"], "LOG_LEVEL": "INFO", "SYNC_CHECK_CRON": "0 3 29 2 *",
               "REDISMS_SYSTEM_BINARY": npm_env["REDISMS_SYSTEM_BINARY"]}
        log = open(work / "motia.log", "wb")  # noqa: SIM115 - closed with the process below
        motia = subprocess.Popen(["npx", "motia", "dev", "--port", str(port), "--host", "127.0.0.1"], cwd=app,
                                 env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(motia)

        def up() -> bool:
            assert motia.poll() is None, (work / "motia.log").read_text()[-3000:]
            try:
                httpx.get(service, timeout=2)
            except httpx.HTTPError:
                return False
            return True

        wait_for("motia dev to listen", up, 300, 1.0)
        fact_reads = []
        for n in (1, 2):  # the second create: a fresh Python process per handler call, facts from the store
            httpx.delete(f"{espo_url}/__sim/calls", timeout=5)
            t0 = time.monotonic()
            espo_id = create_as_staff(espo_url, f"Motiatest{n}")
            wait_for("the create to end clean under Motia", partial(all_clean, espo_url, {espo_id}), 180, 0.5)
            took = time.monotonic() - t0
            calls = httpx.get(f"{espo_url}/__sim/calls", timeout=5).json()
            fact_reads.append(sum(v for k, v in calls.items() if k.endswith(("App/user", "Metadata", "Settings"))))
            print(f"create {n} -> clean under Motia {MOTIA}: {took:.1f} s (includes EspoCRM's 2 s webhook job); "
                  f"EspoCRM calls: {sum(calls.values())} {json.dumps(calls, sort_keys=True)}")
        if fact_reads[1] != 0:
            print(f"FAILED: the second create read App/user, Metadata or Settings again ({fact_reads[1]} calls)")
            return 1
        ok = True
        return 0
    finally:
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
        for sim in sims:
            sim.stop()
        redis.close()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(app folder and Motia's log kept in {work} to look at; delete it when done)")


if __name__ == "__main__":
    sys.exit(main())
