"""Issue 18, item 5: ``serve`` speaks HTTPS itself with TLS_CERT_FILE and TLS_KEY_FILE.

A certificate issued by a throwaway CA (trustme) for 127.0.0.1; a sandbox ``serve`` as a real
process; clients that verify it against that CA. The sandbox's EspoCRM sends its webhooks over HTTPS
too (trusting the CA through SSL_CERT_FILE, as a real EspoCRM trusts its machine's CA store), so the
samples arriving clean proves the whole path. Wrong TLS settings stop serve with one line.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from config.version import package_version
from simulators.common import free_port
from tests.embedded_support import (
    CLI_TIMEOUT_S,
    Process,
    all_clean,
    cli,
    env_for,
    published_sandbox,
    state_root,
    wait_for,
)

pytestmark = [pytest.mark.redis]


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_key: Path


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as folder:
        yield folder


@pytest.fixture
def pki(root: Path) -> Pki:
    ca = trustme.CA()
    served = ca.issue_cert("127.0.0.1", "localhost")
    other = trustme.CA().issue_cert("127.0.0.1")
    paths = Pki(root / "ca.pem", root / "cert.pem", root / "key.pem", root / "other-key.pem")
    ca.cert_pem.write_to_path(str(paths.ca))
    served.cert_chain_pems[0].write_to_path(str(paths.cert))
    for pem in served.cert_chain_pems[1:]:
        pem.write_to_path(str(paths.cert), append=True)
    served.private_key_pem.write_to_path(str(paths.key))
    other.private_key_pem.write_to_path(str(paths.other_key))
    return paths


def test_serve_speaks_https_that_a_verifying_client_accepts(root: Path, pki: Pki) -> None:
    port = free_port()
    env = env_for(root / "state", port, TLS_CERT_FILE=str(pki.cert), TLS_KEY_FILE=str(pki.key),
                  SSL_CERT_FILE=str(pki.ca))
    serve = Process([sys.executable, "-m", "entrypoints.cli", "serve"], env, root, "serve.log")
    try:
        url = f"https://127.0.0.1:{port}"

        def healthy() -> httpx.Response | None:
            assert serve.proc.poll() is None, serve.output()
            try:
                answer = httpx.get(f"{url}/health", verify=ssl.create_default_context(cafile=pki.ca), timeout=5)
            except httpx.ConnectError:
                return None
            return answer if answer.status_code == 200 else None

        health = wait_for("serve to answer /health over HTTPS", healthy).json()
        assert health["version"] == package_version() and health["status"] == "ok"
        assert f"listening on {url}" in serve.output() or f"service:            {url}" in serve.output()

        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/health", timeout=5)  # a client that does not trust the CA refuses it
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)  # no plain HTTP on that port

        espo = published_sandbox(root / "state")["espocrm_url"]
        assert wait_for("the samples to arrive by webhook over HTTPS", lambda: all_clean(espo))
        status = cli(env, "status", cwd=root)  # the store guard finds this serve over HTTPS
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        serve.stop()


@pytest.mark.parametrize("case", ["cert only", "key of another certificate", "no such file"])
def test_wrong_tls_settings_stop_serve_with_one_line(root: Path, pki: Pki, case: str) -> None:
    extra = {"cert only": {"TLS_CERT_FILE": str(pki.cert)},
             "key of another certificate": {"TLS_CERT_FILE": str(pki.cert), "TLS_KEY_FILE": str(pki.other_key)},
             "no such file": {"TLS_CERT_FILE": str(root / "missing.pem"), "TLS_KEY_FILE": str(pki.key)}}[case]
    env = env_for(root / "state", free_port(), **extra)
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "serve"], env=env, cwd=root,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    expected = {"cert only": "TLS_CERT_FILE is set without TLS_KEY_FILE: set both",
                "key of another certificate": "cannot be used (KEY_VALUES_MISMATCH)",
                "no such file": "missing.pem' is not a file"}[case]
    assert expected in lines[0] and lines[0].startswith("configuration: TLS_")
