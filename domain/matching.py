"""Pure matching of existing parties: which EspoCRM record and which Advoware Beteiligter are one party.

No I/O. Each side is reduced to a :class:`Party` (normalised identity, :mod:`domain.normalize`). The
Advoware side goes into a :class:`MatchIndex` (dicts of blocking keys, so 20 000 × 10 000 costs one
dict lookup per rule and EspoCRM record, never a comparison of every pair); each EspoCRM record is
then looked up by every rule. No rule ever builds a key from an empty value.

Rules (strongest first; ``auto`` rules are kept for linking by default, the others wait for a person):

| rule | needs | confidence | auto |
|---|---|---|---|
| ``company_register`` | register number + court + legal form (or, one form unknown, name) | 1.00 | yes |
| ``person_name_dob`` | family + first name + birth date | 0.99 | yes |
| ``company_name_plz`` | legal name (form spelt one way) + postcode, registers not contradicting | 0.95 | yes |
| ``person_swapped_dob`` | first and family name swapped + birth date | 0.90 | yes |
| ``person_typo_dob_email`` | first name + birth date + e-mail, family name one letter off | 0.85 | yes |
| ``person_name_email`` | family + first name + e-mail, a birth date missing on one side | 0.70 | no |
| ``person_name_plz`` | family + first name + postcode, a birth date missing on one side | 0.60 | no |

The identity of a record is a :class:`domain.match_party.Party`; the keys are built in
:mod:`domain.match_keys`. Before a create the sync looks up the strong rules
(:func:`domain.match_keys.strong_keys`), then the others (:func:`domain.match_keys.weak_lookup_keys`): a
candidate that is a :func:`possible_duplicate` (a rule matches, or first name + e-mail or first name +
postcode with the family name one letter off, nothing contradicting) holds the create for a person.

Two different birth dates, two different register numbers, two different legal forms (a GmbH and
its GmbH & Co. KG share register court and often the bare number) or a person against a company
never match. E-mail is only supporting evidence (it never matches alone, and never links without two equal
birth dates). A record with more than one
candidate in its best tier (the auto rules; the weak rule only where no auto rule matched) is
**ambiguous**: listed, never linked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from domain.match_keys import index_keys, key, typed_one_off, within_one_edit
from domain.match_party import Kind, Party


class Rule(StrEnum):
    COMPANY_REGISTER = "company_register"
    PERSON_NAME_DOB = "person_name_dob"
    COMPANY_NAME_PLZ = "company_name_plz"
    PERSON_SWAPPED_DOB = "person_swapped_dob"
    PERSON_NAME_EMAIL = "person_name_email"
    PERSON_TYPO_DOB_EMAIL = "person_typo_dob_email"
    PERSON_NAME_PLZ = "person_name_plz"
    # Never returned by rule_for (match does not propose them): only possible duplicates at a create.
    PERSON_TYPO_EMAIL = "person_typo_email"
    PERSON_TYPO_PLZ = "person_typo_plz"
    PERSON_FIRST_NAMES_DOB = "person_first_names_dob"  # "Anna Maria" / "Anna": family name + birth date


class Verdict(StrEnum):
    LINK = "link"  # unique both ways by an auto rule: kept for --apply
    REVIEW = "review"  # unique, but by a weak rule: a person decides
    AMBIGUOUS = "ambiguous"  # several candidates: never linked
    LINKED_ELSEWHERE = "linked_elsewhere"  # the Beteiligter is already linked to another record
    WEAKER = "weaker"  # a weak-rule candidate of a record that has an auto-rule match


CONFIDENCE: dict[Rule, float] = {
    Rule.COMPANY_REGISTER: 1.0, Rule.PERSON_NAME_DOB: 0.99, Rule.COMPANY_NAME_PLZ: 0.95,
    Rule.PERSON_SWAPPED_DOB: 0.9, Rule.PERSON_NAME_EMAIL: 0.7, Rule.PERSON_TYPO_DOB_EMAIL: 0.85,
    Rule.PERSON_NAME_PLZ: 0.6,
}
# E-mail is supporting evidence only: a family mailbox is shared by father and son of one name, so
# name + e-mail without both birth dates waits for a person.
AUTO: frozenset[Rule] = frozenset({Rule.COMPANY_REGISTER, Rule.PERSON_NAME_DOB, Rule.COMPANY_NAME_PLZ,
                                   Rule.PERSON_SWAPPED_DOB, Rule.PERSON_TYPO_DOB_EMAIL})
STRONG: frozenset[Rule] = frozenset({Rule.COMPANY_REGISTER, Rule.PERSON_NAME_DOB, Rule.COMPANY_NAME_PLZ})
EMAIL_BONUS = 0.005


def _compatible(a: Party, b: Party) -> bool:
    """No identifying value contradicts: different birth dates or register numbers never match."""
    if a.kind != b.kind:
        return False
    if a.dob and b.dob and a.dob != b.dob:
        return False
    if a.form and b.form and a.form != b.form:  # a GmbH is never its GmbH & Co. KG
        return False
    return not (a.register and b.register and (a.register, a.court) != (b.register, b.court))


def rule_for(a: Party, b: Party) -> Rule | None:
    """The strongest rule by which two parties are one, or ``None``."""
    if not _compatible(a, b):
        return None
    if a.kind == Kind.COMPANY:
        same_form = (a.form == b.form) if a.form and b.form else bool(a.company) and a.company == b.company
        if key(a.register, a.court) and (a.register, a.court) == (b.register, b.court) and same_form:
            return Rule.COMPANY_REGISTER
        return Rule.COMPANY_NAME_PLZ if key(a.company, a.plz) and (a.company, a.plz) == (b.company, b.plz) else None
    names = a.family and a.first and (a.family, a.first) == (b.family, b.first)
    if names and a.dob and a.dob == b.dob:
        return Rule.PERSON_NAME_DOB
    if a.dob and a.dob == b.dob and a.family and a.first and (a.family, a.first) == (b.first, b.family):
        return Rule.PERSON_SWAPPED_DOB
    if names and a.email and a.email == b.email:
        return Rule.PERSON_NAME_EMAIL
    if (a.first and a.dob and a.email and (a.first, a.dob, a.email) == (b.first, b.dob, b.email)
            and a.family and b.family and within_one_edit(a.family, b.family)):
        return Rule.PERSON_TYPO_DOB_EMAIL
    return Rule.PERSON_NAME_PLZ if names and a.plz and a.plz == b.plz else None


def plausible(a: Party, b: Party) -> bool:
    """Whether a pair a person named (a kept row of the review file, a ``betnr`` typed into a record)
    may be linked: a rule matches or the pair is a :func:`possible_duplicate`, or nothing contradicts,
    the names agree (a person: same first name, family name at most one letter off; a company: same
    name) and one more identifying value is equal (birth date, e-mail or postcode), or a company's
    register number and court are equal. A name alone never suffices: "Anna Schmidt" in Köln without a
    birth date is not "Anna Schmidt", born 1980, in Berlin (issue 17). A mistyped betnr names someone
    else."""
    if rule_for(a, b) is not None or possible_duplicate(a, b) is not None:
        return True
    if not _compatible(a, b):
        return False
    if a.kind == Kind.COMPANY:
        if key(a.register, a.court) and (a.register, a.court) == (b.register, b.court):
            return True
        return bool(a.company and a.company == b.company) and _supported(a, b)
    names = bool(a.first and a.family and b.family and a.first == b.first
                 and (a.family == b.family or within_one_edit(a.family, b.family)))
    return names and _supported(a, b)


def _supported(a: Party, b: Party) -> bool:
    """One identifying value besides the name is present on both sides and equal."""
    return any(x and x == y for x, y in ((a.dob, b.dob), (a.email, b.email), (a.plz, b.plz)))


def possible_duplicate(a: Party, b: Party) -> Rule | None:
    """Why ``b`` may be the party ``a`` is, or ``None``: any rule matches, or (two persons, nothing
    contradicting) the first names are equal, the family names one letter apart as typed
    (:func:`domain.match_keys.typed_one_off`) and the e-mail (``person_typo_email``) or the postcode
    (``person_typo_plz``) equal, or one first name is the other with a second one, family name and
    birth date equal (``person_first_names_dob``). A create meeting one waits for a person; two
    different birth dates (or any contradiction) never make one."""
    rule = rule_for(a, b)
    if rule is not None:
        return rule
    if _second_first_name(a, b):
        return Rule.PERSON_FIRST_NAMES_DOB
    if not (a.kind == Kind.PERSON and _compatible(a, b) and a.first and a.first == b.first
            and a.family and b.family and typed_one_off(a.family, b.family)):
        return None
    if a.email and a.email == b.email:
        return Rule.PERSON_TYPO_EMAIL
    return Rule.PERSON_TYPO_PLZ if a.plz and a.plz == b.plz else None


def _second_first_name(a: Party, b: Party) -> bool:
    """Two persons of one family name and birth date whose first names differ only by a second one
    (``Anna Maria`` / ``Anna`` or ``Maria``): one folded first name begins or ends the other."""
    if not (a.kind == Kind.PERSON == b.kind and a.dob and a.dob == b.dob and a.family and a.family == b.family
            and a.first and b.first and a.first != b.first):
        return False
    short, long = sorted((a.first, b.first), key=len)
    return long.startswith(short) or long.endswith(short)


@dataclass(frozen=True, slots=True)
class Candidate:
    advo_ref: str
    rule: Rule
    confidence: float


@dataclass
class MatchIndex:
    """The Advoware side, by blocking key; built page by page."""

    parties: dict[str, Party] = field(default_factory=dict)
    keys: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, p: Party) -> None:
        self.parties[p.ref] = p
        for kind, value in index_keys(p).items():
            if value:
                self.keys[kind].setdefault(value, []).append(p.ref)

    def candidates(self, p: Party) -> list[Candidate]:
        """Every Advoware party ``p`` matches, with the strongest rule for each."""
        refs: set[str] = set()
        for kind, value in index_keys(p).items():
            if value:
                refs.update(self.keys[kind].get(value, ()))
        if p.kind == Kind.PERSON and p.first and p.family and p.dob:
            refs.update(self.keys["nd"].get(f"{p.first}|{p.family}|{p.dob}", ()))  # swapped names
        out = []
        for ref in sorted(refs):
            rule = rule_for(p, self.parties[ref])
            if rule is not None:
                bonus = EMAIL_BONUS if p.email and p.email == self.parties[ref].email and rule in STRONG else 0.0
                out.append(Candidate(ref, rule, min(1.0, CONFIDENCE[rule] + bonus)))
        return out


@dataclass(frozen=True, slots=True)
class Proposal:
    espo_ref: str
    advo_ref: str
    rule: Rule
    confidence: float
    verdict: Verdict
    note: str = ""


def _tiers(pairs: list[tuple[str, Candidate]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per EspoCRM ref and per Advoware ref, its partners in its best tier: the auto-rule partners
    when it has any, otherwise every partner."""
    auto_e: dict[str, set[str]] = defaultdict(set)
    auto_a: dict[str, set[str]] = defaultdict(set)
    all_e: dict[str, set[str]] = defaultdict(set)
    all_a: dict[str, set[str]] = defaultdict(set)
    for espo_ref, c in pairs:
        all_e[espo_ref].add(c.advo_ref)
        all_a[c.advo_ref].add(espo_ref)
        if c.rule in AUTO:
            auto_e[espo_ref].add(c.advo_ref)
            auto_a[c.advo_ref].add(espo_ref)
    by_espo = {k: auto_e.get(k) or v for k, v in all_e.items()}
    by_advo = {k: auto_a.get(k) or v for k, v in all_a.items()}
    return by_espo, by_advo


