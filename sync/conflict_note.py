"""The EspoCRM Note (German, for staff) listing the values a decision overwrote.

Each value reads as its system holds it: EspoCRM's as in the EspoCRM record, Advoware's as in the
Beteiligter the decision was taken on (:func:`domain.beteiligte_mapper.held_value`), not the compare
form the decision used (a phone number's key ``+49301234567``, an enum's Advoware value). The records
are the ones the pass decided on, so a value that a write replaced afterwards is still the one shown.
"""

from __future__ import annotations

import re
from typing import Any

from domain.beteiligte_mapper import held_value
from domain.decision import Decision
from domain.first_link import FIRST_LINK_REASON

EMPTY = "(leer)"


def shown(value: Any) -> str:
    """A value as a Markdown code span, ``(leer)`` for none. Its fence is longer than any run of backticks
    in it and a line break shows as ``⏎``: a value typed to end the span, or to start a line of its own
    (a forged "→ Advoware gewinnt", a link), stays text inside its span."""
    if value is None or not str(value).strip():
        return EMPTY
    text = re.sub(r"\r\n|\r|\n", " ⏎ ", str(value))
    run = max((len(r) for r in re.findall(r"`+", text)), default=0)
    return f"{'`' * (run + 1)} {text} {'`' * (run + 1)}" if run else f"`{text}`"


def conflict_note(decision: Decision, betnr: int, record: dict[str, Any] | None,
                  advo_obj: dict[str, Any] | None) -> str:
    """The Note for ``decision``'s conflicts; ``record``/``advo_obj``: the EspoCRM record and the
    Advoware Beteiligter it was decided on (``None``: the compared values are shown)."""
    lines = [f"- **{c.field}** ({c.group}): EspoCRM {shown(held_value(c.field, c.espo_value, record, 'espo'))} "
             f"/ Advoware {shown(held_value(c.field, c.advo_value, advo_obj, 'advo'))} "
             f"→ {c.winner} gewinnt ({c.strategy})" for c in decision.conflicts]
    first = decision.reason == FIRST_LINK_REASON  # a betnr typed by hand: no "last sync" to speak of
    return ((f"Mit dem Advoware-Beteiligten {betnr} verknüpft: beide Systeme hatten verschiedene Werte. "
             if first else "Sync-Konflikt: beide Systeme wurden seit dem letzten Abgleich geändert. ")
            + "Überschrieben wurde:\n" + "\n".join(lines))
