"""Linking two existing records (issue 11): which values differ, what base the first sync starts from,
and which values only Advoware has. Pure, no I/O; used by ``match --apply`` and the create check."""

from __future__ import annotations

from domain.beteiligte_mapper import FIELD_GROUP, Canonical
from domain.decision import Mark, fingerprint, fingerprint_value


def differences(espo: Canonical, advo: Canonical) -> list[tuple[str, str | None, str | None]]:
    """Mapped fields whose canonical values differ: (field, EspoCRM value, Advoware value)."""
    return [(f, espo.get(f), advo.get(f)) for f in FIELD_GROUP if espo.get(f) != advo.get(f)]


def first_base(espo: Canonical, advo: Canonical) -> tuple[dict[str, str], dict[str, str]]:
    """The base stored when two existing records are linked, so that the first sync resolves their
    differences: a value only one side has goes to the other side; two different values count as
    changed on both sides, so the group's conflict strategy decides (and a Note reports it)."""
    espo_fp, advo_fp = fingerprint(espo), fingerprint(advo)
    for f, e, a in differences(espo, advo):
        if e is None or a is None:
            espo_fp[f] = advo_fp[f] = fingerprint_value(None)
        else:
            espo_fp[f] = advo_fp[f] = Mark.OWED
    return espo_fp, advo_fp


def fill_from_advoware(espo: Canonical, advo: Canonical) -> Canonical:
    """The values only Advoware has: written to EspoCRM when a pair is linked, so that no value is
    lost when the first sync lets EspoCRM's side of a group win (EspoCRM is the master for stammdaten,
    and an empty EspoCRM field would otherwise empty the Advoware one)."""
    return {f: a for f, e, a in differences(espo, advo) if e is None and a is not None}
