"""Monthly bill cycles and UsageSummary values (§7.9), computed from the same readings a feed shows.

A bill's usage, TOU volumes and tier volumes are sums over the very interval
values the IntervalBlocks carry (including store overrides), and the bill total
is the sum of its rounded line items, so every identity a client may check holds
exactly. Money is in 1/100000 USD.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.localtime import day_start, iter_local_days, local_date, local_midnight
from mock_custodian.synth.profiles import daily_usage
from mock_custodian.synth.rates import RATE_SCHEDULES, RateSchedule
from mock_custodian.synth.readings import Overrides, day_readings
from mock_custodian.synth.tou import TOU_NOTES, day_tou_codes, season

DEFAULT_BILL_DELAY = 86400  # a bill is issued one day after its period closes


@dataclass(frozen=True)
class LineItem:
    """One ``costAdditionalDetailLastPeriod``: amount and unit cost in 1/100000 USD."""

    amount: int
    note: str
    item_kind: int  # 3 energy/TOU/tier/demand, 4 fixed charge, 5 tax
    unit_cost: int | None = None
    measurement: tuple[int, int, int] | None = None  # (powerOfTenMultiplier, uom, value)
    item_period: tuple[int, int] | None = None  # (start, duration)


@dataclass(frozen=True)
class Bill:
    """Everything a UsageSummary carries for one billing period of one SA."""

    usage_point_id: str
    start: int
    end: int
    issued_at: int
    usage: int  # billed total in value units (Wh x 10^-3, therms x 10^-3)
    uom: int
    commodity: int
    quality: int
    billed_flow_direction: int
    tou_volumes: tuple[tuple[int, int], ...]  # (TOU code, volume), ascending code
    tier_volumes: tuple[int, ...]  # tier 1 (baseline), tier 2
    max_demand_w: int | None
    line_items: tuple[LineItem, ...]
    rate_schedule: str
    read_cycle: str

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def total(self) -> int:
        """billLastPeriod: exactly the sum of the line items."""
        return sum(item.amount for item in self.line_items)


def read_day(read_cycle: str) -> int:
    """Day of month on which cycle ``read_cycle`` (A..Z) is read: A reads on the 1st, B on the 2nd, ..."""
    return 1 + (ord(read_cycle) - ord("A")) % 28


@lru_cache(maxsize=4096)  # pure; called some 70 times per SA for a three-year window
def _boundary(year: int, month: int, read_cycle: str) -> int:
    return day_start(date(year, month, read_day(read_cycle)))


def bill_periods(sa: ServiceAgreementModel, start: float, end: float) -> Iterator[tuple[int, int]]:
    """Billing periods ``(start, end)`` overlapping [start, end), cut at the read-cycle day each month.

    The first period begins at the local midnight of ``sa_start``.
    """
    first = local_midnight(sa.sa_start)
    d = local_date(max(first, start))
    year, month = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
    lo = _boundary(year, month, sa.read_cycle)
    while lo < end:
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
        hi = _boundary(year, month, sa.read_cycle)
        p_start = max(lo, first)
        if hi > p_start and hi > start:
            yield p_start, hi
        lo = hi


def _round(x: float) -> int:
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def _unit(sa: ServiceAgreementModel) -> float:
    """Value units per kWh (electric) or per therm (gas)."""
    return 1e3 if sa.commodity == "gas" else 1e6


def _billed_series(sa: ServiceAgreementModel, day: date, overrides: Overrides | None):
    """(starts, values, tou codes, qualities, interval length) of the billed flow for one day, all meters summed."""
    flows = sa.flow_directions
    signs = ((4, 1),) if 4 in flows else ((1, 1), (19, -1)) if 19 in flows else ((1, 1),)
    totals: dict[int, int] = {}
    qualities: set[int] = set()
    length = 0
    for meter in range(1, sa.meters + 1):
        for flow, sign in signs:
            block = day_readings(sa, meter, flow, day, overrides)
            if block is None:
                continue
            length = block.duration
            qualities.update(block.qualities or (block.quality,))
            for t, v in zip(block.starts, block.values, strict=True):
                totals[t] = totals.get(t, 0) + sign * v
    starts = sorted(totals)
    s, e = day_start(day), day_start(day + timedelta(days=1))
    codes = day_tou_codes(sa.tou_calendar, day.month, e - s, sa.interval_length)
    if len(codes) == len(starts):
        tou = list(codes)
    else:  # overrides left gaps: code each interval from its own position
        step = sa.interval_length
        tou = [codes[min(len(codes) - 1, (t - s) // step)] for t in starts]
    return starts, [totals[t] for t in starts], tou, qualities, length


def compute_bill(
    sa: ServiceAgreementModel,
    period_start: int,
    period_end: int,
    issued_at: int,
    overrides: Overrides | None = None,
) -> Bill:
    """Price one billing period from its readings (interval SAs) or daily usage (non-interval SAs)."""
    if overrides is None:
        return _compute_bill_cached(sa, period_start, period_end, issued_at)
    return _compute_bill(sa, period_start, period_end, issued_at, overrides)


@lru_cache(maxsize=1024)
def _compute_bill_cached(sa: ServiceAgreementModel, period_start: int, period_end: int, issued_at: int) -> Bill:
    return _compute_bill(sa, period_start, period_end, issued_at, None)


def _compute_bill(
    sa: ServiceAgreementModel, period_start: int, period_end: int, issued_at: int, overrides: Overrides | None
) -> Bill:
    rate: RateSchedule = RATE_SCHEDULES[sa.rate_schedule]
    unit = _unit(sa)
    days = list(iter_local_days(period_start, period_end))
    baseline = sum(rate.baseline_per_day[0 if season(d.month) == "summer" else 1] for d in days) * unit
    usage = 0
    tou: dict[int, int] = {}
    tiers = [0, 0]
    tier = 0
    max_demand = None
    qualities: set[int] = set()
    for day in days:
        if sa.is_interval:
            _, values, codes, q, length = _billed_series(sa, day, overrides)
            qualities |= q
            if values and rate.demand_price_per_kw:
                peak = max(values) * 3.6 / length  # mWh per interval -> W
                max_demand = peak if max_demand is None else max(max_demand, peak)
        else:
            values = [sum(daily_usage(sa, m, day) for m in range(1, sa.meters + 1))]
            codes = []
            qualities.add(sa.reading_quality)
        for i, v in enumerate(values):
            usage += v
            if rate.tou:
                tou[codes[i]] = tou.get(codes[i], 0) + v
            if tier == 0 and baseline and tiers[0] + v > baseline:
                tier = 1
            tiers[tier] += v

    period = (period_start, period_end - period_start)
    uom = sa.uom
    items: list[LineItem] = []
    if rate.tou:
        for code in sorted(tou):
            price = rate.tou_prices[code]
            items.append(LineItem(_round(tou[code] / unit * price), f"Total {TOU_NOTES[code]} Usage", 3, price,
                                  (-3, uom, tou[code]), period))
        if rate.baseline_credit:
            items.append(LineItem(_round(tiers[0] / unit * rate.baseline_credit), "Baseline Credit", 3,
                                  rate.baseline_credit, (-3, uom, tiers[0]), period))
    elif rate.tier_prices:
        for n, (volume, price) in enumerate(zip(tiers, rate.tier_prices, strict=True), start=1):
            items.append(LineItem(_round(volume / unit * price), f"Tier {n} Usage", 3, price,
                                  (-3, uom, volume), period))
    if rate.demand_price_per_kw and max_demand is not None:
        watts = _round(max_demand)
        items.append(LineItem(_round(watts / 1000 * rate.demand_price_per_kw), "Max Demand Charge", 3,
                              rate.demand_price_per_kw, (0, 38, watts), period))
    if rate.customer_charge_per_day:
        items.append(LineItem(len(days) * rate.customer_charge_per_day, rate.customer_charge_note, 4,
                              rate.customer_charge_per_day, None, period))
    if rate.surcharge_per_unit:
        taxable = max(usage, 0)
        items.append(LineItem(_round(taxable / unit * rate.surcharge_per_unit), rate.surcharge_note, 5,
                              rate.surcharge_per_unit, (-3, uom, taxable), period))
    quality = qualities.pop() if len(qualities) == 1 else (13 if qualities else sa.reading_quality)
    return Bill(
        usage_point_id=sa.usage_point_id, start=period_start, end=period_end, issued_at=issued_at, usage=usage,
        uom=uom, commodity=sa.espi_commodity, quality=quality, billed_flow_direction=sa.billed_flow_direction,
        tou_volumes=tuple(sorted(tou.items())), tier_volumes=tuple(tiers),
        max_demand_w=None if max_demand is None else _round(max_demand), line_items=tuple(items),
        rate_schedule=sa.rate_schedule, read_cycle=sa.read_cycle,
    )


def bills(
    sa: ServiceAgreementModel,
    start: float,
    end: float,
    now: float,
    *,
    overrides: Overrides | None = None,
    bill_delay: int = DEFAULT_BILL_DELAY,
) -> Iterator[Bill]:
    """Issued bills whose period overlaps [start, end): only periods closed and billed by ``now``."""
    for p_start, p_end in bill_periods(sa, start, min(end, now)):
        issued = p_end + bill_delay
        if issued > now:
            break
        yield compute_bill(sa, p_start, p_end, issued, overrides)
