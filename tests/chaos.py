"""Randomized convergence workload over the testbed: people edit both systems, the network misbehaves.

One seeded :class:`random.Random` drives everything, so a failing seed replays the same workload (the
service's own timing is not seeded: which sync runs first under load may differ between runs).

Per round:
- people create EspoCRM records (``espo.seed``), edit mapped and unmapped fields on either side
  (``espo.user_edit``; ``advo.edit`` only on linked records), sometimes the same field on both sides
  in one round (a conflict), sometimes clear a field or delete a record in EspoCRM;
- random API faults on both simulators (500, 503, 429 with a small ``Retry-After``, a few answers
  delayed past the client's timeout that are still applied, expired Advoware tokens);
- EspoCRM's webhook queue is taken over (:class:`WebhookChaos`): every queued event is re-batched,
  signed with the subscription's real secret like EspoCRM does, and POSTed to the service's webhook
  URLs by us: batches are lost, duplicated, shuffled, held back to a later round, and sent several
  at a time, while people keep editing and (sometimes) a sync check runs;
- after the round settles, every pair that agrees and is ``clean`` is a *convergence point* for the
  model: the expectations of later rounds start from its values.

At the end the faults stop, leftovers are delivered (with loss), the clock moves 10 hours (retries
due), ONE sync check runs, and :meth:`ChaosRun.verify` checks every record against the model
(:func:`allowed_values`); a second sync check must write nothing.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from domain.beteiligte_mapper import ADVOWARE_UNMAPPED_WRITABLE
from domain.conflict_policy import ConflictPolicy
from simulators.common import FaultRule
from simulators.espocrm.webhooks import php_json_encode, signature_header
from tests.testbed import Testbed

ESPO_UNMAPPED: tuple[str, ...] = ("description", "beteiligtenRolle")
ADVO_UNMAPPED: tuple[str, ...] = ADVOWARE_UNMAPPED_WRITABLE
# The service contract's field table, copied here on purpose: the model reads both systems through
# this copy, never through the production mapper, so a field the mapper drops or maps wrongly shows up
# as a disagreement. (EspoCRM field, Advoware field, group, kind)
CONTRACT: tuple[tuple[str, str, str, str], ...] = (
    ("lastName", "name", "stammdaten", "str"), ("firstName", "vorname", "stammdaten", "str"),
    ("salutationName", "anrede", "stammdaten", "str"), ("titel", "titel", "stammdaten", "str"),
    ("rechtsform", "rechtsform", "stammdaten", "str"), ("dateOfBirth", "geburtsdatum", "stammdaten", "date"),
    ("handelsregisterNummer", "handelsRegisterNummer", "stammdaten", "str"),
    ("registergericht", "registergericht", "stammdaten", "str"),
    ("emailAddress", "email", "kontakt", "str"), ("phoneNumber", "telefon", "kontakt", "phone"),
    ("addressStreet", "strasse", "adresse", "str"), ("addressPostalCode", "plz", "adresse", "str"),
    ("addressCity", "ort", "adresse", "str"), ("addressCountry", "land", "adresse", "str"),
)
MAPPED: tuple[str, ...] = tuple(e for e, _, _, _ in CONTRACT)
TO_ADVO: dict[str, str] = {e: a for e, a, _, _ in CONTRACT}
KIND: dict[str, str] = {e: k for e, _, _, k in CONTRACT}
FIELD_GROUP: dict[str, str] = {e: g for e, _, g, _ in CONTRACT}
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    g: tuple(e for e, _, gg, _ in CONTRACT if gg == g) for g in sorted({g for _, _, g, _ in CONTRACT})
}
_PHONE_SEPARATORS = re.compile(r"[\s\-()/.]")


def _canon(value: Any, kind: str) -> Value:
    """The model's own reading of a value: blank is empty, dates without time, phones without separators."""
    if value is None or not str(value).strip():
        return None
    text = str(value)
    if kind == "date":
        return text[:10]
    return _PHONE_SEPARATORS.sub("", text) if kind == "phone" else text


def espo_to_canonical(rec: dict[str, Any]) -> dict[str, Value]:
    return {e: _canon(rec.get(e), k) for e, _, _, k in CONTRACT}


def advoware_to_canonical(obj: dict[str, Any]) -> dict[str, Value]:
    return {e: _canon(obj.get(a), k) for e, a, _, k in CONTRACT}
