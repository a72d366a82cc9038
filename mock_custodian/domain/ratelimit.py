"""PG&E's rate limits (spec 6.7), counted in the database so every worker sees the same counters.

- 1 request/second per vendor (every client_id under one Tax ID): a GCRA token bucket with a small
  burst, so a client that fetches a token and calls at once is not refused but one that hammers is.
- 2,000 calls per rolling hour per client_id: per-minute buckets summed over the last 60 minutes.
- 20,000 calls per day per client_id, the day resetting at 17:00 America/Los_Angeles.

On SQLite the whole count is one statement; elsewhere each update is one atomic statement (upsert or
conditional update) in the request's transaction; both are exact across processes. The hourly
and daily windows are simulated-clock epochs; the per-second bucket runs on real time (issue 20): on a
frozen simulated clock it would never refill, and its ``Retry-After`` would be a promise the clock breaks.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.store.db import Raw, Sql, raw_of


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


# Every statement is plain SQL built once and run on the driver connection: on the hot path of every API
# request (issue 17), SQLAlchemy's per-statement work cost more than running them. The upsert syntax is
# shared by SQLite (3.24+) and PostgreSQL; only "the larger of two" differs (max / greatest).
_UPSERT_COUNT = Sql(
    "INSERT INTO rate_counters (scope, subject, window_start, count, level) VALUES (:scope, :subject, :ws, :d, 0.0) "
    "ON CONFLICT (scope, subject, window_start) DO UPDATE SET count = rate_counters.count + :d RETURNING count"
)
# The vendor bucket in one statement: the row is created admitted (level one interval ahead of now) or,
# if it exists, moved on only when the request fits the bucket (DO UPDATE ... WHERE); RETURNING gives a
# row exactly when the request was admitted. A theoretical arrival time further ahead than any admitted
# request can leave is stale (e.g. written on an advanced simulated clock by an older version): it counts
# as an empty bucket. The SELECT's WHERE keeps a bucket that admits nothing (interval > tolerance) empty.
_VENDOR_ADMIT = {
    name: Sql(
        "INSERT INTO rate_counters (scope, subject, window_start, count, level) "
        "SELECT 'vendor', :subject, 0.0, 1, :now + :interval WHERE :interval <= :tolerance "
        "ON CONFLICT (scope, subject, window_start) DO UPDATE SET "
        f"level = {fn}(CASE WHEN rate_counters.level > :stale THEN 0.0 ELSE rate_counters.level END, :now) "
        "+ :interval, count = rate_counters.count + 1 "
        f"WHERE {fn}(CASE WHEN rate_counters.level > :stale THEN 0.0 ELSE rate_counters.level END, :now) "
        "+ :interval - :now <= :tolerance RETURNING count"
    )
    for name, fn in (("sqlite", "max"), ("postgresql", "greatest"))
}
# The client's minute and day counters in one statement (one trip into the driver while the write lock is
# held): RETURNING gives each new count.
_COUNT_CLIENT = Sql(
    "INSERT INTO rate_counters (scope, subject, window_start, count, level) VALUES "
    "('client_minute', :subject, :minute, 1, 0.0), ('client_day', :subject, :day, 1, 0.0) "
    "ON CONFLICT (scope, subject, window_start) DO UPDATE SET count = rate_counters.count + 1 RETURNING scope, count"
)
_VENDOR_LEVEL = Sql("SELECT level FROM rate_counters WHERE scope = 'vendor' AND subject = :subject "
                     "AND window_start = 0.0")
_HOUR_SUM = Sql("SELECT COALESCE(SUM(count), 0) FROM rate_counters WHERE scope = 'client_minute' "
                 "AND subject = :subject AND window_start > :since")
_HOUR_ROWS = Sql("SELECT window_start, count FROM rate_counters WHERE scope = 'client_minute' "
                  "AND subject = :subject AND window_start > :since ORDER BY window_start")
_FORGET_MINUTES = Sql("DELETE FROM rate_counters WHERE scope = 'client_minute' AND subject = :subject "
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


def _vendor(db: Raw, vendor: str, now: float, limits: RateLimits) -> RateDecision:
    """The GCRA bucket; ``now`` is real time."""
    interval = 1.0 / limits.vendor_per_second
    tolerance = interval * limits.vendor_burst
    admitted = db.one(_VENDOR_ADMIT.get(db.dialect, _VENDOR_ADMIT["sqlite"]),
                      {"subject": vendor, "now": now, "interval": interval, "tolerance": tolerance,
                       "stale": now + tolerance + interval})
    if admitted is not None:
        return RateDecision(True)
    row = db.one(_VENDOR_LEVEL, {"subject": vendor})
    tat = row[0] if row is not None else now
    wait = max(tat, now) + interval - tolerance - now
    return RateDecision(False, max(1, math.ceil(wait)), "1 request per second per vendor")


def _bump(db: Raw, scope: str, subject: str, window_start: float, delta: int) -> int:
    """Add ``delta`` to one window's counter (created at ``delta`` if missing); the new count."""
    return int(db.one(_UPSERT_COUNT, {"scope": scope, "subject": subject, "ws": window_start, "d": delta})[0])


