"""One chaos run: rounds of people's edits, API faults and mangled webhooks over a testbed, then
the end state checked against the model (see :mod:`tests.chaos` for the whole story)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from domain.conflict_policy import ConflictPolicy
from simulators.faults import FaultRule
from tests.chaos.config import ChaosConfig, ChaosStats
from tests.chaos.contract import advoware_to_canonical, espo_to_canonical
from tests.chaos.people import People
from tests.chaos.report import ChaosReport, check_unmapped, check_values, verify
from tests.chaos.webhooks import WebhookChaos
from tests.testbed import Testbed


class ChaosRun(People):
    def __init__(self, tb: Testbed, cfg: ChaosConfig, policy: ConflictPolicy | None = None) -> None:
        super().__init__(tb, cfg, random.Random(cfg.seed), ChaosStats())
        self.policy = policy or tb.services.policy
        self.hooks = WebhookChaos(tb, self.rng, cfg, self.stats)
        self._fault_rules: list[tuple[str, FaultRule, int]] = []
        self.round_no = 0
        self.violations: list[str] = []  # found at intermediate convergence points
        self.unmapped_lost: list[str] = []

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
            check_unmapped(m, rec, twin, f"round {self.round_no}: ", self.unmapped_lost)
            e, a = espo_to_canonical(rec), advoware_to_canonical(twin)
            if e == a:
                # a converged pair must already honour the model (a lost change would be lost for good)
                check_values(m, e, self.policy, f"round {self.round_no}: ", self.violations)
                m.converged(e)
                self.stats.convergence_points += 1

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
        self.delete_a_linked_record()
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
        found = ChaosReport(violations=list(self.violations), unmapped_lost=list(self.unmapped_lost))
        return verify(self.models, self.tb.espo.all(), self.tb.advo.all(), self.policy, found,
                      delete_policy=self.tb.services.settings.delete_policy)
