"""``beteiligte-sync doctor`` and ``webhooks register`` as real processes, against the standalone
simulators on both EspoCRM profiles and a running ``serve`` (embedded store).

A correctly set up installation is all ✓ (⚠ only for OCC off, unaudited fields, and for skipOwn on 8.x) and exits 0;
``webhooks register`` twice leaves 3 webhooks whose stored secrets the running serve accepts; on
8.x the doctor's own test record comes back as create/update/delete webhooks that change nothing.
Each misconfiguration gets its ✗ line and exit code 1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from entrypoints.doctor_espocrm import TEST_LAST_NAME
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import free_port
from tests.embedded_support import (
    CLI_TIMEOUT_S,
    ESPO_API_KEY,
    Process,
    advo_records,
    all_clean,
    create_as_staff,
    env_for,
    espo_records,
    start_serve,
    start_simulator,
    state_root,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROFILES = ["8", "9"]
LINE = re.compile(r"^(✓|⚠|✗|–) ([^:]+): (.*)$")
OK, WARN, FAIL, SKIP = "✓", "⚠", "✗", "–"
CREDS = AdvowareSimulator().client_settings()
ADVO_SECRETS = (CREDS["api_key"], ESPO_API_KEY)
ALL_CHECKS = {"configuration", "EspoCRM access", "entity CBeteiligte", "CBeteiligte fields",
              "salutationName options ↔ Advoware anrede", "optimistic concurrency control", "API user's rights",
              "webhook CBeteiligte.create", "webhook CBeteiligte.update", "webhook CBeteiligte.delete",
              "Advoware token", "Advoware read", "store", "store settings"}


def run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", timeout=CLI_TIMEOUT_S)


def checks(out: str) -> dict[str, str]:
    """check name -> its symbol, from the doctor's output."""
    return {m.group(2): m.group(1) for line in out.splitlines() if (m := LINE.match(line))}


def systems_env(espo_url: str, advo_url: str) -> dict[str, str]:
    env = {"ESPOCRM_URL": espo_url, "ESPOCRM_API_KEY": ESPO_API_KEY, "ADVOWARE_URL": advo_url,
           "ADVOWARE_TOKEN_URL": advo_url}
    env.update({f"ADVOWARE_{k.upper()}": v for k, v in CREDS.items()})
    return env


@pytest.fixture(scope="module")
def advoware() -> Iterator[str]:
    with state_root() as root:
        sim, url = start_simulator("simulators.advoware", root)
        try:
            yield url
        finally:
            sim.stop()


@dataclass
class Installation:
    profile: str
    root: Path
    env: dict[str, str]
    espo: str
    advo: str
    public_url: str
    serve: Process


@pytest.fixture(scope="module", params=PROFILES, ids=[f"espo{p}" for p in PROFILES])
def inst(request: pytest.FixtureRequest, advoware: str) -> Iterator[Installation]:
    """Set up as the README says (German salutations; OCC left off), serve running, no webhooks yet."""
    profile = request.param
    with state_root() as root:
        espo, espo_url = start_simulator("simulators.espocrm", root, "--profile", profile,
                                         "--salutation-options", "german", "--webhook-interval", "0.2")
        port = free_port()
        env = env_for(root / "state", port, **systems_env(espo_url, advoware))
        serve = start_serve(env, root)
        try:
            yield Installation(profile, root, env, espo_url, advoware, f"http://127.0.0.1:{port}", serve)
        finally:
            serve.stop()
            espo.stop()


def webhook_count(inst: Installation) -> int:
    answer = httpx.get(f"{inst.espo}/api/v1/Webhook", headers={"X-Api-Key": ESPO_API_KEY}, timeout=10)
    return int(answer.json()["total"])


