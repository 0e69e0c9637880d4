"""What a chaos run does (:class:`ChaosConfig`) and what it did (:class:`ChaosStats`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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
