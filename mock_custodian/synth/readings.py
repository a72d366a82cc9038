"""IntervalBlock-shaped readings: one local day per block, per meter and flow direction.

This is what the ESPI writer streams and what billing sums, so both always
agree. Store-held corrections and gaps enter through ``overrides``: a mapping
from ``(meter, flow_direction, day_start)`` to a replacement :class:`DayReadings`
(or ``None`` for a day with no data); anything not in it is the pure value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.localtime import day_bounds, day_start, iter_local_days, local_date
from mock_custodian.synth.profiles import interval_values
from mock_custodian.synth.recorded import served_day
from mock_custodian.synth.tou import day_tou_codes

DST_BLOCK_DURATIONS = ("actual", "86400")
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class DayReadings:
    """The IntervalReadings of one IntervalBlock.

    ``starts``/``values`` (and ``tou``, ``qualities`` when given) are parallel.
    ``duration`` is each reading's length; ``qualities`` None means every
    reading has ``quality``.
    """

    day_start: int
    day_length: int
    duration: int
    starts: Sequence[int]
    values: Sequence[int]
    quality: int
    tou: Sequence[int] | None = None
    qualities: Sequence[int] | None = None

    def block_duration(self, dst_block_duration: str = "actual") -> int:
        """IntervalBlock ``interval/duration`` (§7.6): the day's true length, or 86400 on request."""
        return 86400 if dst_block_duration == "86400" else self.day_length


Overrides = Mapping[tuple[int, int, int], "DayReadings | None"]
Table = dict[tuple[int, int, int], "DayReadings | None"]

# Readings of pure (synthesized) days kept per process: about 36 bytes each, plus the day's interval starts
# (about 40 bytes each, shared by the day's flow directions and meters), so some 15-25 MB; a year of
# 15-minute data in both flow directions is 70,080.
CACHED_READINGS = 400_000


class PureDays:
    """Synthesized days, per SA model: a day's pure readings are a function of (model, meter, flow, day)
    alone, so a feed fetched again (or billing after a feed) need not synthesize them again (issue 17).

    Only the pure values are kept, never response bytes: corrections and gaps (``overrides``) are applied
    on top at every call, so a data change shows at once; a changed model (seed, scale, profile, shapes)
    is another key. Oldest SA models go first once ``limit`` readings are held.
    """

    def __init__(self, limit: int = CACHED_READINGS) -> None:
        self.limit = limit
        self._tables: dict[ServiceAgreementModel, Table] = {}
        self._readings = 0
        self._lock = threading.Lock()

    def table(self, sa: ServiceAgreementModel) -> Table | None:
        """The SA model's days (shared, filled by :meth:`put`); None when it cannot be cached."""
        if sa.profile == "recorded" or self.limit <= 0:
            return None  # a recording's days are decoded data already
        try:
            table = self._tables.get(sa)
        except TypeError:  # an unhashable shape: not cached
            return None
        if table is None:
            with self._lock:
                table = self._tables.setdefault(sa, {})
        return table

    def put(self, table: Table, key: tuple[int, int, int], block: DayReadings | None) -> None:
        count = 1 if block is None else len(block.values)
        with self._lock:
            if key in table or self._readings + count > self.limit and not self._evict(table, count):
                return
            table[key] = block
            self._readings += count

    def _evict(self, keep: Table, count: int) -> bool:
        """Drop the oldest SA models' days (never ``keep``'s) until ``count`` more readings fit."""
        for sa in list(self._tables):
            if self._readings + count <= self.limit:
                break
            table = self._tables[sa]
            if table is keep:
                continue
            del self._tables[sa]
            self._readings -= sum(1 if b is None else len(b.values) for b in table.values())
        return self._readings + count <= self.limit

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()
            self._readings = 0


PURE_DAYS = PureDays()


