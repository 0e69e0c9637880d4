"""The people of a chaos run: they create EspoCRM records, edit mapped and unmapped fields on either
side (sometimes the same field on both: a conflict; sometimes clearing one), and delete records in
EspoCRM. Every edit is written into the record's :class:`~tests.chaos.model.RecordModel`."""

from __future__ import annotations

import random
from typing import Any

from tests.chaos.config import ChaosConfig, ChaosStats
from tests.chaos.contract import (
    ADVO_UNMAPPED,
    ANREDEN,
    ESPO_UNMAPPED,
    FIELD_GROUP,
    GROUP_FIELDS,
    KIND,
    MAPPED,
    RECHTSFORMEN,
    REQUIRED,
    TO_ADVO,
    Value,
    advoware_to_canonical,
    espo_to_canonical,
)
from tests.chaos.model import RecordModel
from tests.testbed import Testbed


class People:
    """Edits made as people would, through the simulators' direct methods (uncounted by the API)."""

    def __init__(self, tb: Testbed, cfg: ChaosConfig, rng: random.Random, stats: ChaosStats) -> None:
        self.tb, self.cfg, self.rng, self.stats = tb, cfg, rng, stats
        self.models: dict[str, RecordModel] = {}
        self._n = 0
        self.phase = 0  # quiet phases: nothing in flight, edits made in one are seen by one sync
        self.quiet = True

    # -- values --------------------------------------------------------------------------------
    def _value(self, f: str, tag: str) -> str:
        self._n += 1
        rng, n = self.rng, self._n
        if KIND[f] == "date":
            return f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if f == "salutationName":
            return rng.choice(ANREDEN)
        if f == "rechtsform":
            return rng.choice(RECHTSFORMEN)
        return {"lastName": f"Müller-{tag}-{n}", "emailAddress": f"p{tag}.{n}@example.org",
                "phoneNumber": f"+49 30 {tag}{n}", "addressCity": f"Köln {tag}/{n}",
                "addressStreet": f"Hauptstraße {n} ({tag})"}.get(f, f"{f[:6]}-{tag}-{n}")

    def _new_value(self, f: str, m: RecordModel, current: Value) -> Value:
        """A value that really changes the field and is not its convergence-point value either (a change
        back to the base would be no change to the sync, and the model would be wrong)."""
        avoid = {current, m.cp.get(f)}
        if f not in REQUIRED and None not in avoid and self.rng.random() < self.cfg.clear_rate:
            self.stats.cleared_fields += 1
            return None
        while True:
            v = self._value(f, m.tag)
            if v not in avoid:
                return v

    # -- people --------------------------------------------------------------------------------
    def create(self) -> None:
        tag = f"{len(self.models):05d}"
        data: dict[str, Any] = {f: self._value(f, tag) for f in MAPPED if f == "lastName" or self.rng.random() < 0.8}
        data["description"] = f"Notiz {tag} äöü/ß"
        if self.rng.random() < 0.5:
            data["beteiligtenRolle"] = self.rng.choice(("Mandant", "Gegner", "Zeuge"))
        rec = self.tb.espo.seed(**data)
        m = RecordModel(rec["id"], tag, espo_to_canonical(rec),
                        espo_unmapped={k: rec.get(k) for k in ESPO_UNMAPPED})
        self.models[rec["id"]] = m
        self.stats.records_created += 1

    def _pick_fields(self) -> list[str]:
        return self.rng.sample(MAPPED, self.rng.choice((1, 1, 1, 2, 2, 3)))

    def _phase_of(self, m: RecordModel, fields: list[str]) -> None:
        for f in fields:
            m.group_phases.setdefault(FIELD_GROUP[f], set()).add(self.phase if self.quiet else -1)

    def espo_edit(self, m: RecordModel, fields: list[str] | None = None) -> None:
        fields = fields or self._pick_fields()
        current = self.tb.espo.get(m.espo_id)
        if current is None:
            return
        now = espo_to_canonical(current)
        changes: dict[str, Any] = {f: self._new_value(f, m, now[f]) for f in fields}
        if self.rng.random() < self.cfg.unmapped_rate:
            u = self.rng.choice(ESPO_UNMAPPED)
            changes[u] = f"{u}-{m.tag}-{self._next()}"
            self.stats.unmapped_edits += 1
        rec = self.tb.espo.user_edit(m.espo_id, **changes)
        canon = espo_to_canonical(rec)
        for f in changes:
            if f in ESPO_UNMAPPED:
                m.espo_unmapped[f] = rec.get(f)
            else:
                m.espo_edits.setdefault(f, []).append(canon[f])
                self.stats.espo_field_edits += 1
        self._phase_of(m, fields)
        self.stats.espo_edits += 1

    def advo_edit(self, m: RecordModel, fields: list[str] | None = None) -> bool:
        if m.betnr is None:
            rec = self.tb.espo.get(m.espo_id)
            m.betnr = rec.get("betnr") if rec else None
        if m.betnr is None:
            return False
        current = self.tb.advo.get(m.betnr)
        if current is None:
            return False
        now = advoware_to_canonical(current)
        fields = fields or self._pick_fields()
        changes: dict[str, Any] = {}
        for f in fields:
            v = self._new_value(f, m, now[f])
            changes[TO_ADVO[f]] = f"{v}T00:00:00" if v is not None and KIND[f] == "date" else v
        if self.rng.random() < self.cfg.unmapped_rate:
            u = self.rng.choice(ADVO_UNMAPPED)
            changes[u] = f"{u}-{m.tag}-{self._next()}"
            self.stats.unmapped_edits += 1
        try:
            obj = self.tb.advo.edit(m.betnr, **changes)
        except KeyError:
            return False
        canon = advoware_to_canonical(obj)
        for espo_f, advo_f in TO_ADVO.items():
            if advo_f in changes:
                m.advo_edits.setdefault(espo_f, []).append(canon[espo_f])
                self.stats.advo_field_edits += 1
        for u in ADVO_UNMAPPED:
            if u in changes:
                m.advo_unmapped[u] = obj.get(u)
        self._phase_of(m, fields)
        self.stats.advo_edits += 1
        return True

    def _next(self) -> int:
        self._n += 1
        return self._n

    def _live(self) -> list[RecordModel]:
        return [m for m in self.models.values() if not m.deleted]

    def edit_some(self, share: float) -> None:
        """Random edits on live records; ``share`` of one round's edit budget."""
        cfg, rng = self.cfg, self.rng
        for m in self._live():
            n = _poisson(rng, cfg.edit_rate * share)
            for _ in range(n):
                if m.deleted:
                    break
                if rng.random() < cfg.advo_share and self.advo_edit(m):
                    continue
                self.espo_edit(m)

    def conflicts_and_deletes(self) -> None:
        cfg, rng = self.cfg, self.rng
        for m in self._live():
            if rng.random() < cfg.conflict_rate:
                f = rng.choice(MAPPED)
                if rng.random() < 0.5:  # the same field on both sides
                    if self.advo_edit(m, [f]):
                        self.espo_edit(m, [f])
                        self.stats.conflicts += 1
                else:  # two fields of one group, one per side
                    g = rng.choice(GROUP_FIELDS[FIELD_GROUP[f]])
                    if g != f and self.advo_edit(m, [g]):
                        self.espo_edit(m, [f])
                        self.stats.group_conflicts += 1
            if rng.random() < cfg.delete_rate:
                self._delete(m)

    def delete_a_linked_record(self) -> None:
        """Every run deletes at least one record that is linked by now, so the delete policy is always
        exercised (whether a randomly deleted record was linked yet depends on timing)."""
        linked = [m for m in self._live() if (self.tb.espo.get(m.espo_id) or {}).get("betnr")]
        if linked:
            self._delete(self.rng.choice(linked))

    def _delete(self, m: RecordModel) -> None:
        rec = self.tb.espo.get(m.espo_id)
        m.betnr = rec.get("betnr") if rec else m.betnr
        self.tb.espo.user_delete(m.espo_id)
        m.deleted = True
        self.stats.records_deleted += 1


def _poisson(rng: random.Random, lam: float) -> int:
    """Small Poisson sample (Knuth), enough for rates below ~5."""
    if lam <= 0:
        return 0
    threshold, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1
