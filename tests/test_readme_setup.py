"""The docs' "Setting up EspoCRM" page (docs/espocrm.md, moved there from the README) names every field
the doctor checks, with the type it asks for."""

from __future__ import annotations

import re
from pathlib import Path

from installation.setup_contract import LABELS, contract_fields

SETUP_PAGE = Path(__file__).resolve().parent.parent / "docs" / "espocrm.md"


def test_setup_page_field_table_lists_every_contract_field_with_its_type() -> None:
    section = SETUP_PAGE.read_text(encoding="utf-8").split("## 2. The fields", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| ([\w-]+)", section, re.MULTILINE)}
    expected = {f.name: f.create_as for f in contract_fields()}
    assert set(rows) == set(expected)
    assert {k: LABELS[v] for k, v in expected.items()} == rows
