"""The blocking keys of the matching rules (issue 11), and names one letter apart.

No I/O. ``beteiligte-sync match`` looks every EspoCRM record up in a dict per rule (:func:`index_keys`);
the sync, before a create, looks the EspoCRM values up in a Redis index of the Advoware parties' keys
(:func:`strong_keys` and :func:`weak_keys`, stored as hashes; :func:`weak_lookup_keys` is what a create
looks up). No key is ever built from an empty value.

A family name typed one letter off (one substitution, insertion, deletion or swap of neighbours; a
folded umlaut or ß counts as one letter) is found without reading every namesake the symmetric-delete
way: a person is indexed under first name + postcode + each variant of the family name with one letter
deleted, and the name itself (:func:`family_variants`; ``fd`` and ``np`` keys). Two names one edit apart always
share a variant: a substitution at *i* or a swap at *i, i+1* leaves both the same with *i* deleted, an
insertion is the longer name with that letter deleted.
"""

from __future__ import annotations

from domain.match_party import Kind, Party

# 2: the weak keys (name + e-mail, name + postcode); 3: also first name + postcode + the family
# name's one-deletion variants (``fd``) and its umlaut-squashed spelling (``np``); 4: the weak keys
# of a person with a birth date marked by it (:func:`_marked`); 5: family name + birth date (``fb``,
# a second first name). An index of an older version serves only the lookups it has keys for (see
# :func:`weak_lookup_keys`).
KEY_VERSION = 5
WEAK_SINCE = 2
VARIANTS_SINCE = 3
DOB_MARKED_SINCE = 4
FIRST_NAMES_SINCE = 5
ANY_DOB = "*"


def key(*parts: str | None) -> str | None:
    """A blocking key, or ``None`` when any part is empty: no rule matches on an empty value."""
    return "|".join(parts) if all(parts) else None  # type: ignore[arg-type]


def index_keys(p: Party) -> dict[str, str | None]:
    """The keys of ``match``'s in-memory index, by rule family."""
    if p.kind == Kind.COMPANY:
        return {"rc": key(p.register, p.court), "cp": key(p.company, p.plz)}
    return {"nd": key(p.family, p.first, p.dob), "ne": key(p.family, p.first, p.email),
            "np": key(p.family, p.first, p.plz), "fde": key(p.first, p.dob, p.email)}


def strong_keys(p: Party) -> list[str]:
    """Keys of the strong rules only (the index the sync consults before a create)."""
    return [f"{k}:{v}" for k, v in index_keys(p).items() if k in ("nd", "rc", "cp") and v]


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


def squash(folded: str) -> str:
    """A folded umlaut or ß (``ue``, ``oe``, ``ae``, ``ss``) as one letter, as it was typed."""
    return folded.replace("ae", "a").replace("oe", "o").replace("ue", "u").replace("ss", "s")


def typed_one_off(a: str, b: str) -> bool:
    """Folded names one letter apart as typed: ``Khn`` (ü dropped) is one off ``Kühn``."""
    return within_one_edit(a, b) or squash(a) == squash(b) or within_one_edit(squash(a), squash(b))


def family_variants(family: str) -> set[str]:
    """The name and each one-letter deletion of it, folded and with umlauts squashed: two names
    :func:`typed_one_off` (or equal) always share one."""
    out: set[str] = set()
    for name in {family, squash(family)}:
        out.add(name)
        out.update(name[:i] + name[i + 1:] for i in range(len(name)))
    return out


def _near_keys(p: Party) -> list[str]:
    """The name + postcode keys a person is indexed under: ``np`` family + first name + postcode of the
    name itself (folded, and with umlauts squashed), ``fd`` first name + postcode + each deletion."""
    if not (p.first and p.plz and p.family):
        return []
    full = {p.family, squash(p.family)}
    return ([f"np:{v}|{p.first}|{p.plz}" for v in sorted(full)]
            + [f"fd:{p.first}|{p.plz}|{v}" for v in sorted(family_variants(p.family) - full)])


def _plain_weak_keys(p: Party) -> list[str]:
    mail = key(p.first, p.email)
    return ([f"fe:{mail}"] if mail else []) + _near_keys(p)


def _marked(keys: list[str], mark: str) -> list[str]:
    return [f"{k}#{mark}" for k in keys]


def weak_keys(p: Party) -> list[str]:
    """The keys a person is indexed under besides the strong ones (companies have no weak rule):
    ``fe`` first name + e-mail finds name + e-mail, first name + birth date + e-mail and a family
    name one letter off with that e-mail; ``np`` and ``fd`` (:func:`_near_keys`) find name + postcode
    and a family name one letter off with first name and postcode equal.

    A person without a birth date has them as they are; one with a birth date has each twice, marked
    ``#*`` (found by a record without a birth date) and ``#<birth date>`` (found by a record with the
    same one): a record with another birth date, a contradiction, never finds it (namesakes born in
    other years never hold a create)."""
    if p.kind != Kind.PERSON:
        return []
    plain = _plain_weak_keys(p)
    family_dob = key(p.family, p.dob)  # a second first name (Anna Maria / Anna): birth date in the key
    return (_marked(plain, ANY_DOB) + _marked(plain, p.dob) if p.dob else plain) + \
        ([f"fb:{family_dob}"] if family_dob else [])


def weak_lookup_keys(p: Party, version: int = KEY_VERSION) -> list[str]:
    """What a create looks up when no strong rule matched, in an index of this :data:`KEY_VERSION`:
    first name + e-mail, each variant of the family name as a name (``np``) and as a deletion
    (``fd``: a variant shared with a deletion of the other name), as they are (the persons without a
    birth date) and marked by the record's birth date, or by ``*`` when it has none
    (:func:`weak_keys`); then the strong name + birth date key with first and family name swapped.
    An index of version 2 has only the name itself (``np``): the variants are not looked up; one
    before version 4 holds every person's keys as they are, so a record with a birth date looks
    them up marked ``*`` too (the rows indexed since); an older one has no weak key at all."""
    if p.kind != Kind.PERSON or version < WEAK_SINCE:
        return []
    out = [k for k in _plain_weak_keys(p) if k.startswith("fe:")]
    if p.first and p.plz and p.family:
        variants = sorted(family_variants(p.family)) if version >= VARIANTS_SINCE else [p.family]
        out += [f"np:{v}|{p.first}|{p.plz}" for v in variants]
        out += [f"fd:{p.first}|{p.plz}|{v}" for v in variants] if version >= VARIANTS_SINCE else []
    mark = p.dob if p.dob and version >= DOB_MARKED_SINCE else ANY_DOB
    swapped = key(p.first, p.family, p.dob)
    family_dob = key(p.family, p.dob) if version >= FIRST_NAMES_SINCE else None
    return out + _marked(out, mark) + ([f"nd:{swapped}"] if swapped else []) + \
        ([f"fb:{family_dob}"] if family_dob else [])