def day_readings(
    sa: ServiceAgreementModel,
    meter: int,
    flow_direction: int,
    day: date,
    overrides: Overrides | None = None,
    table: Table | None = None,
) -> DayReadings | None:
    """One block's readings, or None when the SA has no data that day (before its start, non-interval).

    ``table``: the SA's :class:`PureDays` table when the caller looked it up once for many days.
    """
    if not sa.is_interval:
        return None
    start, end = day_bounds(day)
    if overrides is not None:
        key = (meter, flow_direction, start)
        if key in overrides:
            return overrides[key]
    if end <= sa.sa_start:
        return None
    if sa.profile == "recorded":
        return _recorded_block(sa, meter, flow_direction, day, start, end)
    if table is None:
        table = PURE_DAYS.table(sa)
    if table is None:
        return _pure_block(sa, meter, flow_direction, day, start, end)
    key = (meter, flow_direction, start)
    try:
        return table[key]
    except KeyError:
        block = _pure_block(sa, meter, flow_direction, day, start, end)
        PURE_DAYS.put(table, key, block)
        return block


def _pure_block(sa: ServiceAgreementModel, meter: int, flow_direction: int, day: date, start: int,
                end: int) -> DayReadings:
    """The synthesized readings of one day (no overrides)."""
    values = interval_values(sa, meter, flow_direction, day)
    length = end - start
    if sa.interval_length >= 86400:
        starts: Sequence[int] = (start,)
        duration = length
    else:
        starts = _interval_starts(start, end, sa.interval_length)
        duration = sa.interval_length
    tou = day_tou_codes(sa.tou_calendar, day.month, length, sa.interval_length) if sa.tou else None
    return DayReadings(start, length, duration, starts, values, sa.reading_quality, tou)


@lru_cache(maxsize=1500)  # four years of days
def _interval_starts(start: int, end: int, step: int) -> tuple[int, ...]:
    """A day's interval starts, one tuple for every SA, meter and flow direction of that day: the feed writer
    then copies kept integers instead of making 96 new ones per block from a range (issue 17)."""
    return tuple(range(start, end, step))


def _recorded_block(sa: ServiceAgreementModel, meter: int, flow: int, day: date, start: int,
                    end: int) -> DayReadings | None:
    """A recorded SA's block: the file's readings of the day (or the continued pattern), TOU coded by hour."""
    found = served_day(sa.attached_recording(), meter, flow, day, outside=sa.recording_outside,
                       commodity=sa.commodity, not_before=sa.sa_start)
    if found is None:
        return None
    starts, values, qualities = found
    length = end - start
    L = sa.interval_length
    duration = length if L >= 86400 else L
    tou = None
    if sa.tou:
        codes = day_tou_codes(sa.tou_calendar, day.month, length, L)
        tou = [codes[min(len(codes) - 1, max(0, (t - start) // L))] for t in starts]
    quality = qualities[0]
    same = all(q == quality for q in qualities)
    return DayReadings(start, length, duration, starts, values, quality, tou, None if same else qualities)


def iter_day_readings(
    sa: ServiceAgreementModel,
    meter: int,
    flow_direction: int,
    start: float,
    end: float,
    overrides: Overrides | None = None,
) -> Iterator[DayReadings]:
    """Blocks of every local day overlapping [start, end), ascending; days without data are skipped."""
    table = PURE_DAYS.table(sa) if sa.is_interval else None
    if table is None:
        for day in iter_local_days(start, end):
            block = day_readings(sa, meter, flow_direction, day, overrides, table)
            if block is not None and block.values:
                yield block
        return
    # Kept days (a feed's hot path): day_readings' steps inline, each day's end the next day's start.
    if end <= start:
        return
    day = local_date(start)
    begin = day_start(day)
    while begin < end:
        following = day + _ONE_DAY
        finish = day_start(following)
        key = (meter, flow_direction, begin)
        if overrides is not None and key in overrides:
            block = overrides[key]
        elif finish <= sa.sa_start:
            block = None
        else:
            try:
                block = table[key]
            except KeyError:
                block = _pure_block(sa, meter, flow_direction, day, begin, finish)
                PURE_DAYS.put(table, key, block)
        if block is not None and block.values:
            yield block
        day, begin = following, finish


def interval_value(sa: ServiceAgreementModel, meter: int, flow_direction: int, interval_start: int) -> int:
    """The value of the single interval starting at ``interval_start`` (a spot check of the pure function)."""
    block = day_readings(sa, meter, flow_direction, local_date(interval_start))
    if block is None:
        raise ValueError(f"no interval data at {interval_start}")
    index = list(block.starts).index(interval_start)
    return block.values[index]