def check_and_count(session: Session | Raw, vendor: str, client_id: str, now: float, limits: RateLimits, *,
                    real_now: float | None = None, vendor_bucket: bool = True) -> RateDecision:
    """Admit one request or say which limit refuses it and for how long (``Retry-After`` seconds).

    ``now`` is the simulated clock (hourly and daily windows), ``real_now`` real time (the per-second
    vendor bucket; defaults to ``now``). ``vendor_bucket=False`` counts a call toward the hourly and daily
    limits only (token-endpoint calls under the production profile). ``session``: an ORM session or a
    driver connection (:class:`Raw`); the counts are written in its transaction, or committed at once
    by themselves on an autocommit connection.
    """
    db = raw_of(session)
    real = now if real_now is None else real_now
    if db.dialect == "sqlite":
        for _ in range(3):
            decision = _count_at_once(db, vendor, client_id, now, real, limits, vendor_bucket)
            if decision is not None:
                return decision
    return _count_in_steps(db, vendor, client_id, now, real, limits, vendor_bucket)


# SQLite: the whole count as one statement (issue 17). Each counter row is proposed only when the request
# fits: the vendor row when the bucket has room, the client's minute and day rows when, besides, the
# rolling hour and the day have room; the conditions read the rows as they were before the statement
# (SQLite evaluates an INSERT's SELECT on its target table before writing), and SQLite runs one writer at
# a time, so counts stay exact across processes. A request refused by the hour or day limit still
# charges the vendor bucket, as the step-by-step count does. RETURNING names each counter written.
_VENDOR_ROOM = ("COALESCE((SELECT max(CASE WHEN level > :stale THEN 0.0 ELSE level END, :now) FROM rate_counters "
                "WHERE scope = 'vendor' AND subject = :vendor AND window_start = 0.0), :now) + :interval - :now "
                "<= :tolerance")
_CLIENT_ROOM = ("(SELECT COALESCE(SUM(count), 0) FROM rate_counters WHERE scope = 'client_minute' "
                "AND subject = :subject AND window_start > :since) < :per_hour AND COALESCE((SELECT count FROM "
                "rate_counters WHERE scope = 'client_day' AND subject = :subject AND window_start = :day), 0) "
                "< :per_day")
_CLIENT_ROWS = ("SELECT 'client_minute', :subject, :minute, 1, 0.0 WHERE {room} "
                "UNION ALL SELECT 'client_day', :subject, :day, 1, 0.0 WHERE {room}")
_UPSERT_TAIL = (" ON CONFLICT (scope, subject, window_start) DO UPDATE SET count = rate_counters.count + 1, "
                "level = CASE WHEN rate_counters.scope = 'vendor' THEN max(CASE WHEN rate_counters.level > :stale "
                "THEN 0.0 ELSE rate_counters.level END, :now) + :interval ELSE rate_counters.level END "
                "RETURNING scope, count")
_INSERT_COUNTERS = "INSERT INTO rate_counters (scope, subject, window_start, count, level) "
_COUNT_WITH_VENDOR = Sql(
    _INSERT_COUNTERS + f"SELECT 'vendor', :vendor, 0.0, 1, :now + :interval WHERE {_VENDOR_ROOM} UNION ALL "
    + _CLIENT_ROWS.format(room=f"{_VENDOR_ROOM} AND {_CLIENT_ROOM}") + _UPSERT_TAIL
)
_COUNT_CLIENT_ONLY = Sql(_INSERT_COUNTERS + _CLIENT_ROWS.format(room=_CLIENT_ROOM) + _UPSERT_TAIL)
_DAY_COUNT = Sql("SELECT count FROM rate_counters WHERE scope = 'client_day' AND subject = :subject "
                 "AND window_start = :day")


