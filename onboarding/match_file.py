"""The review file of ``beteiligte-sync match``: a CSV an operator can open, edit and hand back.

Columns: ``keep`` (``yes``/``no``/empty; ``ja``/``nein``, ``x``, ``1``/``0`` too), ``verdict``, ``rule``,
``confidence``, ``espo_id``, ``betnr``, ``espocrm``, ``advoware``, ``note``. Only ``keep``, ``espo_id``
and ``betnr`` are read back. ``keep`` says the operator's decision: ``yes`` links the pair; ``no``
says they are different parties (``--apply --yes`` stores that, and the create of the record then no
longer waits for this Beteiligter); empty (or the row deleted) is undecided: nothing is stored, and a
create of the record waits for a person while the pair may be one party. ``link`` rows are written
``yes``, ``review`` and ``ambiguous`` ones empty, pairs declined before ``no``. Add a row with just
those three columns to link (or decline) a pair by hand. A bad file is refused as a whole, naming the
line, before anything is written. Cells that would start
like a spreadsheet formula (``= + - @``) are written with a leading ``'`` (CSV injection: party
names are client data); reading drops it again.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from adapters.api_ids import check_id
from adapters.errors import ValidationError
from domain.matching import Verdict
from onboarding.match import MatchReport, verdict_order

COLUMNS = ("keep", "verdict", "rule", "confidence", "espo_id", "betnr", "espocrm", "advoware", "note")
YES = frozenset({"yes", "y", "ja", "j", "x", "1", "true"})
NO = frozenset({"no", "n", "nein", "0", "false"})
UNDECIDED = ""
DECLINED_NOTE = "declined before: different parties"


class MatchFileError(Exception):
    """The review file cannot be used; its message names the line and the fix."""


@dataclass(frozen=True)
class Pair:
    espo_id: str
    betnr: int
    rule: str = "by hand"
    line: int = 0


@dataclass(frozen=True)
class Review:
    """The decided rows of a review file: pairs to link, pairs declared different parties."""

    links: list[Pair]
    declines: list[Pair]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A value a spreadsheet shows as text: one starting like a formula gets a leading ``'``
    (a party named ``=HYPERLINK(...)`` never runs when the operator opens the file)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def uncell(value: str | None) -> str:
    """A cell as read back: whitespace and the ``'`` :func:`cell` added dropped."""
    text = (value or "").strip()
    return text[1:].strip() if text.startswith("'") else text


PRIVATE_FILE_MODE = 0o600


def write_report(path: Path, report: MatchReport) -> int:
    """Every proposal, best first; links are kept (``yes``), pairs declined before are ``no``, the
    rest is undecided (empty): it waits for a person."""
    rows = sorted(report.proposals, key=verdict_order)
    # Client names: readable by its owner only (0600), also when the file was there before with 0644.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    with open(fd, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for p in rows:
            declined = (p.espo_ref, p.advo_ref) in report.declined
            keep = "no" if declined else "yes" if p.verdict == Verdict.LINK else UNDECIDED
            note = "; ".join(t for t in (p.note, DECLINED_NOTE if declined else "") if t)
            out.writerow([cell(v) for v in (
                keep, p.verdict.value, p.rule.value, f"{p.confidence:.3f}", p.espo_ref, p.advo_ref,
                report.espo_labels.get(p.espo_ref, ""), report.advo_labels.get(p.advo_ref, ""), note)])
    return len(rows)


def _pair(row: dict[str, str | None], line: int) -> tuple[bool, Pair] | None:
    """``(keep, pair)`` of a decided row; ``None`` for an undecided one."""
    keep = uncell(row.get("keep")).casefold()
    if keep not in YES | NO | {UNDECIDED}:
        raise MatchFileError(f"line {line}: keep is '{keep}': write yes, no, or leave it empty (undecided)")
    if keep == UNDECIDED:
        return None
    espo_id, betnr = uncell(row.get("espo_id")), uncell(row.get("betnr"))
    try:
        check_id(espo_id, "espo_id")
    except ValidationError as exc:
        raise MatchFileError(f"line {line}: {exc.message}") from exc
    if not betnr.isdigit() or int(betnr) <= 0:
        raise MatchFileError(f"line {line}: betnr '{betnr}' is not a positive whole number")
    return keep in YES, Pair(espo_id, int(betnr), uncell(row.get("rule")) or "by hand", line)


def read_pairs(path: Path) -> list[Pair]:
    """The kept pairs (``yes``) of the file."""
    return read_review(path).links


def read_review(path: Path) -> Review:
    """The decided rows; :class:`MatchFileError` for a file that cannot be trusted as a whole."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
            reader = csv.DictReader(fh, dialect=dialect)
            missing = {"keep", "espo_id", "betnr"} - set(reader.fieldnames or ())
            if missing:
                raise MatchFileError(f"{path}: columns {', '.join(sorted(missing))} missing: keep the header "
                                     "line of the file match wrote")
            decided = [d for i, row in enumerate(reader, start=2) if (d := _pair(row, i)) is not None]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MatchFileError(f"{path}: cannot be read ({exc})") from exc
    links = [p for keep, p in decided if keep]
    declines = [p for keep, p in decided if not keep]
    _refuse_duplicates(links)
    _refuse_contradictions(links, declines)
    return Review(list({(p.espo_id, p.betnr): p for p in links}.values()),
                  list({(p.espo_id, p.betnr): p for p in declines}.values()))


def _refuse_contradictions(links: list[Pair], declines: list[Pair]) -> None:
    kept = {(p.espo_id, p.betnr): p for p in links}
    for p in declines:
        other = kept.get((p.espo_id, p.betnr))
        if other is not None:
            raise MatchFileError(f"lines {other.line} and {p.line}: EspoCRM record {p.espo_id} and Beteiligter "
                                 f"{p.betnr} are kept (yes) and declined (no): decide once")


def _refuse_duplicates(pairs: list[Pair]) -> None:
    seen_espo: dict[str, Pair] = {}
    seen_betnr: dict[int, Pair] = {}
    for p in pairs:
        other = seen_espo.get(p.espo_id)
        if other is not None and other.betnr != p.betnr:
            raise MatchFileError(f"lines {other.line} and {p.line}: EspoCRM record {p.espo_id} is kept with two "
                                 "Beteiligte: keep one of them")
        twin = seen_betnr.get(p.betnr)
        if twin is not None and twin.espo_id != p.espo_id:
            raise MatchFileError(f"lines {twin.line} and {p.line}: Beteiligter {p.betnr} is kept with two EspoCRM "
                                 "records: keep one of them")
        seen_espo[p.espo_id], seen_betnr[p.betnr] = p, p
