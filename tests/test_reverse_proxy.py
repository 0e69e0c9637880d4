"""Issue 18, item 5: the reverse proxy alternative to TLS in serve, with the shipped example
``deploy/nginx/beteiligte-sync.conf`` run for real in front of a sandbox ``serve`` (nginx from Debian,
installed when missing and we are root), on 127.0.0.1 only.

Only what the file marks ``test:`` differs (ports, certificate, the IPv6 listen). A client that
verifies the certificate reaches /health and the webhook intake through it; everything else is 404.
"""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from config.version import package_version
from simulators.common import free_port
from tests.debian_tools import ensure
from tests.embedded_support import env_for, start_serve, state_root, wait_for

pytestmark = [pytest.mark.redis]
SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "beteiligte-sync.conf"


def site_for_test(text: str, *, port: int, upstream: int, cert: Path, key: Path) -> str:
    """The shipped site with the lines marked ``test:`` pointed at this test; each must be found."""
    swaps = [
        ("    listen 443 ssl;", f"    listen 127.0.0.1:{port} ssl;"),
        ("    listen [::]:443 ssl;", "    # (IPv6 listen removed for the test)"),
        ("/etc/ssl/certs/sync.kanzlei.example.pem", str(cert)),
        ("/etc/ssl/private/sync.kanzlei.example.key", str(key)),
        ("http://127.0.0.1:3111", f"http://127.0.0.1:{upstream}"),
    ]
    for old, new in swaps:
        assert old in text, f"{SITE} no longer has {old!r}: update this test and docs/tls.md"
        text = text.replace(old, new)
    return text


@pytest.fixture
def nginx() -> str:
    binary, why = ensure("nginx", "nginx")
    if binary is None:
        pytest.skip(f"nginx cannot be had here: {why}")
    return binary


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as folder:
        yield folder


def test_the_example_nginx_site_proxies_https_to_serve(nginx: str, root: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    work = Path(tempfile.mkdtemp(prefix="nginx-", dir="/tmp"))
    work.chmod(0o755)  # nginx's workers (nobody) write their temp files under it
    cert, key, ca_file = work / "cert.pem", work / "key.pem", work / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    upstream, port = free_port(), free_port()
    site = work / "site.conf"
    site.write_text(site_for_test(SITE.read_text(), port=port, upstream=upstream, cert=cert, key=key))
    (work / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    include {site};
}}
""")
    check = subprocess.run([nginx, "-t", "-c", str(work / "nginx.conf"), "-p", str(work)], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stderr

    serve = start_serve(env_for(root / "state", upstream), root)
    proxy = subprocess.Popen([nginx, "-c", str(work / "nginx.conf"), "-p", str(work)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        verify = ssl.create_default_context(cafile=ca_file)
        url = f"https://127.0.0.1:{port}"

        def through_proxy() -> httpx.Response | None:
            assert proxy.poll() is None, (work / "error.log").read_text()
            try:
                return httpx.get(f"{url}/health", verify=verify, timeout=5)
            except httpx.ConnectError:
                return None

        health = wait_for("nginx to answer", through_proxy, 30)
        assert health.status_code == 200 and health.json()["version"] == package_version()
        hook = httpx.post(f"{url}/vmh/webhook/beteiligte/update", json=[{"id": "x"}], verify=verify, timeout=10,
                          headers={"X-Signature": "bm90LWEtd2ViaG9vaw=="})
        assert hook.status_code == 401, hook.text  # serve's intake answered: the signature is not one of ours
        for hidden in ("/metrics", "/status", "/health/store"):
            assert httpx.get(url + hidden, verify=verify, timeout=5).status_code == 404
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/health", timeout=5)
    finally:
        proxy.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()
        serve.stop()
        shutil.rmtree(work, ignore_errors=True)
