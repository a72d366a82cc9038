"""Local-day arithmetic in America/Los_Angeles.

PG&E cuts IntervalBlocks at local midnight, so every block boundary, billing
period and TOU hour is computed here from real UTC epochs, never from a clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")

#: LocalTimeParameters constants of §7.10 (what PG&E serves; the arithmetic uses PACIFIC).
DST_END_RULE = "B40E2000"
DST_OFFSET = 3600
DST_START_RULE = "360E2000"
TZ_OFFSET = -28800


@lru_cache(maxsize=2048)
def day_start(day: date) -> int:
    """Epoch second of local midnight starting ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp())


def day_bounds(day: date) -> tuple[int, int]:
    """(start, end) epochs of a local day; the length is 82800, 86400 or 90000 s."""
    return day_start(day), day_start(day + timedelta(days=1))


def local_date(epoch: float) -> date:
    """Local calendar date containing the instant ``epoch``."""
    return datetime.fromtimestamp(epoch, PACIFIC).date()


def local_midnight(epoch: float) -> int:
    """Start of the local day containing ``epoch`` (an IntervalBlock id)."""
    return day_start(local_date(epoch))


def iter_local_days(start: float, end: float) -> Iterator[date]:
    """Local dates whose day overlaps the half-open window [start, end)."""
    if end <= start:
        return
    day = local_date(start)
    while day_start(day) < end:
        yield day
        day += timedelta(days=1)


@lru_cache(maxsize=64)
def business_holidays(year: int) -> frozenset[date]:
    """Business holidays on which commercial load looks like a weekend (and a shape uses its holiday hours)."""

    def nth_weekday(month: int, weekday: int, n: int) -> date:
        d = date(year, month, 1)
        d += timedelta(days=(weekday - d.weekday()) % 7)
        return d + timedelta(weeks=n - 1)

    last_may_monday = date(year, 5, 31) - timedelta(days=(date(year, 5, 31).weekday()) % 7)
    return frozenset({
        date(year, 1, 1), last_may_monday, date(year, 7, 4), nth_weekday(9, 0, 1),
        nth_weekday(11, 3, 4), date(year, 12, 25),
    })


@lru_cache(maxsize=64)
def seconds_of_day(day_length: int, interval_length: int) -> tuple[int, ...]:
    """Local wall-clock second-of-day at each interval start of a day of ``day_length``.

    Both LA transitions happen at 02:00 local, so the day length alone fixes the
    mapping: a 23-hour day skips 02:00-03:00, a 25-hour day repeats 01:00-02:00.
    """
    out = []
    for elapsed in range(0, day_length, interval_length):
        if day_length == 82800 and elapsed >= 7200:
            out.append(elapsed + 3600)
        elif day_length == 90000 and elapsed >= 7200:
            out.append(elapsed - 3600)
        else:
            out.append(elapsed)
    return tuple(out)