def _count_at_once(db: Raw, vendor: str, client_id: str, now: float, real_now: float, limits: RateLimits,
                   vendor_bucket: bool) -> RateDecision | None:
    """SQLite's one-statement count (see above); None when a refusal could not be told apart (try again)."""
    interval = 1.0 / limits.vendor_per_second
    tolerance = interval * limits.vendor_burst
    minute = math.floor(now / 60) * 60
    day_start = day_window_start(now, limits.day_reset_hour_local)
    params = {"vendor": vendor, "subject": client_id, "now": real_now, "interval": interval, "tolerance": tolerance,
              "stale": real_now + tolerance + interval, "since": now - 3600, "minute": minute, "day": day_start,
              "per_hour": limits.client_per_hour, "per_day": limits.client_per_day}
    written = dict(db.all(_COUNT_WITH_VENDOR if vendor_bucket else _COUNT_CLIENT_ONLY, params))
    if "client_minute" in written:
        if written["client_minute"] == 1:  # a new minute bucket: the ones two hours old are of no further use
            db.run(_FORGET_MINUTES, {"subject": client_id, "before": now - 7200})
        return RateDecision(True)
    if vendor_bucket and "vendor" not in written:
        row = db.one(_VENDOR_LEVEL, {"subject": vendor})
        tat = row[0] if row is not None else real_now
        wait = max(tat, real_now) + interval - tolerance - real_now
        return RateDecision(False, max(1, math.ceil(wait)), "1 request per second per vendor")
    in_hour = int(db.one(_HOUR_SUM, {"subject": client_id, "since": now - 3600})[0]) + 1
    if in_hour > limits.client_per_hour:
        return _hour_refusal(db, client_id, now, in_hour, limits)
    day_row = db.one(_DAY_COUNT, {"subject": client_id, "day": day_start})
    if (day_row[0] if day_row else 0) + 1 > limits.client_per_day:
        return _day_refusal(now, limits)
    return None  # the counters moved on since the statement (another process): count again


def _hour_refusal(db: Raw, client_id: str, now: float, in_hour: int, limits: RateLimits) -> RateDecision:
    hour_rows = db.all(_HOUR_ROWS, {"subject": client_id, "since": now - 3600})
    # Allowed again once enough of the oldest minutes have rolled out of the hour.
    excess, freed_at = in_hour - limits.client_per_hour, now + 3600
    for start, count in hour_rows:
        excess -= count
        if excess <= 0:
            freed_at = start + 3660
            break
    return RateDecision(False, max(1, math.ceil(freed_at - now)), "2,000 calls per hour per client_id")


def _day_refusal(now: float, limits: RateLimits) -> RateDecision:
    wait = next_day_reset(now, limits.day_reset_hour_local) - now
    return RateDecision(False, max(1, math.ceil(wait)), "20,000 calls per day per client_id (resets 17:00 Pacific)")


def _count_in_steps(db: Raw, vendor: str, client_id: str, now: float, real_now: float, limits: RateLimits,
                    vendor_bucket: bool) -> RateDecision:
    """The count as separate statements in one transaction (PostgreSQL: each upsert locks its row, and
    the check reads after it, so concurrent requests stay exact under READ COMMITTED)."""
    if vendor_bucket:
        decision = _vendor(db, vendor, real_now, limits)
        if not decision.allowed:
            return decision
    minute = math.floor(now / 60) * 60
    day_start = day_window_start(now, limits.day_reset_hour_local)
    counts = dict(db.all(_COUNT_CLIENT, {"subject": client_id, "minute": minute, "day": day_start}))
    in_minute, in_day = int(counts["client_minute"]), int(counts["client_day"])
    in_hour = int(db.one(_HOUR_SUM, {"subject": client_id, "since": now - 3600})[0])
    if in_hour > limits.client_per_hour:
        _bump(db, "client_day", client_id, day_start, -1)
        _bump(db, "client_minute", client_id, minute, -1)
        return _hour_refusal(db, client_id, now, in_hour, limits)
    if in_day > limits.client_per_day:
        _bump(db, "client_day", client_id, day_start, -1)
        _bump(db, "client_minute", client_id, minute, -1)
        return _day_refusal(now, limits)
    if in_minute == 1:  # a new minute bucket: the ones two hours old are of no further use
        db.run(_FORGET_MINUTES, {"subject": client_id, "before": now - 7200})
    return RateDecision(True)
