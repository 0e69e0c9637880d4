"""Hostile tests of "Policy and value map files are strict: ... an empty entry ... stop the command with
file:line" and "every configuration error is one line, exit code 2" (README "Operations: errors").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.beteiligte_mapper import FIELDS
from domain.value_maps import ValueMapError, load_value_maps
from simulators.common import free_port
from tests.embedded_support import cli, env_for, state_root
from tests.test_ops_errors import one_line_error

ADVO_NAMES = {f.espo: f.advo for f in FIELDS}


@pytest.fixture
def root() -> Iterator[Path]:
    with state_root() as path:
        yield path


@pytest.mark.redis
@pytest.mark.parametrize(("variable", "text"), [
    ("CONFLICT_POLICY_FILE", '# Änderung für die Kanzlei\n[groups.kontakt]\nstrategy = "advoware_wins"\n'),
    ("VALUE_MAPS_FILE", '# Anreden der Kanzlei Müller\n[salutationName]\nHerr = ["Herr"]\nFrau = ["Frau"]\n'),
], ids=["policy", "value-map"])
def test_hostile_a_file_not_in_utf8_is_one_line_naming_it(root: Path, variable: str, text: str) -> None:
    path = root / "file.toml"
    path.write_bytes(text.encode("latin-1"))  # saved by an editor set to Windows-1252 / Latin-1
    env = env_for(root / "state", free_port(), **{variable: str(path)})
    line = one_line_error(cli(env, "sync-check", cwd=root))
    assert str(path) in line and "unexpected error" not in line
    assert not (root / "state").exists()


@pytest.mark.parametrize("text", [
    '[salutationName]\nHerr = [" "]\n',
    '[salutationName]\n"" = ["Mr."]\n',
    '[salutationName]\nHerr = ["Mr."]\nHERR = ["Sir"]\n',
], ids=["blank-espocrm-value", "empty-advoware-value", "advoware-values-differ-in-case"])
def test_hostile_the_value_map_refuses_blank_and_ambiguous_entries(tmp_path: Path, text: str) -> None:
    path = tmp_path / "value_maps.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueMapError, match=f"{path}:"):
        load_value_maps(path, ADVO_NAMES)
