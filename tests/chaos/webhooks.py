"""Webhook mangling: EspoCRM's queue taken over, re-batched, signed with the real secrets, and
delivered badly (lost, duplicated, reordered, held back, several at a time)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.espocrm.webhooks import php_json_encode, signature_header
from tests.chaos.config import ChaosConfig, ChaosStats
from tests.testbed import Testbed


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
