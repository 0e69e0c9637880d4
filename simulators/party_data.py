"""Parties that look like a German law firm's: people and companies, for Advoware and EspoCRM.

``generate(seed, advoware=20000, espocrm=10000, overlap=6000)`` gives an Advoware set and an EspoCRM
set (dicts in each system's own field names, ready for ``AdvowareSimulator.seed(**obj)`` and
``EspoCRMSimulator.seed(**rec)``) with exactly ``overlap`` true pairs, listed in ``truth`` as
``(espocrm index, advoware index)``. The EspoCRM copy of a shared party is often entered differently:
other case or umlaut spelling (``Müller``/``Mueller``), a title in the name, first and family name
swapped, a typo in the family name, no birth date, another spelling of the legal form (``GmbH & Co
KG``/``GmbH & Co. KG``, ``e.K.``/``e. K.``), the register number or court written another way, a
newer phone number or address. A few shared parties exist twice in Advoware (entered twice over the
years) and a few cannot be recognised at all (typo *and* no birth date): ``variants`` counts each kind.

Distinct people never share family name, first name and birth date (either order), nor an e-mail;
distinct companies never share a register number or a name: only the true pairs are one party.
Namesakes with other birth dates are common, as in a real firm. Imports nothing of the service.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

FIRST_F = ("Anna", "Anneliese", "Bärbel", "Birgit", "Claudia", "Doris", "Elke", "Erika", "Eva", "Gisela",
           "Gudrun", "Hannelore", "Heike", "Ingrid", "Jutta", "Käthe", "Karin", "Katrin", "Lea", "Lena",
           "Luise", "Maria", "Marlies", "Monika", "Petra", "Renate", "Sabine", "Sophie", "Sünje", "Ursula")
FIRST_M = ("Andreas", "Bernd", "Björn", "Christian", "Dieter", "Frank", "Günter", "Hans", "Heinz", "Helmut",
           "Jörg", "Jürgen", "Karl", "Klaus", "Lukas", "Manfred", "Michael", "Niklas", "Ralf", "Rüdiger",
           "Sören", "Stefan", "Thomas", "Uwe", "Volker", "Walter", "Werner", "Wolfgang", "Jan-Hendrik", "Ömer")
FAMILY = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
          "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
          "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Krause",
          "Meier", "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Mayer", "Huber",
          "Kaiser", "Fuchs", "Peters", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel",
          "Friedrich", "Keller", "Günther", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann",
          "Franke", "Albrecht", "Schuster", "Böhm", "Winter", "Kraus", "Schumacher", "Krämer", "Vogt",
          "Stein", "Jäger", "Sommer", "Groß", "Seidel", "Brandt", "Haas", "Schreiber", "Graf", "Dietrich",
          "Ziegler", "Kühn", "Pohl", "Engel", "Horn", "Busch", "Bergmann", "Voigt", "Sauer", "Pfeiffer",
          "Strauß", "Rößler", "Nußbaum", "Özdemir", "Yılmaz", "Nowak", "von Bülow", "Weißenfels", "Großkopf")
TITLES = ("Dr.", "Prof. Dr.", "Dr. med.", "Dipl.-Ing.")
BRANCHES = ("Bau", "Immobilien", "Logistik", "Elektro", "Software", "Beratung", "Handel", "Holz", "Metall",
            "Gastro", "Medien", "Pflege", "Transport", "Energie", "Druck", "Garten", "Dental", "Auto")
FORMS = ("GmbH", "GmbH & Co. KG", "e.K.", "AG", "UG (haftungsbeschränkt)", "KG", "OHG", "e.V.")
FORM_VARIANTS = {"GmbH & Co. KG": "GmbH & Co KG", "e.K.": "e. K.", "UG (haftungsbeschränkt)": "UG",
                 "e.V.": "e. V.", "GmbH": "Gmbh", "AG": "Aktiengesellschaft", "KG": "KG", "OHG": "OHG"}
COURTS = ("München", "Berlin-Charlottenburg", "Hamburg", "Köln", "Frankfurt am Main", "Düsseldorf",
          "Stuttgart", "Nürnberg", "Leipzig", "Dresden", "Hannover", "Bremen", "Essen", "Mannheim")
CITIES = (("80331", "München"), ("10115", "Berlin"), ("20095", "Hamburg"), ("50667", "Köln"),
          ("60311", "Frankfurt am Main"), ("40213", "Düsseldorf"), ("70173", "Stuttgart"),
          ("90402", "Nürnberg"), ("04109", "Leipzig"), ("01067", "Dresden"), ("30159", "Hannover"),
          ("28195", "Bremen"), ("45127", "Essen"), ("68159", "Mannheim"), ("93047", "Regensburg"),
          ("97070", "Würzburg"), ("79098", "Freiburg im Breisgau"), ("24103", "Kiel"))
STREETS = ("Hauptstraße", "Schloßallee", "Bahnhofstr.", "Goethestraße", "Königsweg", "Mühlenstraße",
           "Lindenallee", "Am Grünen Weg", "Friedrich-Ebert-Straße", "Rosenstraße", "Marktplatz")
MAIL_DOMAINS = ("web.de", "gmx.de", "t-online.de", "posteo.de", "mailbox.org", "kanzlei-mail.de")

# Kinds of EspoCRM copies of a shared party, with their weights.
PERSON_VARIANTS = (("exact", 50), ("spelling", 12), ("title_in_name", 4), ("no_dob", 6), ("swapped", 3),
                   ("typo", 5), ("contact_changed", 12), ("address_changed", 6), ("unrecognisable", 2))
COMPANY_VARIANTS = (("exact", 50), ("form_spelling", 20), ("register_spelling", 10), ("no_register", 10),
                    ("contact_changed", 10))
COMPANY_SHARE = 0.3
ADVOWARE_TWICE_SHARE = 0.004  # shared parties that exist twice in Advoware: ambiguous


@dataclass
class PartySets:
    advoware: list[dict[str, Any]]
    espocrm: list[dict[str, Any]]
    truth: list[tuple[int, int]]  # (EspoCRM index, Advoware index) of every true pair
    variants: Counter[str] = field(default_factory=Counter)


def _fold(text: str) -> str:
    t = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    return "".join(c for c in t if c.isalnum())


def _umlaut_spelling(text: str) -> str:
    return (text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("Ä", "Ae")
            .replace("Ö", "Oe").replace("Ü", "Ue").replace("ß", "ss"))


class _Maker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.people: set[tuple[str, str, str]] = set()
        self.mails: set[str] = set()
        self.companies: set[str] = set()
        self.registers: set[str] = set()

    def _address(self) -> dict[str, Any]:
        plz, city = self.rng.choice(CITIES)
        return {"strasse": f"{self.rng.choice(STREETS)} {self.rng.randint(1, 180)}", "plz": plz, "ort": city,
                "land": "Deutschland"}

    def _phone(self) -> str:
        return f"+49 {self.rng.randint(30, 999)} {self.rng.randint(100000, 9999999)}"

    def _mail(self, local: str) -> str:
        base = _fold(local.replace(" ", ".")) or "info"
        mail, n = f"{base}@{self.rng.choice(MAIL_DOMAINS)}", 1
        while mail in self.mails:
            n += 1
            mail = f"{base}{n}@{mail.split('@')[1]}"
        self.mails.add(mail)
        return mail

    def person(self) -> dict[str, Any]:
        while True:
            female = self.rng.random() < 0.5
            first = self.rng.choice(FIRST_F if female else FIRST_M)
            family = self.rng.choice(FAMILY)
            if self.rng.random() < 0.08:
                family = f"{family}-{self.rng.choice(FAMILY)}"
            dob = date(1935, 1, 1) + timedelta(days=self.rng.randint(0, 70 * 365))
            key = (_fold(family), _fold(first), dob.isoformat())
            swapped = (key[1], key[0], key[2])
            if key not in self.people and swapped not in self.people:
                self.people.update((key, swapped))
                break
        obj = {"name": family, "vorname": first, "anrede": "Frau" if female else "Herr",
               "titel": self.rng.choice(TITLES) if self.rng.random() < 0.1 else None,
               "rechtsform": "natürliche Person", "geburtsdatum": f"{dob.isoformat()}T00:00:00",
               "email": self._mail(f"{first}.{family}") if self.rng.random() < 0.8 else None,
               "telefon": self._phone() if self.rng.random() < 0.7 else None,
               "kurzname": _fold(family).upper()[:10], **self._address()}
        return obj

    def company(self) -> dict[str, Any]:
        while True:
            family, branch = self.rng.choice(FAMILY), self.rng.choice(BRANCHES)
            base = self.rng.choice((f"{branch} {family}", f"{family} {branch}",
                                    f"{family} & {self.rng.choice(FAMILY)} {branch}",
                                    f"{branch}technik {family} & Söhne", f"{self.rng.choice(CITIES)[1]}er {branch}"))
            if _fold(base) not in self.companies:
                self.companies.add(_fold(base))
                break
        form = self.rng.choice(FORMS)
        registered = form not in ("e.V.",) and self.rng.random() < 0.85
        reg = court = None
        if registered:
            kind = "HRA" if form in ("e.K.", "KG", "OHG", "GmbH & Co. KG") else "HRB"
            while True:
                reg = f"{kind} {self.rng.randint(1000, 299999)}"
                court = self.rng.choice(COURTS)
                if f"{reg}|{court}" not in self.registers:
                    self.registers.add(f"{reg}|{court}")
                    break
        return {"name": f"{base} {form}", "vorname": None, "anrede": "Firma", "rechtsform": form,
                "handelsRegisterNummer": reg, "registergericht": f"Amtsgericht {court}" if court else None,
                "email": self._mail(f"info.{base}"), "telefon": self._phone(),
                "kurzname": _fold(base).upper()[:10], **self._address()}


def to_espocrm(obj: dict[str, Any]) -> dict[str, Any]:
    """An Advoware Beteiligter as EspoCRM fields (the same party entered in EspoCRM)."""
    dob = obj.get("geburtsdatum")
    return {"salutationName": obj.get("anrede"), "firstName": obj.get("vorname"), "lastName": obj["name"],
            "titel": obj.get("titel"), "rechtsform": obj.get("rechtsform"),
            "dateOfBirth": dob[:10] if dob else None,
            "handelsregisterNummer": obj.get("handelsRegisterNummer"),
            "registergericht": obj.get("registergericht"), "emailAddress": obj.get("email"),
            "phoneNumber": obj.get("telefon"), "addressStreet": obj.get("strasse"),
            "addressPostalCode": obj.get("plz"), "addressCity": obj.get("ort"),
            "addressCountry": obj.get("land")}


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word) - 1) if len(word) > 2 else 0
    if rng.random() < 0.5 and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # neighbours swapped
    return word[:i] + word[i + 1:]  # a letter dropped


def _person_variant(m: _Maker, rec: dict[str, Any], kind: str) -> None:
    rng = m.rng
    if kind == "spelling":
        rec["lastName"] = rng.choice((_umlaut_spelling(rec["lastName"]), rec["lastName"].upper(),
                                      f"  {rec['lastName'].lower()} "))
    elif kind == "title_in_name":
        rec["firstName"], rec["titel"] = f"{rec['titel'] or 'Dr.'} {rec['firstName']}", None
    elif kind == "no_dob":
        rec["dateOfBirth"] = None
    elif kind == "swapped":
        rec["firstName"], rec["lastName"] = rec["lastName"], rec["firstName"]
    elif kind in ("typo", "unrecognisable"):
        rec["lastName"] = _typo(rng, rec["lastName"])
        if kind == "unrecognisable":
            rec["dateOfBirth"] = None
    elif kind == "contact_changed":
        rec["phoneNumber"] = m._phone()  # noqa: SLF001
    elif kind == "address_changed":
        rec["addressStreet"] = f"{rng.choice(STREETS)} {rng.randint(1, 180)}"


def _company_variant(m: _Maker, rec: dict[str, Any], kind: str) -> None:
    form = rec["rechtsform"]
    if kind == "form_spelling" and form in FORM_VARIANTS:
        rec["lastName"] = rec["lastName"][: -len(form)] + FORM_VARIANTS[form]
    elif kind == "register_spelling" and rec["handelsregisterNummer"]:
        rec["handelsregisterNummer"] = rec["handelsregisterNummer"].replace(" ", "")
        rec["registergericht"] = str(rec["registergericht"]).replace("Amtsgericht", "AG")
    elif kind == "no_register":
        rec["handelsregisterNummer"] = rec["registergericht"] = None
    elif kind == "contact_changed":
        rec["phoneNumber"] = m._phone()  # noqa: SLF001


def _pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def generate(seed: int = 1, *, advoware: int = 20000, espocrm: int = 10000, overlap: int = 6000) -> PartySets:
    """Both sets and the true pairs; the same seed gives the same data."""
    if not 0 <= overlap <= min(advoware, espocrm):
        raise ValueError("overlap must be between 0 and the smaller set's size")
    m = _Maker(seed)
    make = lambda: m.company() if m.rng.random() < COMPANY_SHARE else m.person()  # noqa: E731
    n_twice = int(overlap * ADVOWARE_TWICE_SHARE)
    advo = [make() for _ in range(advoware - n_twice)]
    espo: list[dict[str, Any]] = []
    truth: list[tuple[int, int]] = []
    variants: Counter[str] = Counter()
    shared = m.rng.sample(range(len(advo)), overlap)
    for advo_index in shared:
        rec = to_espocrm(advo[advo_index])
        company = rec["salutationName"] == "Firma"
        kind = _pick(m.rng, COMPANY_VARIANTS if company else PERSON_VARIANTS)
        if kind in ("no_dob", "typo") and not rec["emailAddress"]:
            kind = "unrecognisable" if kind == "typo" else "exact"  # only an e-mail could tell them
        (_company_variant if company else _person_variant)(m, rec, kind)
        variants[("company_" if company else "person_") + kind] += 1
        truth.append((len(espo), advo_index))
        espo.append(rec)
    twice = shared[:n_twice]
    for advo_index in twice:  # entered twice in Advoware over the years; the later copy is a bit off
        copy = dict(advo[advo_index], kurzname=None, telefon=None)
        advo.append(copy)
        variants["advoware_twice"] += 1
    espo.extend(to_espocrm(make()) for _ in range(espocrm - overlap))
    order = list(range(len(espo)))
    m.rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    return PartySets(advo, [espo[i] for i in order], sorted((position[e], a) for e, a in truth), variants)
