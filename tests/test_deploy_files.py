"""Issue 18, items 2 and 4: the files a firm installs from.

- ``deploy/systemd/beteiligte-sync.service`` passes ``systemd-analyze verify`` (systemd's package is
  installed when the binary is missing and we are root; skipped only when it cannot be had). Only its
  ExecStart path is pointed at this checkout's installed command, which verify needs to exist.
- ``.env.example`` (which is also the systemd environment file) names every variable production
  requires, and nothing the settings do not know.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from tests.checkout_copy import CHECKOUT
from tests.debian_tools import ensure

UNIT = CHECKOUT / "deploy" / "systemd" / "beteiligte-sync.service"
ENV_FILE = CHECKOUT / "deploy" / "systemd" / "beteiligte-sync.env"
EXAMPLE = CHECKOUT / ".env.example"
EXEC_START = "ExecStart=/opt/beteiligte-sync/bin/beteiligte-sync serve"
COMMAND = Path(sys.executable).parent / "beteiligte-sync"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze, why = ensure("systemd-analyze", "systemd")
    if analyze is None:
        pytest.skip(f"systemd-analyze cannot be had here: {why}")
    text = UNIT.read_text()
    assert EXEC_START in text and COMMAND.exists()
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(EXEC_START, f"ExecStart={COMMAND} serve"))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stdout + done.stderr

    broken = tmp_path / "broken" / UNIT.name  # the check can fail: a misspelt directive is reported
    broken.parent.mkdir()
    broken.write_text(text.replace(EXEC_START, f"ExecStart={COMMAND} serve").replace("UMask=", "UMsak="))
    bad = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True, timeout=120)
    assert "UMsak" in bad.stderr


def _names(text: str) -> list[str]:
    return re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.M)


def test_the_env_example_names_every_required_variable_and_only_known_ones() -> None:
    assert ENV_FILE.resolve() == EXAMPLE.resolve()  # one file for compose, pip and systemd
    names = _names(EXAMPLE.read_text())
    known = {name.upper() for name in Settings.model_fields}
    assert set(names) <= known, set(names) - known
    required = set(Settings.model_construct().missing_for_production())
    assert required <= set(names), required - set(names)
    assert {"PUBLIC_URL", "TLS_CERT_FILE", "TLS_KEY_FILE", "STATUS_TOKEN"} <= set(names)


def test_every_compose_variable_is_in_the_image_or_the_example() -> None:
    """compose.yaml's environment overrides only what the image sets for a container (no secrets in it)."""
    compose = (CHECKOUT / "compose.yaml").read_text()
    block = re.search(r"  environment:\n((?:    .*\n)+)", compose)
    assert block is not None
    assert set(re.findall(r"^    ([A-Z_]+):", block.group(1), flags=re.M)) == {"REDIS_URL", "HOST", "PORT", "STATE_DIR"}
