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

Before a create the sync looks up the strong rules (:func:`strong_keys`), then the others
(:func:`weak_lookup_keys`): a candidate that is a :func:`possible_duplicate` (a rule matches, or first
name + e-mail with the family name one letter off, nothing contradicting) holds the create for a person.

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
from typing import Any

from domain import normalize as n


class Kind(StrEnum):
    PERSON = "person"
    COMPANY = "company"


class Rule(StrEnum):
    COMPANY_REGISTER = "company_register"
    PERSON_NAME_DOB = "person_name_dob"
    COMPANY_NAME_PLZ = "company_name_plz"
    PERSON_SWAPPED_DOB = "person_swapped_dob"
    PERSON_NAME_EMAIL = "person_name_email"
    PERSON_TYPO_DOB_EMAIL = "person_typo_dob_email"
    PERSON_NAME_PLZ = "person_name_plz"
    # Never returned by rule_for (match does not propose it): only a possible duplicate at a create.
    PERSON_TYPO_EMAIL = "person_typo_email"


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


@dataclass(frozen=True, slots=True)
class Party:
    """The normalised identity of one record; ``ref`` is the EspoCRM id or the ``betNr`` as text."""

    ref: str
    kind: Kind
    label: str
    family: str | None = None
    first: str | None = None
    dob: str | None = None
    company: str | None = None
    register: str | None = None
    court: str | None = None
    email: str | None = None
    plz: str | None = None
    form: str | None = None  # a company's legal form (from its name, else from rechtsform)


def _kind(name: Any, rechtsform: Any, anrede: Any, vorname: Any) -> Kind:
    form = n.fold(rechtsform)
    if n.company_form(rechtsform) or n.fold(anrede) == "firma":
        return Kind.COMPANY
    if not n.fold(vorname) and n.has_company_form(name):  # "Meier GmbH"; a person "Anna Ek" stays one
        return Kind.COMPANY
    if form and form != "natuerliche person" and not vorname:
        return Kind.COMPANY
    return Kind.PERSON


def _party(ref: str, name: Any, vorname: Any, anrede: Any, rechtsform: Any, dob: Any, reg: Any,
           court: Any, email: Any, plz: Any) -> Party:
    kind = _kind(name, rechtsform, anrede, vorname)
    label = " ".join(str(v).strip() for v in (vorname, name) if v and str(v).strip()) or "?"
    mail, postcode = n.email(email), n.postcode(plz)
    if kind == Kind.COMPANY:
        return Party(ref, kind, label, company=n.company_name(name, rechtsform), register=n.register_number(reg),
                     court=n.court(court), email=mail, plz=postcode,
                     form=n.name_form(name) or n.company_form(rechtsform))
    return Party(ref, kind, label, family=n.person_name(name), first=n.person_name(vorname),
                 dob=n.birth_date(dob), email=mail, plz=postcode)


def party_from_espo(record: Mapping[str, Any]) -> Party:
    r = record.get
    return _party(str(r("id")), r("lastName"), r("firstName"), r("salutationName"), r("rechtsform"),
                  r("dateOfBirth"), r("handelsregisterNummer"), r("registergericht"), r("emailAddress"),
                  r("addressPostalCode"))


def party_from_advoware(obj: Mapping[str, Any]) -> Party:
    o = obj.get
    return _party(str(o("betNr")), o("name"), o("vorname"), o("anrede"), o("rechtsform"), o("geburtsdatum"),
                  o("handelsRegisterNummer"), o("registergericht"), o("email"), o("plz"))


def _key(*parts: str | None) -> str | None:
    """A blocking key, or ``None`` when any part is empty: no rule matches on an empty value."""
    return "|".join(parts) if all(parts) else None  # type: ignore[arg-type]