REQUIRED = frozenset({"lastName"})  # never cleared: both systems require it
ANREDEN = ("Herr", "Frau", "Divers", "Firma")
RECHTSFORMEN = ("natürliche Person", "GmbH", "AG", "KG", "e.V.", "GbR")

Value = str | None


@dataclass
class ChaosConfig:
    records: int = 40
    rounds: int = 4
    seed: int = 1
    create_first_share: float = 0.75  # of the records created in round 0, the rest spread over rounds
    edit_rate: float = 0.6  # expected edit operations per live record per round
    advo_share: float = 0.4  # of those, made in Advoware (linked records only)
    conflict_rate: float = 0.08  # per live linked record and round: same field edited on both sides
    clear_rate: float = 0.04  # an edited mapped field is set to null
    unmapped_rate: float = 0.4  # an edit also touches an unmapped field
    delete_rate: float = 0.015  # per live record and round: deleted in EspoCRM
    during_share: float = 0.25  # of the edits, made while deliveries and syncs are running
    # webhooks
    loss: float = 0.15
    duplicate: float = 0.15
    reorder: float = 0.3
    hold_back: float = 0.1
    max_chunk: int = 6
    parallel_posts: int = 4
    # API faults
    fault_rate: float = 0.03  # per request, per kind (500, 503, 429) and simulator
    timeouts_per_round: int = 1  # answers delayed past the client's timeout (still applied)
    timeout_delay: float = 1.5  # seconds; must exceed the testbed's http_timeout
    token_expiry_rate: float = 0.5  # per round: all Advoware tokens expire
    sync_check_rate: float = 0.5  # per round: a sync check runs during the chaos
    final_edits: float = 0.3  # share of a round's edits made after the last round, just before the end
    round_clock_s: float = 900.0  # the fake clock moves this much per round (the cron interval)
    drain_s: float = 120.0


@dataclass
class ChaosStats:
    records_created: int = 0
    records_deleted: int = 0
    espo_edits: int = 0
    advo_edits: int = 0
    espo_field_edits: int = 0
    advo_field_edits: int = 0
    unmapped_edits: int = 0
    cleared_fields: int = 0
    conflicts: int = 0
    group_conflicts: int = 0
    concurrent_edits: int = 0
    webhook_events: int = 0
    batches: int = 0
    batches_posted: int = 0
    batches_lost: int = 0
    batches_duplicated: int = 0
    batches_reordered: int = 0
    batches_held_back: int = 0
    webhook_answers: Counter[int] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    token_expiries: int = 0
    sync_checks_during: int = 0
    sync_checks_failed: int = 0
    convergence_points: int = 0
    drain_timeouts: int = 0
    writes_chaos: int = 0
    writes_final_check: int = 0
    writes_second_check: int = -1
    api_calls_chaos: int = 0
    seconds_chaos: float = 0.0
    seconds_final: float = 0.0

    def lines(self) -> list[str]:
        f = self.faults_injected
        return [
            f"records created {self.records_created}, deleted {self.records_deleted}",
            f"edits: EspoCRM {self.espo_edits} ({self.espo_field_edits} fields), Advoware {self.advo_edits} "
            f"({self.advo_field_edits} fields), unmapped {self.unmapped_edits}, cleared {self.cleared_fields}, "
            f"conflicts {self.conflicts} same field + {self.group_conflicts} same group, "
            f"made during syncs {self.concurrent_edits}",
            f"webhooks: {self.webhook_events} events in {self.batches} batches; posted {self.batches_posted}, "
            f"lost {self.batches_lost}, duplicated {self.batches_duplicated}, reordered {self.batches_reordered} "
            f"(held back {self.batches_held_back}); answers {dict(sorted(self.webhook_answers.items()))}",
            f"faults injected {sum(f.values())}: {dict(sorted(f.items()))}; token expiries {self.token_expiries}",
            f"sync checks during chaos {self.sync_checks_during} (failed {self.sync_checks_failed}), "
            f"convergence points {self.convergence_points}, drain timeouts {self.drain_timeouts}",
            f"writes: chaos {self.writes_chaos} (api calls {self.api_calls_chaos}), final sync check "
            f"{self.writes_final_check}, second sync check {self.writes_second_check}",
            f"time: chaos {self.seconds_chaos:.1f} s, final {self.seconds_final:.1f} s",
        ]


