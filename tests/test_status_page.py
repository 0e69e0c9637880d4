"""``GET /status`` as a person sees it: a headless Chromium loads the page of a running sandbox
``serve`` with a failed record (the DOM's text, and a screenshot that is a real, non-blank PNG); and
the page stays shut without ``STATUS_TOKEN`` or with a wrong one.

The browser test is skipped only when Chromium is not installed (``./dev test`` installs Debian's
``chromium`` when it runs as root).
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from config.settings import Settings
from entrypoints.status_page import status_routes
from tests.embedded_support import wait_for
from tests.ops_support import TOKEN, Sandbox, sandbox_serve

CHROMIUM = Path(os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"))
BROWSER_TIMEOUT_S = 120


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="bsync-chromium-") as profile:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--window-size=1200,1400", *args],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed image data of a PNG (filter bytes included)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return size[0], size[1], zlib.decompress(idat)


@pytest.fixture(scope="module")
def failing() -> Iterator[tuple[Sandbox, str]]:
    """A sandbox serve whose one record failed because Advoware answered 500."""
    with sandbox_serve() as sb:
        rec = sorted(httpx.get(f"{sb.espo}/__sim/records", timeout=10).json(), key=lambda r: r["id"])[0]
        assert sb.run("sandbox", "fault", "advoware", "500", "--count", "0", "--method", "PUT").returncode == 0
        sb.edit_as_staff(rec["id"], addressCity="Köln")
        wait_for("the record to fail", lambda: sb.record(rec["id"])["syncStatus"] == "failed")
        yield sb, rec["id"]


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium is not installed ({CHROMIUM})")
def test_the_status_page_in_a_browser(failing: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, espo_id = failing
    url = sb.url.replace("http://", f"http://ops:{TOKEN}@") + "/status"
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    text = dom.stdout
    assert "Overall: <span class=\"failing\">degraded</span>" in text
    assert "Records needing attention (1)" in text
    assert f"open {espo_id} in EspoCRM" in text and "HTTP 500" in text
    assert "<svg" in text and "conflicts and failures per day" in text
    for heading in ("Dependencies", "Records by syncStatus", "Queue and sync check"):
        assert f"<h2>{heading}</h2>" in text

    shot = tmp_path / "status.png"
    taken = _chromium(f"--screenshot={shot}", url)
    assert taken.returncode == 0 and shot.exists(), taken.stderr
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1200, 1400)
    assert len(set(pixels)) > 32, "the screenshot is blank"


def _app(token: str | None) -> Starlette:
    settings = Settings(status_token=SecretStr(token) if token is not None else None,
                        espocrm_url="http://espo.invalid", advoware_url="http://advo.invalid")
    return Starlette(routes=status_routes(SimpleNamespace(settings=settings), [None]))  # type: ignore[arg-type]


@pytest.mark.parametrize("token", [None, ""])
async def test_without_status_token_the_page_is_off_and_says_how_to_turn_it_on(token: str | None) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(token)), base_url="http://t") as client:
        answer = await client.get("/status", auth=("ops", "anything"))
    assert answer.status_code == 404
    assert answer.text.startswith("status page off: set STATUS_TOKEN") and answer.text.count("\n") == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!"},
                                     {"Authorization": "Basic b3BzOg=="}, {"Authorization": f"Token {TOKEN}"}])
async def test_a_wrong_or_missing_token_gets_401_and_a_basic_auth_prompt(headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(TOKEN)), base_url="http://t") as client:
        answer = await client.get("/status", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic ")
    assert "STATUS_TOKEN" in answer.text and TOKEN not in answer.text
