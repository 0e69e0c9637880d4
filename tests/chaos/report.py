"""The end state against the model: :func:`verify` checks every record and both systems as a whole
(no duplicate creates, no orphans, deletes applied) into a :class:`ChaosReport`."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from domain.conflict_policy import ConflictPolicy
from tests.chaos.contract import (
    ADVO_UNMAPPED,
    ESPO_UNMAPPED,
    FIELD_GROUP,
    MAPPED,
    Value,
    advoware_to_canonical,
    espo_to_canonical,
)
from tests.chaos.model import RecordModel, allowed_values


@dataclass
class ChaosReport:
    pairs: int = 0
    agreeing: int = 0
    violations: list[str] = field(default_factory=list)  # lost changes / wrong values
    unmapped_lost: list[str] = field(default_factory=list)
    bad_status: list[str] = field(default_factory=list)  # syncing, failed, permanently_failed, unlinked
    orphans_in_advoware: int = 0  # Advoware records no live or deleted EspoCRM record links to
    duplicates_in_advoware: int = 0  # extra Advoware records for one EspoCRM record (a create done twice)
    deletes_checked: int = 0  # records deleted in EspoCRM whose twin was checked against DELETE_POLICY

    @property
    def convergence(self) -> float:
        return 100.0 * self.agreeing / self.pairs if self.pairs else 100.0

    def ok(self) -> bool:
        return self.agreeing == self.pairs and not (
            self.violations or self.unmapped_lost or self.bad_status
            or self.orphans_in_advoware or self.duplicates_in_advoware)

    def lines(self, limit: int = 15) -> list[str]:
        out = [f"pairs {self.pairs}, agreeing {self.agreeing} ({self.convergence:.2f} %), model violations "
               f"{len(self.violations)}, unmapped lost {len(self.unmapped_lost)}, bad status "
               f"{len(self.bad_status)}, orphan Advoware records {self.orphans_in_advoware} (duplicate creates "
               f"{self.duplicates_in_advoware}), deletes checked {self.deletes_checked}"]
        for what in (self.violations, self.unmapped_lost, self.bad_status):
            out.extend("  " + s for s in what[:limit])
        return out


def check_values(m: RecordModel, values: dict[str, Value], policy: ConflictPolicy, where: str,
                 out: list[str]) -> None:
    """Every mapped field of ``values`` is one the model allows, else a line in ``out``."""
    for f in MAPPED:
        ok = allowed_values(m, f, policy)
        if values[f] not in ok:
            out.append(f"{where}{m.espo_id}/{m.betnr} {f} = {values[f]!r}, expected one of "
                       f"{sorted(map(repr, ok))} (since the last convergence: EspoCRM set "
                       f"{m.espo_edits.get(f, [])}, Advoware set {m.advo_edits.get(f, [])}, "
                       f"cp {m.cp.get(f)!r}, group phases {m.group_phases.get(FIELD_GROUP[f])})")


def check_unmapped(m: RecordModel, rec: dict[str, Any], twin: dict[str, Any] | None, where: str,
                   out: list[str]) -> None:
    """Unmapped fields hold what people last set on their own side."""
    for u in ESPO_UNMAPPED:
        if rec.get(u) != m.espo_unmapped.get(u):
            out.append(f"{where}{m.espo_id} EspoCRM {u}: {rec.get(u)!r} != {m.espo_unmapped.get(u)!r}")
    if twin is None:
        return
    for u in ADVO_UNMAPPED:
        if twin.get(u) != m.advo_unmapped.get(u):
            out.append(f"{where}{m.espo_id} Advoware {m.betnr} {u}: {twin.get(u)!r} != {m.advo_unmapped.get(u)!r}")


def verify(models: dict[str, RecordModel], espo_all: list[dict[str, Any]], advo_all: list[dict[str, Any]],
           policy: ConflictPolicy, report: ChaosReport, *, delete_policy: str = "unlink") -> ChaosReport:
    """Fill ``report`` (which may carry findings of earlier rounds) from both systems' end state."""
    advo = {int(o["betNr"]): o for o in advo_all}
    espo = {r["id"]: r for r in espo_all}
    linked: set[int] = set()
    for m in models.values():
        if m.deleted:
            _verify_deleted(m, espo, advo, delete_policy, report)
            if m.betnr:
                linked.add(m.betnr)
            continue
        rec = espo.get(m.espo_id)
        if rec is None:
            report.violations.append(f"{m.espo_id}: EspoCRM record vanished")
            continue
        betnr = _verify_record(m, rec, advo, policy, report)
        if betnr is not None:
            linked.add(betnr)
    linked |= _twins_of_lost_creates(models, advo, linked, delete_policy, report)
    report.orphans_in_advoware = len(set(advo) - linked)
    tags = Counter(_tag(o.get("name")) for o in advo.values())
    report.duplicates_in_advoware = sum(n - 1 for t, n in tags.items() if t is not None and n > 1)
    return report