@dataclass
class RecordModel:
    """What people did to one record since its last convergence point (``cp``)."""

    espo_id: str
    tag: str
    cp: dict[str, Value]  # canonical mapped values at the last convergence point (creation values before)
    espo_edits: dict[str, list[Value]] = field(default_factory=dict)
    advo_edits: dict[str, list[Value]] = field(default_factory=dict)
    # per field group: the phases its edits since ``cp`` were made in (-1: while syncs were running)
    group_phases: dict[str, set[int]] = field(default_factory=dict)
    anchored: bool = False  # ``cp`` was observed (both sides clean and equal), not just the creation
    espo_unmapped: dict[str, Value] = field(default_factory=dict)
    advo_unmapped: dict[str, Value] = field(default_factory=lambda: dict.fromkeys(ADVO_UNMAPPED))
    betnr: int | None = None
    deleted: bool = False

    def converged(self, values: dict[str, Value]) -> None:
        self.cp = dict(values)
        self.espo_edits.clear()
        self.advo_edits.clear()
        self.group_phases.clear()
        self.anchored = True


def allowed_values(m: RecordModel, f: str, policy: ConflictPolicy) -> set[Value]:
    """Every value field ``f`` may hold once both sides agree, per the edits since the last convergence
    point and the group's strategy. Timing-independent (which sync saw which edit is not known):

    - nobody edited ``f``: the convergence-point value;
    - one side edited ``f``: that side's LAST value, unless the other side also edited the same group
      and the group's strategy may let the other side win (then ``f`` may also be reset to a value it
      had on the winning side: the convergence point or one of the editing side's earlier values);
    - both sides edited ``f``: ``field_merge`` -> the last value of either side; a group strategy ->
      any value a person set since the convergence point, or the convergence point;
    - exact, when both sides edited the group and all those edits fall into one quiet phase (nothing
      was syncing in between, so one sync saw them all): the strategy's winner, per group or per field.
    """
    group = FIELD_GROUP[f]
    gp = policy.for_group(group)
    strategy = gp.strategy
    e, a = m.espo_edits.get(f, []), m.advo_edits.get(f, [])
    eg = any(m.espo_edits.get(x) for x in GROUP_FIELDS[group])
    ag = any(m.advo_edits.get(x) for x in GROUP_FIELDS[group])
    cp = m.cp.get(f)
    if not e and not a:
        return {cp}
    phases = m.group_phases.get(group, set())
    if m.anchored and eg and ag and len(phases) == 1 and min(phases) > 0:
        # A pure conflict: every edit of this group since the convergence point was made while nothing
        # was syncing, so the first sync after them saw them all against the base of ``cp``.
        e_cur, a_cur = (e[-1] if e else cp), (a[-1] if a else cp)
        winner = gp.strategy
        if winner == "field_merge":
            if not (e and a):
                return {e_cur if e else a_cur}
            winner = gp.tiebreak
        return {"espocrm_wins": {e_cur}, "advoware_wins": {a_cur}}.get(winner, {e_cur, a_cur})
    if e and not a:
        return {e[-1]} if strategy in ("espocrm_wins", "field_merge") or not ag else {cp, *e}
    if a and not e:
        return {a[-1]} if strategy in ("advoware_wins", "field_merge") or not eg else {cp, *a}
    if strategy == "field_merge":
        return {e[-1], a[-1]}
    return {cp, *e, *a}


@dataclass
class _Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    items: int


