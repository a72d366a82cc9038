"""Shaped profiles: load defined by the scenario's own numbers (issue 19).

A :class:`ShapeSpec` gives, for each local month, a 24-hour shape per day type (weekday, weekend,
holiday) and a month weight; with an annual total, a noise amplitude and a seed. A day's expected
energy is proportional to ``weight(month) x sum of its hours' shape values`` (a shape's size sets how
much its day type uses, so a weekend shape twice as tall uses twice the energy), normalised so each
local calendar year sums to the annual total. DST days sum their 23 or 25 actual hours. Each interval
gets ``shape[local hour] x interval/3600`` of that, times mean-one uniform noise hashed from (seed,
usage point, meter, day start): values stay a pure function of (seed, SA, meter, flow, interval).

Used as an override on a built-in profile, the shape only redistributes each day's energy of the
base profile over the hours (weights and annual total are then the base profile's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from mock_custodian.synth.localtime import business_holidays, day_bounds, seconds_of_day

DAY_TYPES = ("weekday", "weekend", "holiday")
SEASONS: dict[str, tuple[int, ...]] = {
    "winter": (12, 1, 2), "spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11), "fall": (9, 10, 11),
}
_KEYS = {"annual", "noise", "seed", "weight", "seasons", "months", *DAY_TYPES}
_LEVEL_KEYS = {"weight", "months", *DAY_TYPES}
DEFAULT_NOISE = 0.1


@dataclass(frozen=True)
class MonthShape:
    """The 24-hour shapes of one month's day types and the month's relative weight."""

    weekday: tuple[float, ...]
    weekend: tuple[float, ...]
    holiday: tuple[float, ...]
    weight: float = 1.0

    def hours(self, day_type: str) -> tuple[float, ...]:
        return getattr(self, day_type)


@dataclass(frozen=True)
class ShapeSpec:
    """A resolved shape: twelve months (January first), annual total (None: the SA's scale), noise, seed."""

    months: tuple[MonthShape, ...]
    annual: float | None = None
    noise: float = DEFAULT_NOISE
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored form, which :func:`parse_shape` reads back unchanged."""
        return {
            "annual": self.annual, "noise": self.noise, "seed": self.seed,
            "resolved": [[list(m.weekday), list(m.weekend), list(m.holiday), m.weight] for m in self.months],
        }


def _hours(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 24:
        raise ValueError(f"{where}: expected a list of 24 hourly numbers (midnight first)")
    out = []
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, int | float) or x < 0:
            raise ValueError(f"{where}[{i}]: expected a non-negative number, got {x!r}")
        out.append(float(x))
    return tuple(out)


def _level(node: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        raise ValueError(f"{where}: expected a mapping")
    unknown = sorted(str(k) for k in node if k not in allowed)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown field (expected one of {', '.join(sorted(allowed))})")
    out: dict[str, Any] = {}
    for day_type in DAY_TYPES:
        if node.get(day_type) is not None:
            out[day_type] = _hours(node[day_type], f"{where}.{day_type}")
    if node.get("weight") is not None:
        w = node["weight"]
        if isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0:
            raise ValueError(f"{where}.weight: expected a non-negative number, got {w!r}")
        out["weight"] = float(w)
    return out


def parse_shape(node: Any, where: str = "shape") -> ShapeSpec:
    """Validate a scenario ``shape`` mapping (or its stored form); errors name the field path."""
    if not isinstance(node, Mapping):
        raise ValueError(f"{where}: expected a mapping")
    annual = node.get("annual")
    if annual is not None and (isinstance(annual, bool) or not isinstance(annual, int | float) or not annual > 0):
        raise ValueError(f"{where}.annual: expected a positive number (kWh a year), got {annual!r}")
    noise = node.get("noise", DEFAULT_NOISE)
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < 1:
        raise ValueError(f"{where}.noise: expected a number from 0 to below 1, got {noise!r}")
    seed = node.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"{where}.seed: expected an integer, got {seed!r}")
    if "resolved" in node:  # the stored form
        months = tuple(MonthShape(tuple(m[0]), tuple(m[1]), tuple(m[2]), float(m[3])) for m in node["resolved"])
        return ShapeSpec(months, None if annual is None else float(annual), float(noise), seed)
    top = _level(node, where, _KEYS)
    by_month: list[dict[str, Any]] = [dict(top) for _ in range(12)]
    seasons = node.get("seasons") or {}
    if not isinstance(seasons, Mapping):
        raise ValueError(f"{where}.seasons: expected a mapping of season name to shapes")
    for name, season_node in seasons.items():
        swhere = f"{where}.seasons.{name}"
        level = _level(season_node, swhere, _LEVEL_KEYS)
        months = season_node.get("months", SEASONS.get(str(name)))
        if months is None:
            raise ValueError(f"{swhere}.months: required for a season not named {', '.join(SEASONS)}")
        if not isinstance(months, Sequence) or not all(isinstance(m, int) and 1 <= m <= 12 for m in months):
            raise ValueError(f"{swhere}.months: expected a list of month numbers 1-12")
        for m in months:
            by_month[m - 1].update(level)
    month_nodes = node.get("months") or {}
    if not isinstance(month_nodes, Mapping):
        raise ValueError(f"{where}.months: expected a mapping of month number (1-12) to shapes")
    for m, month_node in month_nodes.items():
        if not isinstance(m, int) or not 1 <= m <= 12:
            raise ValueError(f"{where}.months.{m}: month must be a number 1-12")
        by_month[m - 1].update(_level(month_node, f"{where}.months.{m}", _LEVEL_KEYS - {"months"}))
    resolved = []
    for m, level in enumerate(by_month, start=1):
        if "weekday" not in level:
            raise ValueError(f"{where}.weekday: required (no 24-hour weekday shape for month {m})")
        weekend = level.get("weekend", level["weekday"])
        resolved.append(MonthShape(level["weekday"], weekend, level.get("holiday", weekend), level.get("weight", 1.0)))
    if not any(m.weight * sum(m.weekday) > 0 for m in resolved):
        raise ValueError(f"{where}: every weight or weekday shape is zero, so no energy is ever used")
    return ShapeSpec(tuple(resolved), None if annual is None else float(annual), float(noise), seed)


def day_type(day: date) -> str:
    """weekday, weekend or holiday (the business holidays of the built-in commercial profile)."""
    if day in business_holidays(day.year):
        return "holiday"
    return "weekend" if day.weekday() >= 5 else "weekday"


@lru_cache(maxsize=4096)
def _interval_weights(hours: tuple[float, ...], day_length: int, interval: int) -> tuple[float, ...]:
    """Each interval's share of its hour's shape value (shape[local hour] x interval / 3600)."""
    if interval >= 86400:
        return (sum(hours[sod // 3600] for sod in seconds_of_day(day_length, 3600)),)
    return tuple(hours[sod // 3600] * interval / 3600.0 for sod in seconds_of_day(day_length, interval))


def _day_weights(spec: ShapeSpec, day: date, interval: int) -> tuple[float, ...]:
    start, end = day_bounds(day)
    month = spec.months[day.month - 1]
    return tuple(month.weight * w for w in _interval_weights(month.hours(day_type(day)), end - start, interval))


@lru_cache(maxsize=256)
def _year_total(spec: ShapeSpec, year: int, interval: int) -> float:
    total, day = 0.0, date(year, 1, 1)
    from datetime import timedelta

    while day.year == year:
        total += sum(_day_weights(spec, day, interval))
        day += timedelta(days=1)
    return total


def expected_values(spec: ShapeSpec, annual_wh_milli: float, day: date, interval: int) -> list[float]:
    """Noise-free values of one local day (value units), before the caller's mean-one noise."""
    total = _year_total(spec, day.year, interval)
    k = annual_wh_milli / total if total else 0.0
    return [k * w for w in _day_weights(spec, day, interval)]


def reshape(values: Sequence[int], spec: ShapeSpec, day: date, interval: int) -> list[float]:
    """A base profile's day, its energy spread over the hours by the shape (noise-free)."""
    weights = _day_weights(spec, day, interval)
    total = sum(weights)
    energy = sum(values)
    if not total:
        return [energy / max(len(weights), 1)] * len(weights)
    return [energy * w / total for w in weights]