def _twins_of_lost_creates(models: dict[str, RecordModel], advo: dict[int, dict[str, Any]], linked: set[int],
                           delete_policy: str, report: ChaosReport) -> set[int]:
    """Beteiligte created for a record deleted before its create's answer came (never linked): kept under
    ``unlink`` like any twin, gone under ``delete``."""
    deleted = {m.tag: m for m in models.values() if m.deleted and not m.betnr}
    twins = {b for b, o in advo.items() if b not in linked and _tag(o.get("name")) in deleted}
    for betnr in sorted(twins):
        report.deletes_checked += 1
        if delete_policy == "delete":
            m = deleted[str(_tag(advo[betnr].get("name")))]
            report.violations.append(f"{m.espo_id}: deleted in EspoCRM, DELETE_POLICY=delete, but Advoware "
                                     f"{betnr} its lost create made still exists")
    return twins


def _verify_deleted(m: RecordModel, espo: dict[str, dict[str, Any]], advo: dict[int, dict[str, Any]],
                    delete_policy: str, report: ChaosReport) -> None:
    """A record a person deleted in EspoCRM: gone there; its twin kept (``unlink``) or gone (``delete``)."""
    if m.espo_id in espo:
        report.bad_status.append(f"{m.espo_id}: deleted by a person but exists again")
    if not m.betnr:
        return
    report.deletes_checked += 1
    twin_exists = m.betnr in advo
    if delete_policy == "delete" and twin_exists:
        report.violations.append(f"{m.espo_id}: deleted in EspoCRM, DELETE_POLICY=delete, but Advoware "
                                 f"{m.betnr} still exists")
    if delete_policy == "unlink" and not twin_exists:
        report.violations.append(f"{m.espo_id}: deleted in EspoCRM, DELETE_POLICY=unlink, but Advoware "
                                 f"{m.betnr} was deleted too")


def _verify_record(m: RecordModel, rec: dict[str, Any], advo: dict[int, dict[str, Any]], policy: ConflictPolicy,
                   report: ChaosReport) -> int | None:
    """One live record against its twin and the model; its betnr, if linked."""
    status = rec.get("syncStatus")
    if status != "clean" or not rec.get("betnr"):
        report.bad_status.append(f"{m.espo_id} betnr={rec.get('betnr')}: status {status}, "
                                 f"error {rec.get('syncErrorMessage')!r}")
    if not rec.get("betnr"):
        check_unmapped(m, rec, None, "end: ", report.unmapped_lost)
        return None
    betnr = int(rec["betnr"])
    m.betnr = betnr
    report.pairs += 1
    twin = advo.get(betnr)
    if twin is None:
        report.violations.append(f"{m.espo_id}: Advoware twin {betnr} missing")
        return betnr
    check_unmapped(m, rec, twin, "end: ", report.unmapped_lost)
    e, a = espo_to_canonical(rec), advoware_to_canonical(twin)
    if e == a:
        report.agreeing += 1
    else:
        report.violations.extend(f"end: {m.espo_id}/{betnr} {f}: disagree EspoCRM {e[f]!r} Advoware {a[f]!r}"
                                 for f in MAPPED if e[f] != a[f])
    check_values(m, e, policy, "end: ", report.violations)
    return betnr


_TAG = re.compile(r"^Müller-(\d{5})-")


def _tag(name: Any) -> str | None:
    """The record tag every last name carries (``Müller-<tag>-<n>``)."""
    mt = _TAG.match(name) if isinstance(name, str) else None
    return mt.group(1) if mt else None