class WebhookChaos:
    """Takes over EspoCRM's webhook queue and delivers it badly, with EspoCRM's real signatures."""

    def __init__(self, tb: Testbed, rng: random.Random, cfg: ChaosConfig, stats: ChaosStats) -> None:
        self.tb, self.rng, self.cfg, self.stats = tb, rng, cfg, stats
        self.held: list[_Delivery] = []

    def capture(self) -> list[_Delivery]:
        """Everything EspoCRM has queued now, re-batched into chunks of 1..max_chunk and signed."""
        # The simulator's job would POST these itself; we take them instead.
        per_hook: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for record, items in self.tb.espo.take_webhook_events():
            per_hook.setdefault(record["id"], (record, []))[1].extend(items)
        out: list[_Delivery] = []
        for record, items in per_hook.values():
            self.stats.webhook_events += len(items)
            i = 0
            while i < len(items):
                n = self.rng.randint(1, self.cfg.max_chunk)
                chunk = items[i:i + n]
                i += n
                body = php_json_encode(chunk)
                headers = {"Content-Type": "application/json",
                           "Signature": signature_header(record["id"], record["secretKey"], body)}
                out.append(_Delivery(record["url"], body, headers, len(chunk)))
        self.stats.batches += len(out)
        return out

    def plan(self, fresh: list[_Delivery], *, final: bool = False) -> list[_Delivery]:
        """Loss, duplication, hold-back (delivered a round later) and reordering of one delivery run."""
        cfg, rng, st = self.cfg, self.rng, self.stats
        keyed: list[tuple[float, _Delivery]] = []
        for d in self.held:  # late arrivals, mixed in anywhere
            keyed.append((rng.uniform(0, len(fresh) + 1), d))
        self.held = []
        for i, d in enumerate(fresh):
            if rng.random() < cfg.loss:
                st.batches_lost += 1
                continue
            if not final and rng.random() < cfg.hold_back:
                self.held.append(d)
                st.batches_held_back += 1
                st.batches_reordered += 1
                continue
            key = float(i)
            if rng.random() < cfg.reorder:
                key = rng.uniform(0, len(fresh))
                st.batches_reordered += 1
            keyed.append((key, d))
            if rng.random() < cfg.duplicate:
                st.batches_duplicated += 1
                keyed.append((key + rng.uniform(0, 5), d))
        keyed.sort(key=lambda kd: kd[0])
        return [d for _, d in keyed]

    async def post(self, deliveries: list[_Delivery]) -> None:
        sem = asyncio.Semaphore(self.cfg.parallel_posts)
        async with httpx.AsyncClient(timeout=30.0) as client:

            async def one(d: _Delivery) -> None:
                async with sem:
                    try:
                        resp = await client.post(d.url, content=d.body, headers=d.headers)
                        status = resp.status_code
                    except httpx.HTTPError:
                        status = 0
                    self.stats.webhook_answers[status] += 1
                    self.stats.batches_posted += 1

            tasks = []
            for d in deliveries:  # started in order; several in flight at once
                tasks.append(asyncio.create_task(one(d)))
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)


@dataclass
class ChaosReport:
    pairs: int = 0
    agreeing: int = 0
    violations: list[str] = field(default_factory=list)  # lost changes / wrong values
    unmapped_lost: list[str] = field(default_factory=list)
    bad_status: list[str] = field(default_factory=list)  # syncing, failed, permanently_failed, unlinked
    orphans_in_advoware: int = 0  # Advoware records no live or deleted EspoCRM record links to
    duplicates_in_advoware: int = 0  # extra Advoware records for one EspoCRM record (a create done twice)

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
               f"{self.duplicates_in_advoware})"]
        for what in (self.violations, self.unmapped_lost, self.bad_status):
            out.extend("  " + s for s in what[:limit])
        return out


