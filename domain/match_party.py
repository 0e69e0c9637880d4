"""The normalised identity of one party (issue 11): what the matching rules and keys compare.

No I/O. Each side is reduced to a :class:`Party` (values folded by :mod:`domain.normalize`; an empty
value is ``None``, so no rule and no key is ever built from one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain import normalize as n


class Kind(StrEnum):
    PERSON = "person"
    COMPANY = "company"


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
