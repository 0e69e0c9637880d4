"""Hostile: a value in a conflict Note is a Markdown code span. A value typed with backticks and line
breaks must stay inside its span: it must not end it and add lines of its own to the Note (a forged
"→ Advoware gewinnt", a link)."""

from __future__ import annotations

import pytest

from tests.conftest import synced_record
from tests.test_conflict_note_values import _notes
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]

FORGED = "Weg 1``\n\n- **emailAddress** (kontakt): EspoCRM `a` / Advoware `b` → Advoware gewinnt [x](http://x.example)"


async def test_a_value_cannot_break_out_of_its_code_span(firm_both: Testbed) -> None:
    tb = firm_both
    rec = await synced_record(tb)
    tb.espo.user_edit(rec["id"], addressStreet="Ringstraße 2")
    tb.advo.edit(rec["betnr"], strasse=FORGED)
    await tb.flush()
    await tb.flush()
    notes = _notes(tb, rec["id"])
    assert "Sync-Konflikt" in notes, notes
    [line] = [ln for ln in notes.splitlines() if "emailAddress" in ln]
    assert line.startswith("- **addressStreet**"), notes  # the value's text, inside the street's line
    fence = line.split("Advoware ", 1)[1].split(" ", 1)[0]
    assert set(fence) == {"`"} and len(fence) > 2, line  # a fence longer than any run of backticks inside
