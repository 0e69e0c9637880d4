"""Conflict strategy per field group, loaded from ``config/conflict_policy.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from domain.beteiligte_mapper import GROUPS


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


@dataclass(frozen=True)
class ConflictPolicy:
    groups: dict[str, GroupPolicy] = field(default_factory=dict)

    def for_group(self, group: str) -> GroupPolicy:
        return self.groups.get(group, GroupPolicy())

    @classmethod
    def uniform(cls, strategy: str, tiebreak: str = "espocrm_wins") -> ConflictPolicy:
        return cls({g: GroupPolicy(strategy, tiebreak) for g in GROUPS})


def load_policy(path: str | Path | None = None) -> ConflictPolicy:
    p = Path(path) if path else DEFAULT_FILE
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyError(f"conflict policy file not found: {p}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"conflict policy file {p} is not valid TOML: {exc}") from exc
    groups: dict[str, GroupPolicy] = {}
    for name, spec in (data.get("groups") or {}).items():
        if name not in GROUPS:
            raise PolicyError(f"{p}: unknown field group {name!r}; groups are {', '.join(GROUPS)}")
        if not isinstance(spec, dict):
            raise PolicyError(f"{p}: [groups.{name}] must be a table")
        groups[name] = GroupPolicy(
            strategy=str(spec.get("strategy", "espocrm_wins")),
            tiebreak=str(spec.get("tiebreak", "espocrm_wins")),
        )
    return ConflictPolicy(groups)