def _verdict(espo_ref: str, c: Candidate, by_espo: dict[str, set[str]], by_advo: dict[str, set[str]],
             linked: Mapping[str, str]) -> tuple[Verdict, str]:
    owner = linked.get(c.advo_ref)
    if owner is not None and owner != espo_ref:
        return Verdict.LINKED_ELSEWHERE, f"Beteiligter already linked to EspoCRM {owner}"
    if c.advo_ref not in by_espo[espo_ref] or espo_ref not in by_advo[c.advo_ref]:
        return Verdict.WEAKER, "a stronger match exists for one of the two"
    if len(by_espo[espo_ref]) > 1:
        return Verdict.AMBIGUOUS, "also matches betnr " + ", ".join(sorted(by_espo[espo_ref] - {c.advo_ref}))
    if len(by_advo[c.advo_ref]) > 1:
        others = ", ".join(sorted(by_advo[c.advo_ref] - {espo_ref}))
        return Verdict.AMBIGUOUS, "Beteiligter also matches EspoCRM " + others
    return (Verdict.LINK if c.rule in AUTO else Verdict.REVIEW), ""


def resolve(found: Iterable[tuple[str, Candidate]], linked: Mapping[str, str]) -> list[Proposal]:
    """Verdicts for every (EspoCRM ref, candidate) found. A pair is linked only when, among the
    candidates of the best tier (auto rules; the weak rule only where no auto rule matched), each
    side has exactly this one. ``linked`` maps an already linked ``betNr`` to its EspoCRM id."""
    pairs = list(found)
    by_espo, by_advo = _tiers(pairs)
    out = []
    for espo_ref, c in pairs:
        verdict, note = _verdict(espo_ref, c, by_espo, by_advo, linked)
        out.append(Proposal(espo_ref, c.advo_ref, c.rule, c.confidence, verdict, note))
    return out
