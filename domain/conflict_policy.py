"""Conflict strategy per field group, loaded from ``config/conflict_policy.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from domain.beteiligte_mapper import GROUPS
from domain.toml_lines import where_in_toml


class Strategy(StrEnum):
    ESPOCRM_WINS = "espocrm_wins"
    ADVOWARE_WINS = "advoware_wins"
    NEWEST_WINS = "newest_wins"
    FIELD_MERGE = "field_merge"


STRATEGIES = tuple(Strategy)
TIEBREAKS = (Strategy.ESPOCRM_WINS, Strategy.ADVOWARE_WINS, Strategy.NEWEST_WINS)
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "conflict_policy.toml"


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class GroupPolicy:
    strategy: str = "espocrm_wins"
    tiebreak: str = "espocrm_wins"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise PolicyError(f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        if self.tiebreak not in TIEBREAKS:
            raise PolicyError(f"unknown tiebreak {self.tiebreak!r}; use one of {', '.join(TIEBREAKS)}")
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        object.__setattr__(self, "tiebreak", Strategy(self.tiebreak))


@dataclass(frozen=True)
class ConflictPolicy:
    groups: dict[str, GroupPolicy] = field(default_factory=dict)

    def for_group(self, group: str) -> GroupPolicy:
        return self.groups.get(group, GroupPolicy())

    @classmethod
    def uniform(cls, strategy: str, tiebreak: str = "espocrm_wins") -> ConflictPolicy:
        return cls({g: GroupPolicy(strategy, tiebreak) for g in GROUPS})


DEFAULTS = {  # what docs/field-mapping.md "Conflict strategies" documents; a group a file leaves out keeps it
    "stammdaten": GroupPolicy(Strategy.ESPOCRM_WINS),
    "kontakt": GroupPolicy(Strategy.FIELD_MERGE, Strategy.ESPOCRM_WINS),
    "adresse": GroupPolicy(Strategy.FIELD_MERGE, Strategy.ESPOCRM_WINS),
}
GROUP_KEYS = ("strategy", "tiebreak")


def load_policy(path: str | Path | None = None) -> ConflictPolicy:
    """The policy of ``path`` (default ``config/conflict_policy.toml``), checked strictly: a table other
    than ``[groups.<group>]``, an unknown group, key or strategy is a :class:`PolicyError` naming the file
    and line. Groups the file leaves out keep :data:`DEFAULTS`; a group without ``tiebreak`` uses
    ``espocrm_wins``."""
    p = Path(path) if path else DEFAULT_FILE
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise PolicyError(f"conflict policy file not found: {p} (set CONFLICT_POLICY_FILE or restore it)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"conflict policy file {p} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError:
        raise PolicyError(f"conflict policy file {p} is not UTF-8: save it as UTF-8") from None
    for name in data:
        if name != "groups":
            raise PolicyError(f"{where_in_toml(p, text, name)}: unknown table or key {name!r}: "
                              f"write [groups.<group>] with groups {', '.join(GROUPS)}")
    groups = dict(DEFAULTS)
    tables = data.get("groups") or {}
    if not isinstance(tables, dict):
        raise PolicyError(f"{where_in_toml(p, text, 'groups')}: groups must be tables [groups.<group>]")
    for name, spec in tables.items():
        where = where_in_toml(p, text, f"groups.{name}")
        if name not in GROUPS:
            raise PolicyError(f"{where}: unknown field group {name!r}; groups are {', '.join(GROUPS)}")
        if not isinstance(spec, dict):
            raise PolicyError(f"{where}: [groups.{name}] must be a table")
        for key, value in spec.items():
            if key not in GROUP_KEYS:
                raise PolicyError(f"{where_in_toml(p, text, f'groups.{name}', key)}: unknown key {key!r} in "
                                  f"[groups.{name}]; keys are {', '.join(GROUP_KEYS)}")
            if not isinstance(value, str):
                raise PolicyError(f"{where_in_toml(p, text, f'groups.{name}', key)}: {key} must be a quoted name")
        try:
            groups[name] = GroupPolicy(strategy=spec.get("strategy", DEFAULTS[name].strategy),
                                       tiebreak=spec.get("tiebreak", Strategy.ESPOCRM_WINS))
        except PolicyError as exc:
            bad = "tiebreak" if "tiebreak" in str(exc) else "strategy"
            raise PolicyError(f"{where_in_toml(p, text, f'groups.{name}', bad)}: {exc}") from None
    return ConflictPolicy(groups)
