"""Normalising the values that identify a party, so that two spellings of one party compare equal.

Pure functions, no I/O. Every function returns ``None`` for an empty value (``None``, ``""``, only
whitespace or punctuation): the matching rules never build a key from an empty value.

- text: case folded, ``ä ö ü`` → ``ae oe ue``, ``ß`` → ``ss``, other accents dropped, punctuation
  and hyphens to spaces, whitespace collapsed (``Müller-Lüdenscheidt`` = ``mueller luedenscheidt``)
- person names: academic titles dropped (``Prof. Dr. Anna`` = ``anna``)
- company names: the legal form written one way (``GmbH & Co KG``, ``GmbH u. Co. KG`` and
  ``GmbH & Co. KG`` are ``gmbh co kg``; ``UG (haftungsbeschränkt)`` is ``ug``; ``e. K.`` is ``ek``)
- register numbers: ``HRB 12345``, ``HR B 12345`` and ``HRB12345`` are ``HRB12345``; courts:
  ``Amtsgericht München`` and ``AG München`` are ``muenchen``
- dates: ``YYYY-MM-DD``, ``YYYY-MM-DDT00:00:00`` or ``DD.MM.YYYY`` → ``YYYY-MM-DD``; an impossible
  date or a placeholder (up to ``1900-01-01``) is empty
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "æ": "ae", "ø": "oe"})
_NON_WORD = re.compile(r"[^a-z0-9&]+")
_SPACES = re.compile(r"\s+")

# Academic and professional titles (folded, dots removed) dropped from person names.
TITLES: frozenset[str] = frozenset({
    "dr", "prof", "professor", "med", "jur", "rer", "nat", "pol", "phil", "oec", "dent", "vet", "habil",
    "hc", "h", "c", "dipl", "ing", "dipl ing", "kfm", "mba", "llm", "ll", "m", "mult", "sc",
})
# Spellings of a legal form (folded, as token sequences) → its canonical token.
_FORMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gmbh", "&", "co", "kg"), "gmbh co kg"), (("gmbh", "und", "co", "kg"), "gmbh co kg"),
    (("gmbh", "u", "co", "kg"), "gmbh co kg"), (("gmbh", "co", "kg"), "gmbh co kg"),
    (("gmbh", "&", "co", "kgaa"), "gmbh co kgaa"), (("gmbh", "co", "kgaa"), "gmbh co kgaa"),
    (("ug", "haftungsbeschraenkt"), "ug"), (("ug", "haftungsbeschr"), "ug"),
    (("gesellschaft", "mit", "beschraenkter", "haftung"), "gmbh"), (("ges", "m", "b", "h"), "gmbh"),
    (("g", "m", "b", "h"), "gmbh"), (("aktiengesellschaft",), "ag"), (("e", "k"), "ek"),
    (("e", "kfm"), "ek"), (("e", "kfr"), "ek"), (("eingetragener", "kaufmann"), "ek"),
    (("eingetragene", "kauffrau"), "ek"), (("e", "v"), "ev"), (("eingetragener", "verein"), "ev"),
    (("e", "g"), "eg"), (("eg",), "eg"), (("ohg",), "ohg"), (("kg",), "kg"), (("ag",), "ag"),
    (("gmbh",), "gmbh"), (("ug",), "ug"), (("ek",), "ek"), (("ev",), "ev"), (("se",), "se"),
    (("gbr",), "gbr"), (("partg", "mbb"), "partg mbb"), (("partgmbb",), "partg mbb"), (("partg",), "partg"),
    (("kgaa",), "kgaa"), (("mbh",), "mbh"),
)
COMPANY_FORMS: frozenset[str] = frozenset(canon for _, canon in _FORMS)
_MAX_FORM = max(len(tokens) for tokens, _ in _FORMS)
_REGISTER = re.compile(r"^(HRA|HRB|GNR|GENR|PR|VR)?(\d+)([A-Z]{0,2})$")
_COURT_PREFIXES = ("amtsgericht ", "ag ", "registergericht ", "amtsger ")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_DE_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_PLZ = re.compile(r"\d+")
PLACEHOLDER_DATE = date(1900, 1, 1)  # this day and earlier: what systems write for "unknown"


def fold(value: object) -> str | None:
    """Case, umlauts, ß, accents, punctuation and whitespace folded; ``None`` when nothing is left."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).casefold().translate(_UMLAUTS)  # NFD ü (Mac) is ü too
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()
    return text or None


