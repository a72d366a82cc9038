"""How published interval data changes over time (spec 7.7, 7.13): gaps, estimates, corrections.

Pure functions of declared changes and ``now``: a gap leaves intervals out at first publication, they
come back estimated (quality 8 or 9) after a delay and final (the metered values, normal quality)
after another; a correction scales values from a given instant on. The result is the data engine's
``Overrides`` mapping plus each changed block's Atom ``updated`` time, so feeds, bills and
``updated-min`` queries all see the same state. The same declarations and clock moves always give
the same data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.localtime import day_bounds, iter_local_days
from mock_custodian.synth.readings import DayReadings, day_readings

ESTIMATE_QUALITIES = (8, 9)  # reference-day estimate, linear interpolation
CORRECTION_QUALITIES = (0, 7, 10, 11, 13, 17, 18)


@dataclass(frozen=True)
class Gap:
    """Intervals in [start, end) missing when first published, estimated later, final after that."""

    start: int
    end: int
    estimate_after: int = 2 * 86400  # seconds after the day's publication
    final_after: int = 7 * 86400
    estimate_quality: int = 8
    meter: int | None = None  # None: every meter
    flow_direction: int | None = None  # None: every flow direction


@dataclass(frozen=True)
class Correction:
    """From ``at`` on, the intervals in [start, end) are ``factor`` times their metered value."""

    start: int
    end: int
    at: int
    factor: float = 1.1
    quality: int = 7  # manually edited
    meter: int | None = None
    flow_direction: int | None = None


Change = Gap | Correction


def _applies(change: Change, meter: int, flow: int, day_start: int, day_end: int) -> bool:
    return (change.start < day_end and change.end > day_start
            and change.meter in (None, meter) and change.flow_direction in (None, flow))


def _estimate(sa: ServiceAgreementModel, meter: int, flow: int, day: dt.date, index: int, method: int,
              pure: DayReadings) -> int:
    """A deterministic estimate: the same interval on the same weekday a week earlier (8), or the day's mean (9)."""
    if method == 9:
        return round(sum(pure.values) / max(len(pure.values), 1))
    week_before = day_readings(sa, meter, flow, day - dt.timedelta(days=7))
    if week_before is None or not week_before.values:
        return 0
    return week_before.values[min(index, len(week_before.values) - 1)]


def changed_block(sa: ServiceAgreementModel, meter: int, flow: int, day: dt.date, changes: Iterable[Change],
                  now: float, published_at: float) -> tuple[DayReadings | None, float] | None:
    """The block of one day as served at ``now`` and its ``updated`` time, or None when unchanged."""
    day_start, day_end = day_bounds(day)
    relevant = [c for c in changes if _applies(c, meter, flow, day_start, day_end)]
    if not relevant or now < published_at:
        return None
    pure = day_readings(sa, meter, flow, day)
    if pure is None:
        return None
    starts = list(pure.starts)
    values = list(pure.values)
    qualities = [pure.quality] * len(values)
    keep = [True] * len(values)
    updated = published_at
    touched = False
    for change in relevant:
        inside = [i for i, t in enumerate(starts) if change.start <= t < change.end]
        if not inside:
            continue
        if isinstance(change, Gap):
            estimate_at = published_at + change.estimate_after
            final_at = published_at + change.final_after
            touched = True
            if now < estimate_at:
                for i in inside:
                    keep[i] = False
            elif now < final_at:
                for i in inside:
                    values[i] = _estimate(sa, meter, flow, day, i, change.estimate_quality, pure)
                    qualities[i] = change.estimate_quality
                updated = max(updated, estimate_at)
            else:
                updated = max(updated, final_at)  # the metered values, as first measured
        elif now >= change.at:
            for i in inside:
                values[i] = max(0, round(values[i] * change.factor)) if flow in (1, 19) else round(
                    values[i] * change.factor)
                qualities[i] = change.quality
            updated = max(updated, change.at)
            touched = True
    if not touched:
        return None
    chosen = [i for i, k in enumerate(keep) if k]
    if not chosen:
        return None, updated
    tou = [pure.tou[i] for i in chosen] if pure.tou is not None else None
    block = DayReadings(
        day_start=pure.day_start, day_length=pure.day_length, duration=pure.duration,
        starts=[starts[i] for i in chosen], values=[values[i] for i in chosen], quality=pure.quality,
        tou=tou, qualities=[qualities[i] for i in chosen],
    )
    return block, updated


def overrides_for(sa: ServiceAgreementModel, changes: Iterable[Change], start: float, end: float, now: float,
                  published_at: Callable[[int], float]) -> tuple[dict, dict]:
    """Overrides and ``updated`` times for every changed block of ``sa`` within [start, end).

    Returns ``(overrides, updated)``: ``overrides[(meter, flow, day_start)]`` is the served block (None
    for a day wholly missing); ``updated[(meter, flow, day_start)]`` its Atom ``updated`` time.
    """
    changes = list(changes)
    overrides: dict = {}
    updated: dict = {}
    if not changes or not sa.is_interval:
        return overrides, updated
    lo = max(start, min(c.start for c in changes))
    hi = min(end, max(c.end for c in changes))
    for day in iter_local_days(lo, hi):
        day_start, _ = day_bounds(day)
        for meter in range(1, sa.meters + 1):
            for flow in sa.flow_directions:
                result = changed_block(sa, meter, flow, day, changes, now, published_at(day_start))
                if result is not None:
                    overrides[(meter, flow, day_start)] = result[0]
                    updated[(meter, flow, day_start)] = result[1]
    return overrides, updated


def change_times(change: Change, published_at: Callable[[int], float]) -> list[float]:
    """Every instant at which ``change`` alters served data (for daily packages of corrections)."""
    if isinstance(change, Correction):
        return [float(change.at)]
    times = []
    for day in iter_local_days(change.start, change.end):
        day_start, _ = day_bounds(day)
        times += [published_at(day_start) + change.estimate_after, published_at(day_start) + change.final_after]
    return times
