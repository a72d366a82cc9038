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

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..clock import PACIFIC
from .models import RateCounter


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


def _insert(db: Session):  # noqa: ANN202 - dialect-specific INSERT with ON CONFLICT
    return pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


def _greatest(db: Session, a, b):  # noqa: ANN001, ANN202
    return func.greatest(a, b) if db.get_bind().dialect.name == "postgresql" else func.max(a, b)


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
    # A theoretical arrival time further ahead than any admitted request can leave is stale (e.g. written
    # on an advanced simulated clock by an older version): forget it rather than refuse for hours.
    db.execute(
        update(RateCounter)
        .where(and_(RateCounter.scope == "vendor", RateCounter.subject == vendor, RateCounter.window_start == 0.0))
        .where(RateCounter.level > now + tolerance + interval)
        .values(level=0.0)
        .execution_options(synchronize_session=False)
    )
    db.execute(
        _insert(db)(RateCounter)
        .values(scope="vendor", subject=vendor, window_start=0.0, count=0, level=0.0)
        .on_conflict_do_nothing(index_elements=["scope", "subject", "window_start"])
    )
    next_tat = _greatest(db, RateCounter.level, now) + interval
    result = db.execute(
        update(RateCounter)
        .where(and_(RateCounter.scope == "vendor", RateCounter.subject == vendor, RateCounter.window_start == 0.0))
        .where(next_tat - now <= tolerance)
        .values(level=next_tat, count=RateCounter.count + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        return RateDecision(True)
    tat = db.execute(
        select(RateCounter.level).where(RateCounter.scope == "vendor", RateCounter.subject == vendor)
    ).scalar_one()
    wait = max(tat, now) + interval - tolerance - now
    return RateDecision(False, max(1, math.ceil(wait)), "1 request per second per vendor")


def _bump(db: Session, scope: str, subject: str, window_start: float, delta: int) -> None:
    stmt = _insert(db)(RateCounter).values(scope=scope, subject=subject, window_start=window_start, count=delta,
                                          level=0.0)
    db.execute(stmt.on_conflict_do_update(index_elements=["scope", "subject", "window_start"],
                                          set_={"count": RateCounter.count + delta}))


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
    _bump(db, "client_minute", client_id, minute, 1)
    hour_rows = db.execute(
        select(RateCounter.window_start, RateCounter.count)
        .where(RateCounter.scope == "client_minute", RateCounter.subject == client_id,
               RateCounter.window_start > now - 3600)
        .order_by(RateCounter.window_start)
    ).all()
    in_hour = sum(count for _, count in hour_rows)
    if in_hour > limits.client_per_hour:
        _bump(db, "client_minute", client_id, minute, -1)
        # Allowed again once enough of the oldest minutes have rolled out of the hour.
        excess, freed_at = in_hour - limits.client_per_hour, now + 3600
        for start, count in hour_rows:
            excess -= count
            if excess <= 0:
                freed_at = start + 3660
                break
        return RateDecision(False, max(1, math.ceil(freed_at - now)), "2,000 calls per hour per client_id")
    day_start = day_window_start(now, limits.day_reset_hour_local)
    _bump(db, "client_day", client_id, day_start, 1)
    in_day = db.execute(
        select(RateCounter.count).where(RateCounter.scope == "client_day", RateCounter.subject == client_id,
                                        RateCounter.window_start == day_start)
    ).scalar_one()
    if in_day > limits.client_per_day:
        _bump(db, "client_day", client_id, day_start, -1)
        _bump(db, "client_minute", client_id, minute, -1)
        wait = next_day_reset(now, limits.day_reset_hour_local) - now
        return RateDecision(False, max(1, math.ceil(wait)), "20,000 calls per day per client_id (resets 17:00 Pacific)")
    # Old minute buckets are of no further use.
    db.execute(delete(RateCounter).where(RateCounter.scope == "client_minute", RateCounter.subject == client_id,
                                         RateCounter.window_start <= now - 7200))
    return RateDecision(True)
