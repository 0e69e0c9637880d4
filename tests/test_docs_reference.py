"""The configuration reference (docs/configuration.md) and the field-mapping table (docs/field-mapping.md)
are checked against the code they describe, so neither can drift: a setting or mapped field missing from
the page, a name on the page the code does not have, a wrong default, or a required setting not marked
as such fails here. Each checker is also run on a page made wrong, so it is known to fail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from config.settings import Settings
from domain.beteiligte_mapper import ADVOWARE_UNMAPPED_WRITABLE, FIELDS

DOCS = Path(__file__).resolve().parent.parent / "docs"
SETTINGS_MARKER = "<!-- settings-table -->"
MAPPING_MARKER = "<!-- mapping-table"
UNMAPPED_MARKER = "<!-- unmapped"
REQUIRED = "*required*"
NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")
CODE = re.compile(r"`([^`]+)`")


def _table(after: str) -> list[list[str]]:
    """The cells of each body row of the first Markdown table in ``after``."""
    lines = after.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows: list[list[str]] = []
    for line in lines[start + 2:]:  # past the header and its |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def settings_rows(text: str) -> dict[str, str]:
    """Every variable the page's settings tables name, with its default cell (one per variable)."""
    assert SETTINGS_MARKER in text, "no settings table marked on the page"
    out: dict[str, str] = {}
    for chunk in text.split(SETTINGS_MARKER)[1:]:
        for cells in _table(chunk):
            names = NAME.findall(cells[0])
            assert names, f"a settings row names no variable: {cells[0]}"
            values = CODE.findall(cells[1])
            for i, name in enumerate(names):
                assert name not in out, f"{name} is documented twice"
                out[name] = cells[1] if not values else values[i if len(values) == len(names) else 0]
    return out


def _same_default(documented: str, default: Any) -> bool:
    if isinstance(default, bool):
        return documented.lower() == str(default).lower()
    if isinstance(default, int | float):
        try:
            return float(documented) == float(default)
        except ValueError:
            return False
    if isinstance(default, dict):
        return documented == "{}" and not default
    return documented == str(default)


def settings_problems(text: str) -> list[str]:
    """What the page gets wrong about ``config.settings.Settings``."""
    documented = settings_rows(text)
    fields = {name.upper(): info for name, info in Settings.model_fields.items()}
    required = set(Settings.model_construct().missing_for_production())
    problems = [f"{n} is a setting but not documented" for n in sorted(set(fields) - set(documented))]
    problems += [f"{n} is documented but is no setting" for n in sorted(set(documented) - set(fields))]
    for name in sorted(set(fields) & set(documented)):
        cell, default = documented[name], fields[name].get_default(call_default_factory=True)
        if (cell == REQUIRED) != (name in required):
            problems.append(f"{name}: required is {name in required}, the page says {cell!r}")
        elif default is not None and not _same_default(cell, default):
            problems.append(f"{name}: default {default!r}, the page says {cell!r}")
    return problems