class ChaosRun:
    def __init__(self, tb: Testbed, cfg: ChaosConfig, policy: ConflictPolicy | None = None) -> None:
        self.tb = tb
        self.cfg = cfg
        self.policy = policy or tb.services.policy
        self.rng = random.Random(cfg.seed)
        self.stats = ChaosStats()
        self.hooks = WebhookChaos(tb, self.rng, cfg, self.stats)
        self.models: dict[str, RecordModel] = {}
        self._n = 0
        self.phase = 0  # quiet phases: nothing in flight, edits made in one are seen by one sync
        self.quiet = True
        self._fault_rules: list[tuple[str, FaultRule, int]] = []
        self.round_no = 0
        self.violations: list[str] = []  # found at intermediate convergence points
        self.unmapped_lost: list[str] = []

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
                rec = self.tb.espo.get(m.espo_id)
                m.betnr = rec.get("betnr") if rec else m.betnr
                self.tb.espo.user_delete(m.espo_id)
                m.deleted = True
                self.stats.records_deleted += 1

    # -- faults --------------------------------------------------------------------------------
    def faults_on(self) -> None:
        cfg, rng = self.cfg, self.rng
        p = cfg.fault_rate
        big = 10**9
        for name, sim in (("espocrm", self.tb.espo), ("advoware", self.tb.advo)):
            path = r"/CBeteiligte" if name == "espocrm" else r"/advonet/"
            kinds: list[tuple[str, dict[str, Any]]] = [
                ("500", {"status": 500}),
                ("503", {"status": 503, "retry_after": rng.choice((0, 1))}),
                ("429", {"status": 429, "retry_after": rng.choice((0, 1))}),
            ]
            for kind, kw in kinds:
                rule = sim.faults.add(path=path, probability=p, times=big, **kw)
                self._fault_rules.append((f"{name} {kind}", rule, big))
            for _ in range(cfg.timeouts_per_round):
                method = rng.choice(("GET", "PUT", "POST")) if name == "advoware" else rng.choice(("GET", "PUT"))
                # a write that times out is applied all the same (lose_answer): the case that would
                # create twice; a read that times out is simply slow
                rule = sim.faults.add(method=method, path=path, delay=cfg.timeout_delay, probability=0.02, times=1,
                                      lose_answer=method != "GET")
                self._fault_rules.append((f"{name} timeout", rule, 1))
        if rng.random() < cfg.token_expiry_rate:
            self.tb.advo.expire_tokens()
            self.stats.token_expiries += 1

    def faults_off(self) -> None:
        self.tb.espo.faults.clear()
        self.tb.advo.faults.clear()
        for kind, rule, budget in self._fault_rules:
            hits = budget - (rule.times or 0)
            if hits:
                self.stats.faults_injected[kind] += hits
        self._fault_rules = []

    # -- rounds --------------------------------------------------------------------------------
    async def _sync_check_during(self) -> None:
        self.stats.sync_checks_during += 1
        try:
            await self.tb.host.run_cron("beteiligte_sync_cron")
        except Exception:  # noqa: BLE001 - a fault on the list endpoints: the check is retried next time
            self.stats.sync_checks_failed += 1

    async def round(self, r: int) -> None:
        cfg, rng = self.cfg, self.rng
        self.round_no = r
        tb = self.tb
        first = int(cfg.records * cfg.create_first_share) if cfg.rounds > 1 else cfg.records
        rest, later = cfg.records - first, max(1, cfg.rounds - 1)
        creates = first if r == 0 else rest // later + (rest % later if r == cfg.rounds - 1 else 0)
        self.phase += 1
        self.quiet = True
        self.faults_on()
        for _ in range(creates):
            self.create()
        self.edit_some(1.0 - cfg.during_share)
        self.conflicts_and_deletes()
        deliveries = self.hooks.plan(self.hooks.capture())
        self.quiet = False
        background = [asyncio.create_task(self.hooks.post(deliveries))]
        if rng.random() < cfg.sync_check_rate:
            background.append(asyncio.create_task(self._sync_check_during()))
        # people keep working while webhooks and syncs are in flight
        before = self.stats.espo_edits + self.stats.advo_edits
        for _ in range(4):
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            self.edit_some(cfg.during_share / 4)
        self.stats.concurrent_edits += self.stats.espo_edits + self.stats.advo_edits - before
        await asyncio.gather(*background)
        if not await tb.host.drain(cfg.drain_s):
            self.stats.drain_timeouts += 1
        self.faults_off()
        if await tb.host.drain(cfg.drain_s):
            self.observe()
        else:
            self.stats.drain_timeouts += 1
        tb.clock.advance(cfg.round_clock_s)

    def observe(self) -> None:
        """Records that are clean and agree on every mapped field are convergence points of the model."""
        advo = {int(o["betNr"]): o for o in self.tb.advo.all()}
        for rec in self.tb.espo.all():
            m = self.models.get(rec["id"])
            if m is None or m.deleted or not rec.get("betnr") or rec.get("syncStatus") != "clean":
                continue
            m.betnr = int(rec["betnr"])
            twin = advo.get(m.betnr)
            if twin is None:
                continue
            self._check_unmapped(m, rec, twin, f"round {self.round_no}: ", self.unmapped_lost)
            e, a = espo_to_canonical(rec), advoware_to_canonical(twin)
            if e == a:
                # a converged pair must already honour the model (a lost change would be lost for good)
                self._check_values(m, e, f"round {self.round_no}: ", self.violations)
                m.converged(e)
                self.stats.convergence_points += 1

    def _check_values(self, m: RecordModel, values: dict[str, Value], where: str, out: list[str]) -> None:
        for f in MAPPED:
            ok = allowed_values(m, f, self.policy)
            if values[f] not in ok:
                out.append(f"{where}{m.espo_id}/{m.betnr} {f} = {values[f]!r}, expected one of "
                           f"{sorted(map(repr, ok))} (since the last convergence: EspoCRM set "
                           f"{m.espo_edits.get(f, [])}, Advoware set {m.advo_edits.get(f, [])}, "
                           f"cp {m.cp.get(f)!r}, group phases {m.group_phases.get(FIELD_GROUP[f])})")

    @staticmethod
    def _check_unmapped(m: RecordModel, rec: dict[str, Any], twin: dict[str, Any] | None, where: str,
                        out: list[str]) -> None:
        for u in ESPO_UNMAPPED:
            if rec.get(u) != m.espo_unmapped.get(u):
                out.append(f"{where}{m.espo_id} EspoCRM {u}: {rec.get(u)!r} != {m.espo_unmapped.get(u)!r}")
        for u in ADVO_UNMAPPED if twin is not None else ():
            assert twin is not None
            if twin.get(u) != m.advo_unmapped.get(u):
                out.append(f"{where}{m.espo_id} Advoware {m.betnr} {u}: {twin.get(u)!r} != "
                           f"{m.advo_unmapped.get(u)!r}")

    async def run(self) -> ChaosReport:
        tb, cfg = self.tb, self.cfg
        t0 = time.monotonic()
        tb.reset_calls()
        for r in range(cfg.rounds):
            await self.round(r)
        # last edits nobody synced yet (Advoware's are found by the sync check alone)
        self.phase += 1
        self.quiet = True
        self.round_no = cfg.rounds
        self.edit_some(cfg.final_edits)
        # faults have stopped; EspoCRM's last queue (and held-back batches) are delivered, still lossy
        await self.hooks.post(self.hooks.plan(self.hooks.capture(), final=True))
        if not await tb.host.drain(cfg.drain_s):
            self.stats.drain_timeouts += 1
        self.stats.writes_chaos = tb.writes()
        self.stats.api_calls_chaos = tb.api_calls()
        self.stats.seconds_chaos = time.monotonic() - t0
        t1 = time.monotonic()
        tb.clock.advance(10 * 3600)  # every scheduled retry is due
        tb.reset_calls()
        await tb.host.run_cron("beteiligte_sync_cron")
        if not await tb.host.drain(cfg.drain_s * 2):
            self.stats.drain_timeouts += 1
        self.stats.writes_final_check = tb.writes()
        report = self.verify()
        tb.reset_calls()
        await tb.host.run_cron("beteiligte_sync_cron")
        await tb.host.drain(cfg.drain_s)
        self.stats.writes_second_check = tb.writes()
        self.stats.seconds_final = time.monotonic() - t1
        return report

    # -- the end state ------------------------------------------------------------------------
    def verify(self) -> ChaosReport:
        rep = ChaosReport(violations=list(self.violations), unmapped_lost=list(self.unmapped_lost))
        advo = {int(o["betNr"]): o for o in self.tb.advo.all()}
        espo = {r["id"]: r for r in self.tb.espo.all()}
        linked: set[int] = set()
        for m in self.models.values():
            if m.deleted:
                if m.espo_id in espo:
                    rep.bad_status.append(f"{m.espo_id}: deleted by a person but exists again")
                if m.betnr:
                    linked.add(m.betnr)
                continue
            rec = espo.get(m.espo_id)
            if rec is None:
                rep.violations.append(f"{m.espo_id}: EspoCRM record vanished")
                continue
            status = rec.get("syncStatus")
            if status != "clean" or not rec.get("betnr"):
                rep.bad_status.append(f"{m.espo_id} betnr={rec.get('betnr')}: status {status}, "
                                      f"error {rec.get('syncErrorMessage')!r}")
            if not rec.get("betnr"):
                self._check_unmapped(m, rec, None, "end: ", rep.unmapped_lost)
                continue
            betnr = int(rec["betnr"])
            m.betnr = betnr
            linked.add(betnr)
            rep.pairs += 1
            twin = advo.get(betnr)
            if twin is None:
                rep.violations.append(f"{m.espo_id}: Advoware twin {betnr} missing")
                continue
            self._check_unmapped(m, rec, twin, "end: ", rep.unmapped_lost)
            e, a = espo_to_canonical(rec), advoware_to_canonical(twin)
            if e == a:
                rep.agreeing += 1
            else:
                for f in MAPPED:
                    if e[f] != a[f]:
                        rep.violations.append(f"end: {m.espo_id}/{betnr} {f}: disagree EspoCRM {e[f]!r} "
                                              f"Advoware {a[f]!r}")
            self._check_values(m, e, "end: ", rep.violations)
        rep.orphans_in_advoware = len(set(advo) - linked)
        tags = Counter(_tag(o.get("name")) for o in advo.values())
        rep.duplicates_in_advoware = sum(n - 1 for t, n in tags.items() if t is not None and n > 1)
        return rep


_TAG = re.compile(r"^Müller-(\d{5})-")


def _tag(name: Any) -> str | None:
    """The record tag every last name carries (``Müller-<tag>-<n>``)."""
    mt = _TAG.match(name) if isinstance(name, str) else None
    return mt.group(1) if mt else None


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
