"""Loading the policy and value map files: strict (every mistake names file and line), and groups a
policy file leaves out keep the documented defaults (not ``espocrm_wins``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.setting_errors import DELETE_POLICIES
from domain.beteiligte_mapper import FIELDS
from domain.conflict_policy import DEFAULTS, PolicyError, Strategy, load_policy
from domain.sync_status import DeletePolicy
from domain.value_maps import ValueMapError, load_value_maps

ADVO_NAMES = {f.espo: f.advo for f in FIELDS}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "file.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_policy_is_the_documented_defaults() -> None:
    assert load_policy().groups == DEFAULTS
    assert DEFAULTS["stammdaten"].strategy == Strategy.ESPOCRM_WINS
    assert DEFAULTS["kontakt"].strategy == DEFAULTS["adresse"].strategy == Strategy.FIELD_MERGE


def test_a_file_setting_one_group_leaves_the_others_at_their_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, '[groups.kontakt]\nstrategy = "advoware_wins"\n'))
    assert policy.for_group("kontakt").strategy == Strategy.ADVOWARE_WINS
    assert policy.for_group("adresse") == DEFAULTS["adresse"]  # still field_merge, not espocrm_wins
    assert policy.for_group("stammdaten") == DEFAULTS["stammdaten"]


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "# nothing set\n")).groups == DEFAULTS


@pytest.mark.parametrize(("text", "line", "says"), [
    ('[kontakt]\nstrategy = "advoware_wins"\n', 1, "unknown table or key 'kontakt'"),
    ('strategy = "advoware_wins"\n', 1, "unknown table or key 'strategy'"),
    ('[groups.telefon]\nstrategy = "advoware_wins"\n', 1, "unknown field group 'telefon'"),
    ('[groups.kontakt]\nstrategy = "field_merge"\ntie_break = "advoware_wins"\n', 3, "unknown key 'tie_break'"),
    ('[groups.kontakt]\n\nstrategy = "advoware"\n', 3, "unknown strategy 'advoware'"),
    ('[groups.kontakt]\nstrategy = "field_merge"\ntiebreak = "field_merge"\n', 3, "unknown tiebreak 'field_merge'"),
    ('[groups.kontakt]\nstrategy = 3\n', 2, "strategy must be a quoted name"),
])
def test_every_policy_mistake_names_file_and_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}:{line}: ") and says in str(caught.value)


def test_a_missing_or_broken_policy_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found.*CONFLICT_POLICY_FILE"):
        load_policy(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(write(tmp_path, "[groups.kontakt\n"))


@pytest.mark.parametrize(("text", "line", "says"), [
    ('[salutationName]\nHerr = ["Herr", "Mr."]\nFrau = ["Frau", "mr."]\n', 3, "lists 'mr.' under Herr and Frau"),
    ('[anrede]\nHerr = ["Herr"]\n', 1, "[anrede] is not a mapped EspoCRM field"),
    ('[salutationName]\n', 1, "must be a table of Advoware value"),
    ('[salutationName]\nHerr = []\n', 2, "Herr must list EspoCRM values"),
])
def test_every_value_map_mistake_names_file_and_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueMapError) as caught:
        load_value_maps(path, ADVO_NAMES)
    assert str(caught.value).startswith(f"{path}:{line}: ") and says in str(caught.value)


def test_the_shipped_value_maps_load() -> None:
    maps = load_value_maps(None, ADVO_NAMES).get("salutationName")
    assert maps is not None and maps.from_espo("Mrs.") == "Frau"


def test_the_settings_accept_exactly_the_delete_policies_the_sync_knows() -> None:
    assert set(DELETE_POLICIES) == {p.value for p in DeletePolicy}