def metric(inst: Installation, name: str, labels: str) -> float:
    text = httpx.get(f"{inst.public_url}/metrics", timeout=10).text
    found = re.search(rf"^{name}{{{re.escape(labels)}}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def health(inst: Installation) -> dict[str, object]:
    return dict(httpx.get(f"{inst.public_url}/health", timeout=10).json())


def test_register_twice_then_doctor_is_green_and_serve_takes_the_stored_secrets(inst: Installation) -> None:
    first = run(inst.env, "webhooks", "register", "--public-url", inst.public_url, cwd=inst.root)
    second = run(inst.env, "webhooks", "register", "--public-url", inst.public_url, cwd=inst.root)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.count(": created webhook") == 3 and second.stdout.count(": reused webhook") == 3
    assert webhook_count(inst) == 3

    doctor = run(inst.env, "doctor", "--public-url", inst.public_url, cwd=inst.root)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    # EspoCRM's defaults: optimistic concurrency off, no field audited (issue 17 item 6)
    warnings = {"optimistic concurrency control", "audited fields"} | (
        {"webhooks skipOwn"} if inst.profile == "8" else set())
    found = checks(doctor.stdout)
    assert {c for c, s in found.items() if s != OK} == warnings, doctor.stdout
    assert {c for c, s in found.items() if s == WARN} == warnings
    assert set(found) == ALL_CHECKS | warnings
    assert "0 failed" in doctor.stdout and not any(secret in doctor.stdout for secret in ADVO_SECRETS)

    listed = run(inst.env, "webhooks", "list", cwd=inst.root)
    assert listed.stdout.count("secret stored") == 3 and "3 webhooks" in listed.stdout

    staff = create_as_staff(inst.espo, "Nach dem Doktor")  # delivered signed with a stored secret only
    wait_for("serve to sync the staff record", lambda: all_clean(inst.espo, {staff}))
    if inst.profile == "8":
        _doctors_record_came_back_harmlessly(inst)


def _doctors_record_came_back_harmlessly(inst: Installation) -> None:
    """8.x sends the API user's own writes too: create, update and delete of a record already gone."""
    wait_for("the doctor's delete webhook", lambda: metric(
        inst, "beteiligte_webhook_requests_total", 'event="delete",status="200"') >= 1)
    wait_for("the queue to drain", lambda: health(inst)["queue_depth"] == 0)
    assert [r["name"] for r in advo_records(inst.advo)] == ["Nach dem Doktor"]
    assert not [r for r in espo_records(inst.espo) if r["lastName"] == TEST_LAST_NAME]
    assert health(inst)["dead_letters"] == 0
    assert metric(inst, "beteiligte_sync_total", 'action="skip_deleted",outcome="ok"') >= 1
    assert "beteiligte_sync_failures_total{" not in httpx.get(f"{inst.public_url}/metrics", timeout=10).text
    assert "Traceback" not in inst.serve.output() and " ERROR " not in inst.serve.output()


@pytest.fixture(scope="module", params=PROFILES, ids=[f"espo{p}" for p in PROFILES])
def misconfigured(request: pytest.FixtureRequest, advoware: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """EspoCRM with stock salutations (Dr.), without betnr, OCC on; no webhooks; Advoware's password
    wrong; REDIS_URL pointing where no Redis listens."""
    with state_root() as root:
        espo, espo_url = start_simulator("simulators.espocrm", root, "--profile", request.param, "--occ",
                                         "--without-field", "betnr")
        env = env_for(root / "state", free_port(), **systems_env(espo_url, advoware))
        env.update(ADVOWARE_PASSWORD="falsch", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
        try:
            yield root, env
        finally:
            espo.stop()


def test_each_misconfiguration_gets_its_line_and_exit_1(misconfigured: tuple[Path, dict[str, str]]) -> None:
    root, env = misconfigured
    public = "https://sync.kanzlei.example"
    doctor = run(env, "doctor", "--public-url", public, "--timeout", "10", cwd=root)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    found = checks(doctor.stdout)
    assert found["EspoCRM access"] == OK and found["optimistic concurrency control"] == OK
    assert found["API user's rights"] == OK
    assert found["CBeteiligte fields"] == FAIL and "    betnr: missing → " in doctor.stdout
    assert found["salutationName options ↔ Advoware anrede"] == FAIL
    assert "option 'Dr.' maps to no Advoware anrede" in doctor.stdout
    for event in ("create", "update", "delete"):
        assert found[f"webhook CBeteiligte.{event}"] == FAIL
    assert f"    fix: beteiligte-sync webhooks register --public-url {public}" in doctor.stdout
    assert found["Advoware token"] == FAIL and found["Advoware read"] == SKIP
    assert "the token request was refused (401)" in doctor.stdout
    assert found["store"] == FAIL and "unreachable" in doctor.stdout
    assert "Traceback" not in doctor.stdout + doctor.stderr
    assert not any(secret in doctor.stdout for secret in ADVO_SECRETS)

    wrong_key = run({**env, "ESPOCRM_API_KEY": "falscher-schluessel"}, "doctor", cwd=root)
    assert wrong_key.returncode == 1
    found = checks(wrong_key.stdout)
    assert found["EspoCRM access"] == FAIL and found["EspoCRM setup"] == SKIP
    assert "refused the API key (401)" in wrong_key.stdout and "fix: check ESPOCRM_API_KEY" in wrong_key.stdout
    assert "falscher-schluessel" not in wrong_key.stdout
