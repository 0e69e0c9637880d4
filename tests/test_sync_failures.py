"""What each failure means for a record: counted or not, when to retry, the words staff read."""

import random

import pytest

from adapters.errors import (
    AuthenticationError,
    BadResponseError,
    DeferredError,
    ForbiddenError,
    NotFoundError,
    RetryableError,
    StaleWriteError,
    ValidationError,
    error_for_status,
)
from domain.beteiligte_mapper import MappingError
from sync.sync_failures import MAX_FAILURES, PERMANENT_RETRY_S, backoff_seconds, plan_failure


@pytest.mark.parametrize(
    ("exc", "kind", "counts"),
    [
        (RetryableError("timeout", system="advoware"), "retryable", True),
        (StaleWriteError("modified", system="espocrm", status=409), "retryable", True),
        (AuthenticationError("401", system="advoware", status=401), "retryable", True),
        (DeferredError("rate limited", system="advoware", status=429, retry_after=30), "deferred", False),
        (ValidationError("name required", system="advoware", status=400), "fatal", True),
        (ForbiddenError("forbidden", system="espocrm", status=403), "fatal", True),
        (BadResponseError("not JSON", system="advoware"), "fatal", True),
        (NotFoundError("gone", system="advoware", status=404), "fatal", True),
        (MappingError("lastName would become empty"), "fatal", True),
        (RuntimeError("bug"), "retryable", True),
    ],
)
def test_classification(exc, kind, counts):
    plan = plan_failure(exc, 0, random.Random(1))
    assert (plan.kind, plan.counts) == (kind, counts)
    assert plan.message  # readable, never empty


def test_deferred_waits_retry_after_and_does_not_count():
    plan = plan_failure(error_for_status("advoware", 429, "slow down", headers={"Retry-After": "42"}), 3)
    assert plan.kind == "deferred" and plan.delay_s == 42 and not plan.counts
    assert "42 s" in plan.message


def test_fatal_waits_for_a_change():
    plan = plan_failure(error_for_status("advoware", 400, "name: required"), 0)
    assert plan.delay_s is None and "until the record changes" in plan.message


def test_fifth_counted_failure_gives_up_but_retries_slowly():
    plan = plan_failure(RetryableError("HTTP 500", system="advoware", status=500), MAX_FAILURES - 1)
    assert plan.delay_s == PERMANENT_RETRY_S and "gave up after 5 attempts" in plan.message


@pytest.mark.parametrize(("count", "low", "high"), [(1, 30, 60), (2, 60, 120), (3, 120, 240), (10, 1800, 3600)])
def test_backoff_is_exponential_with_jitter_and_capped(count, low, high):
    values = {backoff_seconds(count, random.Random(seed)) for seed in range(20)}
    assert all(low <= v <= high for v in values)
    assert len(values) > 1  # jitter spreads retries of many records


def test_messages_name_the_system_and_status():
    plan = plan_failure(error_for_status("advoware", 503, "maintenance", headers={"Retry-After": "120"}), 0)
    assert plan.message.startswith("advoware: HTTP 503: maintenance")
