"""PG&E's rate limits (spec 6.7), counted in the database so every worker sees the same counters.

- 1 request/second per vendor (every client_id under one Tax ID): a GCRA token bucket with a small
  burst, so a client that fetches a token and calls at once is not refused but one that hammers is.
- 2,000 calls per rolling hour per client_id: per-minute buckets summed over the last 60 minutes.
- 20,000 calls per day per client_id, the day resetting at 17:00 America/Los_Angeles.

Each update is one atomic statement (upsert or conditional update), safe across processes. The hourly
and daily windows are simulated-clock epochs; the per-second bucket runs on real time (issue 20): on a
frozen simulated clock it would never refill, and its ``Retry-After`` would be a promise the clock breaks.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC


@dataclass(frozen=True)
class RateLimits:
    vendor_per_second: float = 1.0
    vendor_burst: int = 2
    client_per_hour: int = 2000
    client_per_day: int = 20000
    day_reset_hour_local: int = 17


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int = 0
    limit: str = ""


# Every statement is plain SQL built once: on the hot path of every API request (issue 17), building
# SQLAlchemy expressions cost more than running them. The upsert syntax is shared by SQLite (3.24+) and
# PostgreSQL; only "the larger of two" differs (max / greatest).
_UPSERT_COUNT = text(
    "INSERT INTO rate_counters (scope, subject, window_start, count, level) VALUES (:scope, :subject, :ws, :d, 0.0) "
    "ON CONFLICT (scope, subject, window_start) DO UPDATE SET count = rate_counters.count + :d RETURNING count"
)
# The vendor row, created if missing; a theoretical arrival time further ahead than any admitted request can
# leave is stale (e.g. written on an advanced simulated clock by an older version): forget it.
_VENDOR_ROW = text(
    "INSERT INTO rate_counters (scope, subject, window_start, count, level) VALUES ('vendor', :subject, 0.0, 0, 0.0) "
    "ON CONFLICT (scope, subject, window_start) DO UPDATE SET level = CASE WHEN rate_counters.level > :stale "
    "THEN 0.0 ELSE rate_counters.level END"
)
_VENDOR_ADMIT = {
    name: text(
        f"UPDATE rate_counters SET level = {fn}(level, :now) + :interval, count = count + 1 "
        "WHERE scope = 'vendor' AND subject = :subject AND window_start = 0.0 "
        f"AND {fn}(level, :now) + :interval - :now <= :tolerance"
    )
    for name, fn in (("sqlite", "max"), ("postgresql", "greatest"))
}
_VENDOR_LEVEL = text("SELECT level FROM rate_counters WHERE scope = 'vendor' AND subject = :subject "
                     "AND window_start = 0.0")
_HOUR_SUM = text("SELECT COALESCE(SUM(count), 0) FROM rate_counters WHERE scope = 'client_minute' "
                 "AND subject = :subject AND window_start > :since")
_HOUR_ROWS = text("SELECT window_start, count FROM rate_counters WHERE scope = 'client_minute' "
                  "AND subject = :subject AND window_start > :since ORDER BY window_start")
_FORGET_MINUTES = text("DELETE FROM rate_counters WHERE scope = 'client_minute' AND subject = :subject "
                       "AND window_start <= :before")


def day_window_start(now: float, reset_hour: int) -> float:
    """The most recent reset instant (default 17:00 Pacific) at or before ``now``."""
    local = dt.datetime.fromtimestamp(now, PACIFIC)
    reset = local.replace(hour=reset_hour, minute=0, second=0, microsecond=0)
    if reset > local:
        previous = local.date() - dt.timedelta(days=1)
        reset = dt.datetime(previous.year, previous.month, previous.day, reset_hour, tzinfo=PACIFIC)
    return reset.timestamp()


def next_day_reset(now: float, reset_hour: int) -> float:
    start = dt.datetime.fromtimestamp(day_window_start(now, reset_hour), PACIFIC).date() + dt.timedelta(days=1)
    return dt.datetime(start.year, start.month, start.day, reset_hour, tzinfo=PACIFIC).timestamp()


def _vendor(db: Session, vendor: str, now: float, limits: RateLimits) -> RateDecision:
    """The GCRA bucket; ``now`` is real time."""
    interval = 1.0 / limits.vendor_per_second
    tolerance = interval * limits.vendor_burst
    db.execute(_VENDOR_ROW, {"subject": vendor, "stale": now + tolerance + interval})
    dialect = db.get_bind().dialect.name
    admitted = db.execute(_VENDOR_ADMIT.get(dialect, _VENDOR_ADMIT["sqlite"]),
                          {"subject": vendor, "now": now, "interval": interval, "tolerance": tolerance})
    if admitted.rowcount:
        return RateDecision(True)
    tat = db.execute(_VENDOR_LEVEL, {"subject": vendor}).scalar_one()
    wait = max(tat, now) + interval - tolerance - now
    return RateDecision(False, max(1, math.ceil(wait)), "1 request per second per vendor")


def _bump(db: Session, scope: str, subject: str, window_start: float, delta: int) -> int:
    """Add ``delta`` to one window's counter (created at ``delta`` if missing); the new count."""
    return int(db.execute(_UPSERT_COUNT, {"scope": scope, "subject": subject, "ws": window_start, "d": delta})
               .scalar_one())


def check_and_count(db: Session, vendor: str, client_id: str, now: float, limits: RateLimits, *,
                    real_now: float | None = None, vendor_bucket: bool = True) -> RateDecision:
    """Admit one request or say which limit refuses it and for how long (``Retry-After`` seconds).

    ``now`` is the simulated clock (hourly and daily windows), ``real_now`` real time (the per-second
    vendor bucket; defaults to ``now``). ``vendor_bucket=False`` counts a call toward the hourly and daily
    limits only (token-endpoint calls under the production profile).
    """
    if vendor_bucket:
        decision = _vendor(db, vendor, now if real_now is None else real_now, limits)
        if not decision.allowed:
            return decision
    minute = math.floor(now / 60) * 60
    in_minute = _bump(db, "client_minute", client_id, minute, 1)
    in_hour = int(db.execute(_HOUR_SUM, {"subject": client_id, "since": now - 3600}).scalar_one())
    if in_hour > limits.client_per_hour:
        _bump(db, "client_minute", client_id, minute, -1)
        hour_rows = db.execute(_HOUR_ROWS, {"subject": client_id, "since": now - 3600}).all()
        # Allowed again once enough of the oldest minutes have rolled out of the hour.
        excess, freed_at = in_hour - limits.client_per_hour, now + 3600
        for start, count in hour_rows:
            excess -= count
            if excess <= 0:
                freed_at = start + 3660
                break
        return RateDecision(False, max(1, math.ceil(freed_at - now)), "2,000 calls per hour per client_id")
    day_start = day_window_start(now, limits.day_reset_hour_local)
    in_day = _bump(db, "client_day", client_id, day_start, 1)
    if in_day > limits.client_per_day:
        _bump(db, "client_day", client_id, day_start, -1)
        _bump(db, "client_minute", client_id, minute, -1)
        wait = next_day_reset(now, limits.day_reset_hour_local) - now
        return RateDecision(False, max(1, math.ceil(wait)), "20,000 calls per day per client_id (resets 17:00 Pacific)")
    if in_minute == 1:  # a new minute bucket: the ones two hours old are of no further use
        db.execute(_FORGET_MINUTES, {"subject": client_id, "before": now - 7200})
    return RateDecision(True)