def _index_keys(p: Party) -> dict[str, str | None]:
    if p.kind == Kind.COMPANY:
        return {"rc": _key(p.register, p.court), "cp": _key(p.company, p.plz)}
    return {"nd": _key(p.family, p.first, p.dob), "ne": _key(p.family, p.first, p.email),
            "np": _key(p.family, p.first, p.plz), "fde": _key(p.first, p.dob, p.email)}


def strong_keys(p: Party) -> list[str]:
    """Keys of the strong rules only (the index the sync consults before a create)."""
    return [f"{k}:{v}" for k, v in _index_keys(p).items() if k in ("nd", "rc", "cp") and v]


def weak_keys(p: Party) -> list[str]:
    """The keys a person is indexed under besides the strong ones (companies have no weak rule):
    ``fe`` first name + e-mail finds name + e-mail, first name + birth date + e-mail and a family
    name one letter off with that e-mail; ``np`` family + first name + postcode."""
    if p.kind != Kind.PERSON:
        return []
    keys = {"np": _key(p.family, p.first, p.plz), "fe": _key(p.first, p.email)}
    return [f"{k}:{v}" for k, v in keys.items() if v]


def weak_lookup_keys(p: Party) -> list[str]:
    """What a create looks up when no strong rule matched: :func:`weak_keys`, and the strong
    name + birth date key with first and family name swapped."""
    swapped = _key(p.first, p.family, p.dob) if p.kind == Kind.PERSON else None
    return weak_keys(p) + ([f"nd:{swapped}"] if swapped else [])


def within_one_edit(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours apart (not equal)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


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
        if _key(a.register, a.court) and (a.register, a.court) == (b.register, b.court) and same_form:
            return Rule.COMPANY_REGISTER
        return Rule.COMPANY_NAME_PLZ if _key(a.company, a.plz) and (a.company, a.plz) == (b.company, b.plz) else None
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
    """Whether a pair a person kept may be linked: a rule matches, or nothing contradicts and the names
    agree (a person: same first name, family name at most one letter off; a company: same name or
    register). A betnr mistyped in the review file names someone else."""
    if rule_for(a, b) is not None:
        return True
    if not _compatible(a, b):
        return False
    if a.kind == Kind.COMPANY:
        return bool(a.company and a.company == b.company) or bool(_key(a.register, a.court)
                                                                 and (a.register, a.court) == (b.register, b.court))
    return bool(a.first and a.family and b.family and a.first == b.first
                and (a.family == b.family or within_one_edit(a.family, b.family)))


def possible_duplicate(a: Party, b: Party) -> Rule | None:
    """Why ``b`` may be the party ``a`` is, or ``None``: any rule matches, or (nothing contradicting)
    first name and e-mail are equal and the family names one letter apart as typed. A create meeting one waits
    for a person; two different birth dates (or any contradiction) never make one."""
    rule = rule_for(a, b)
    if rule is not None:
        return rule
    if (a.kind == Kind.PERSON and _compatible(a, b) and a.first and a.email and a.family and b.family
            and (a.first, a.email) == (b.first, b.email) and _typed_one_off(a.family, b.family)):
        return Rule.PERSON_TYPO_EMAIL
    return None


def _typed_one_off(a: str, b: str) -> bool:
    """One letter apart as typed: a folded umlaut or ß (``ue``, ``oe``, ``ae``, ``ss``) is one letter,
    so ``Khn`` (ü dropped) is one off ``Kühn``."""
    squash = [x.replace("ae", "a").replace("oe", "o").replace("ue", "u").replace("ss", "s") for x in (a, b)]
    return within_one_edit(a, b) or squash[0] == squash[1] or within_one_edit(*squash)


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
        for kind, key in _index_keys(p).items():
            if key:
                self.keys[kind].setdefault(key, []).append(p.ref)

    def candidates(self, p: Party) -> list[Candidate]:
        """Every Advoware party ``p`` matches, with the strongest rule for each."""
        refs: set[str] = set()
        for kind, key in _index_keys(p).items():
            if key:
                refs.update(self.keys[kind].get(key, ()))
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
