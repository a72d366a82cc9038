"""Rate limits of spec 6.7 (checklist 116-119), counted in the database across workers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.ratelimit import RateLimits, check_and_count, day_window_start, next_day_reset
from mock_custodian.store.db import Database
from mock_custodian.store.models import RateCounter

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


def _db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'rl.db'}")
    database.create_schema()
    return database


def test_burst_admits_a_token_call_and_a_data_call_together(tmp_path: Path) -> None:
    database = _db(tmp_path)
    limits = RateLimits(vendor_burst=2)
    now = 1_780_000_000.0
    with database.session() as db:
        results = [check_and_count(db, "941234567", "00101", now, limits).allowed for _ in range(3)]
    assert results == [True, True, False]


def test_hourly_limit_is_rolling(tmp_path: Path) -> None:
    database = _db(tmp_path)
    limits = RateLimits(vendor_per_second=1000.0, vendor_burst=10**6, client_per_hour=2000)
    start = 1_780_000_000.0
    with database.session() as db:
        for i in range(2000):
            assert check_and_count(db, "v", "00101", start + i * 1.5, limits).allowed
        refused = check_and_count(db, "v", "00101", start + 3000, limits)
        assert not refused.allowed and "hour" in refused.limit
        assert 0 < refused.retry_after <= 3660
        assert check_and_count(db, "v", "00101", start + 3000 + refused.retry_after, limits).allowed
        assert check_and_count(db, "v", "00102", start + 3000, limits).allowed  # other client ids unaffected


def test_daily_limit_resets_at_17_pacific(tmp_path: Path) -> None:
    database = _db(tmp_path)
    limits = RateLimits(vendor_per_second=1000.0, vendor_burst=10**6, client_per_hour=10**6, client_per_day=20000)
    morning = dt.datetime(2026, 6, 1, 9, tzinfo=PACIFIC).timestamp()
    with database.session() as db:
        for i in range(20000):
            assert check_and_count(db, "v", "00101", morning + i * 0.01, limits).allowed
        refused = check_and_count(db, "v", "00101", morning + 300, limits)
        assert not refused.allowed and "day" in refused.limit
        five_pm = dt.datetime(2026, 6, 1, 17, tzinfo=PACIFIC).timestamp()
        assert refused.retry_after == int(five_pm - (morning + 300))
        assert not check_and_count(db, "v", "00101", five_pm - 1, limits).allowed
        assert check_and_count(db, "v", "00101", five_pm, limits).allowed


def test_day_window_boundaries() -> None:
    before = dt.datetime(2026, 3, 8, 16, 59, tzinfo=PACIFIC).timestamp()
    assert day_window_start(before, 17) == dt.datetime(2026, 3, 7, 17, tzinfo=PACIFIC).timestamp()
    assert next_day_reset(before, 17) == dt.datetime(2026, 3, 8, 17, tzinfo=PACIFIC).timestamp()


def test_calls_outside_the_vendor_bucket_still_count_per_hour(tmp_path: Path) -> None:
    # Token-endpoint calls under the production profile: never refused by the per-second bucket, and the
    # data calls after them keep the bucket's full depth, but the hourly window counts them.
    database = _db(tmp_path)
    limits = RateLimits(vendor_burst=2, client_per_hour=5)
    now = 1_780_000_000.0
    with database.session() as db:
        tokens = [check_and_count(db, "v", "00101", now, limits, vendor_bucket=False).allowed for _ in range(3)]
        data = [check_and_count(db, "v", "00101", now, limits).allowed for _ in range(3)]
    assert tokens == [True, True, True]
    assert data == [True, True, False]
    with database.session() as db:
        refused = check_and_count(db, "v", "00101", now + 10, limits, vendor_bucket=False)
    assert not refused.allowed and "hour" in refused.limit  # 3 tokens + 2 data calls = the hour's 5


def test_vendor_bucket_uses_real_time_and_windows_the_simulated_clock(tmp_path: Path) -> None:
    database = _db(tmp_path)
    limits = RateLimits(vendor_burst=1, client_per_hour=10)
    real, simulated = 1_780_000_000.0, 1_900_000_000.0
    with database.session() as db:
        assert check_and_count(db, "v", "00101", simulated, limits, real_now=real).allowed
        # A year of simulated time later, but the same real instant: the bucket is still empty.
        assert not check_and_count(db, "v", "00101", simulated + 3e7, limits, real_now=real).allowed
        assert check_and_count(db, "v", "00101", simulated, limits, real_now=real + 1).allowed
        rows = db.execute(select(RateCounter.window_start).where(RateCounter.scope == "client_minute")).scalars()
        assert {int(w) for w in rows} == {int(simulated // 60 * 60)}  # the hour counts simulated minutes


def test_a_stale_bucket_from_an_advanced_clock_is_forgotten(tmp_path: Path) -> None:
    database = _db(tmp_path)
    limits = RateLimits(vendor_burst=1)
    with database.session() as db:
        assert check_and_count(db, "v", "00101", 1_900_000_000.0, limits).allowed  # old, simulated-time level
        assert check_and_count(db, "v", "00101", 1_780_000_000.0, limits, real_now=1_780_000_000.0).allowed
