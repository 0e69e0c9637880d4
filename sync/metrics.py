"""Prometheus metrics of the service (one registry per service instance, served at ``/metrics``)."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Stall(StrEnum):
    """``beteiligte_stalled_total``'s kinds: what a watchdog found in flight past its bound."""

    LEASE = "lease"  # a sync pass held its record's lease past MAX_LEASE_HOLD_S: let go
    EVENT = "event"  # an event's handler ran past maxHandlerSeconds: its entry let go
    HEARTBEAT_LEFT = "heartbeat_left_behind"  # a lease heartbeat did not stop in time


class SyncMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.syncs = Counter(
            "beteiligte_sync_total", "Finished record syncs by action and outcome",
            ["action", "outcome"], registry=r,
        )
        self.failures = Counter(
            "beteiligte_sync_failures_total", "Failed record syncs by error class",
            ["kind"], registry=r,
        )
        self.conflicts = Counter(
            "beteiligte_sync_conflicts_total", "Fields both sides changed, by group and winner",
            ["group", "winner"], registry=r,
        )
        self.writes = Counter(
            "beteiligte_sync_writes_total", "Writes the sync made, by system", ["system"], registry=r,
        )
        self.webhooks = Counter(
            "beteiligte_webhook_requests_total", "Webhook requests by event and answer",
            ["event", "status"], registry=r,
        )
        self.sync_check_found = Counter(
            "beteiligte_sync_check_records_total", "Records a sync check queued, by reason",
            ["reason"], registry=r,
        )
        self.duration = Histogram(
            "beteiligte_sync_duration_seconds", "Wall time of one record sync", registry=r,
        )
        self.queue_depth = Gauge(
            "beteiligte_queue_depth", "Events queued or in flight", registry=r,
        )
        self.dead_letters = Gauge(
            "beteiligte_dead_letters", "Events that failed every attempt", registry=r,
        )

        self.stalled = Counter(
            "beteiligte_stalled_total", "Leases and events a watchdog found in flight past their bound",
            ["kind"], registry=r,
        )
        self.overdue = Gauge(
            "beteiligte_overdue", "Leases and events in flight past their bound now", ["kind"], registry=r,
        )
        # Set whenever the status page or `beteiligte-sync status` gathers its facts (one EspoCRM read).
        self.attention = Gauge(
            "beteiligte_sync_records_needing_attention",
            "Records whose latest change did not reach the other system, by reason "
            "(failed, permanently_failed, pending_overdue, dead_letter); as of the last status read",
            ["reason"], registry=r)

        self.feed_polls = Counter(
            "advoware_feed_polls", "Polls of Advoware's change feed, by outcome (running, failing, "
            "no_list_endpoint, since_ignored, off)", ["outcome"], registry=r)
        self.feed_lag = Gauge(
            "advoware_feed_lag_seconds", "Now minus the newest Advoware change the feed has read", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
