from datetime import UTC, datetime

import pytest

from domain.timestamps import format_espo, parse_advoware, parse_espo


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("2026-01-15T12:00:00.000", datetime(2026, 1, 15, 11, 0, tzinfo=UTC)),  # CET, +1
        ("2026-07-15T12:00:00.000", datetime(2026, 7, 15, 10, 0, tzinfo=UTC)),  # CEST, +2
        ("2026-03-29T01:59:59.000", datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)),  # just before the jump
        ("2026-03-29T03:00:00.000", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # just after it
        ("2026-03-29T02:30:00.000", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # in the gap: CET offset
        ("2026-10-25T02:30:00.000", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # twice: the first (CEST)
        ("2026-10-25T03:30:00.000", datetime(2026, 10, 25, 2, 30, tzinfo=UTC)),  # after fall back: CET
        ("2026-11-29T10:04:26.795", datetime(2026, 11, 29, 9, 4, 26, 795000, tzinfo=UTC)),
    ],
)
def test_advoware_local_time_to_utc_across_dst(local, utc):
    assert parse_advoware(local) == utc


def test_order_is_kept_across_the_autumn_change():
    before = parse_advoware("2026-10-25T01:59:00.000")
    after = parse_advoware("2026-10-25T03:01:00.000")
    assert before is not None and after is not None and before < after


def test_other_zone_is_configurable():
    assert parse_advoware("2026-07-15T12:00:00", "UTC") == datetime(2026, 7, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize("bad", [None, "", "gestern"])
def test_unreadable_advoware_time_is_none(bad):
    assert parse_advoware(bad) is None


def test_espo_round_trip():
    dt = datetime(2026, 11, 29, 10, 4, 26, tzinfo=UTC)
    assert parse_espo(format_espo(dt)) == dt
    assert parse_espo("nonsense") is None