def mapping_rows(text: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for cells in _table(text.split(MAPPING_MARKER, 1)[1]):
        espo, advo = CODE.findall(cells[1]), CODE.findall(cells[2])
        assert len(espo) == 1 and len(advo) == 1, f"a mapping row names not one field a side: {cells}"
        rows.append((cells[0], espo[0], advo[0], cells[3]))
    return rows


def mapping_problems(text: str) -> list[str]:
    """What the page gets wrong about ``domain.beteiligte_mapper``: group, both names and kind of every
    mapped field, in the mapper's order, and the unmapped Advoware fields every write carries over."""
    expected = [(f.group, f.espo, f.advo, f.kind) for f in FIELDS]
    found = mapping_rows(text)
    problems = [f"mapper has {row}, the page does not" for row in expected if row not in found]
    problems += [f"the page has {row}, the mapper does not" for row in found if row not in expected]
    if not problems and found != expected:
        problems.append("the page's rows are not in the mapper's order")
    unmapped = CODE.findall(text.split(UNMAPPED_MARKER, 1)[1].split("-->", 1)[1].split("\n\n", 1)[0])
    if tuple(unmapped[: len(ADVOWARE_UNMAPPED_WRITABLE)]) != ADVOWARE_UNMAPPED_WRITABLE:
        problems.append(f"unmapped Advoware fields: mapper {ADVOWARE_UNMAPPED_WRITABLE}, the page {unmapped}")
    return problems


def test_configuration_reference_names_every_setting_with_its_default() -> None:
    assert settings_problems((DOCS / "configuration.md").read_text(encoding="utf-8")) == []


def test_field_mapping_table_is_the_mappers() -> None:
    assert mapping_problems((DOCS / "field-mapping.md").read_text(encoding="utf-8")) == []


def test_the_settings_check_fails_on_a_missing_an_unknown_and_a_wrong_setting() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert "| `PUBLIC_URL` |" in text and "| `PORT` |" not in text
    broken = (text.replace("| `PUBLIC_URL` |", "| `PUBLIC_ADDRESS` |")
              .replace("| `SYNC_CONCURRENCY` | `10` |", "| `SYNC_CONCURRENCY` | `4` |")
              .replace("| `ADVOWARE_KANZLEI` | *required* |", "| `ADVOWARE_KANZLEI` | unset |"))
    assert settings_problems(broken) == [
        "PUBLIC_URL is a setting but not documented",
        "PUBLIC_ADDRESS is documented but is no setting",
        "ADVOWARE_KANZLEI: required is True, the page says 'unset'",
        "SYNC_CONCURRENCY: default 10, the page says '4'",
    ]


def test_the_mapping_check_fails_on_a_dropped_a_renamed_and_a_regrouped_field() -> None:
    text = (DOCS / "field-mapping.md").read_text(encoding="utf-8")
    row = "| kontakt | `emailAddress` | `email` | str |"
    assert row in text
    dropped = "\n".join(line for line in text.splitlines() if not line.startswith(row)) + "\n"
    assert mapping_problems(dropped) == ["mapper has ('kontakt', 'emailAddress', 'email', 'str'), the page does not"]
    renamed = (text.replace("| `ort` |", "| `stadt` |")
               .replace("| adresse | `addressCountry`", "| kontakt | `addressCountry`"))
    assert mapping_problems(renamed) == [
        "mapper has ('adresse', 'addressCity', 'ort', 'str'), the page does not",
        "mapper has ('adresse', 'addressCountry', 'land', 'str'), the page does not",
        "the page has ('adresse', 'addressCity', 'stadt', 'str'), the mapper does not",
        "the page has ('kontakt', 'addressCountry', 'land', 'str'), the mapper does not",
    ]
    assert mapping_problems(text.replace("`kurzname`, `briefAnrede`", "`kurzname`")) != []


SHIPPED = ("adapters", "config", "domain", "entrypoints", "stephost", "sync", "onboarding", "installation", "steps",
           "simulators")
DOC_PAGE = re.compile(r"docs/([\w-]+\.md)")


def test_every_docs_page_the_code_points_operators_to_exists() -> None:
    """Messages name the docs page to read (the README's sections moved there): each page must exist."""
    root = DOCS.parent
    named: dict[str, set[str]] = {}
    for folder in SHIPPED:
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "README →" not in text, f"{path}: the README no longer has these sections; name the docs page"
            for page in DOC_PAGE.findall(text):
                named.setdefault(page, set()).add(str(path.relative_to(root)))
    assert {"configuration.md", "espocrm.md", "reliability.md"} <= set(named)
    assert {page: where for page, where in named.items() if not (DOCS / page).is_file()} == {}


def test_the_metrics_table_names_every_metric_with_its_type() -> None:
    from prometheus_client import generate_latest

    from sync.metrics import SyncMetrics

    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    rows = {CODE.findall(cells[0])[0]: cells[1] for cells in _table(text.split("<!-- metrics-table", 1)[1])}
    exposed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", generate_latest(SyncMetrics().registry).decode(), re.M))
    assert rows == {name: kind for name, kind in exposed.items() if not name.endswith("_created")}