def person_name(value: object) -> str | None:
    """A first or family name, folded, titles dropped."""
    folded = fold(value)
    if folded is None:
        return None
    words = [w for w in folded.split(" ") if w not in TITLES and w != "&"]
    return " ".join(words) or None


def _canonical_forms(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for size in range(min(_MAX_FORM, len(tokens) - i), 0, -1):
            canon = _FORM_TABLE.get(tuple(tokens[i:i + size]))
            if canon is not None:
                out.append(canon)
                i += size
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


_FORM_TABLE: dict[tuple[str, ...], str] = dict(_FORMS)


def company_form(value: object) -> str | None:
    """The canonical legal form of a ``rechtsform`` value (``None`` for a person or no form)."""
    folded = fold(value)
    if folded is None:
        return None
    canon = " ".join(_canonical_forms(folded.split(" ")))
    return canon if canon in COMPANY_FORMS else None


def company_name(name: object, rechtsform: object = None) -> str | None:
    """A company's name with its legal form spelt one way; the form from ``rechtsform`` is appended
    when the name does not end with it (``Meier`` + ``GmbH`` = ``Meier GmbH``)."""
    folded = fold(name)
    if folded is None:
        return None
    canon = " ".join(t for t in _canonical_forms(folded.split(" ")) if t != "&")
    form = company_form(rechtsform)
    if form and not (canon == form or canon.endswith(" " + form)):  # by words: "verlag" does not end in "ag"
        canon = f"{canon} {form}"
    return canon or None


def name_form(name: object) -> str | None:
    """The legal form a company's name ends with (``Weiß Bau GmbH & Co. KG`` → ``gmbh co kg``)."""
    folded = fold(name)
    if folded is None:
        return None
    canon = " ".join(t for t in _canonical_forms(folded.split(" ")) if t != "&")
    return next((f for f in sorted(COMPANY_FORMS, key=len, reverse=True)
                 if canon == f or canon.endswith(" " + f)), None)


def has_company_form(name: object) -> bool:
    """Whether a name carries a legal form (``Meier GmbH``): a company even without ``rechtsform``."""
    folded = fold(name)
    if folded is None:
        return False
    return any(t in COMPANY_FORMS for t in _canonical_forms(folded.split(" ")))


def register_number(value: object) -> str | None:
    """``HRB 12345`` / ``HR B 12345`` / ``hrb12345`` → ``HRB12345``; a number without digits is empty."""
    if value is None:
        return None
    text = re.sub(r"[\s.\-/]", "", str(value).upper())
    m = _REGISTER.match(text)
    if m is None:
        return text if any(c.isdigit() for c in text) else None
    kind = {"GENR": "GNR"}.get(m.group(1) or "", m.group(1) or "")
    return f"{kind}{int(m.group(2))}{m.group(3)}"


def court(value: object) -> str | None:
    """``Amtsgericht München`` / ``AG München`` / ``München`` → ``muenchen``."""
    folded = fold(value)
    if folded is None:
        return None
    for prefix in _COURT_PREFIXES:
        if folded.startswith(prefix):
            folded = folded[len(prefix):]
            break
    return folded or None


def birth_date(value: object) -> str | None:
    """``YYYY-MM-DD`` from an ISO date, an Advoware datetime or ``DD.MM.YYYY``; ``None`` for anything
    else, an impossible date or a placeholder (``00.00.0000``, ``0001-01-01``, ``1900-01-01``): a
    placeholder is no birth date, two namesakes never match by it."""
    if value is None:
        return None
    text = str(value).strip()
    m = _ISO_DATE.match(text)
    parts = (m.group(1), m.group(2), m.group(3)) if m else None
    m = _DE_DATE.match(text)
    if m:
        parts = (m.group(3), m.group(2), m.group(1))
    if parts is None:
        return None
    try:
        day = date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None
    return day.isoformat() if day > PLACEHOLDER_DATE else None


def email(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().casefold()
    return text if "@" in text and not text.startswith("@") and not text.endswith("@") else None


def postcode(value: object) -> str | None:
    """Digits only (``D-80331`` = ``80331``); ``None`` for a placeholder (one digit repeated, ``00000``)
    or fewer than four digits: like a placeholder birth date, no postcode two parties can share."""
    if value is None:
        return None
    digits = "".join(_PLZ.findall(str(value)))
    if len(digits) < 4 or len(set(digits)) == 1:
        return None
    return digits
