"""A small, invented rate table per rate schedule, used to price UsageSummaries.

The prices only need to be plausible and internally consistent: every bill is
the exact sum of its line items, in hundred-thousandths of a dollar (§7.9).
Energy prices are per kWh (electric) or per therm (gas).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# 1 USD = 100000 units
USD = 100_000


@dataclass(frozen=True)
class RateSchedule:
    """Prices for one schedule; all money values are 1/100000 USD."""

    name: str
    commodity: str  # "electric" or "gas"
    tou: bool
    #: TOU code -> price per kWh (TOU schedules only)
    tou_prices: dict[int, int] = field(default_factory=dict)
    #: price per unit in tier 1 and tier 2 (tiered schedules); tier 1 is the baseline allowance
    tier_prices: tuple[int, int] | None = None
    #: credit per kWh of baseline (tier-1) volume on TOU schedules, negative
    baseline_credit: int = 0
    #: baseline allowance per day, (summer, winter), in kWh or therms
    baseline_per_day: tuple[float, float] = (0.0, 0.0)
    customer_charge_per_day: int = 0
    customer_charge_note: str = "Customer Charge"
    #: price per kW of the period's maximum 15-minute or hourly demand
    demand_price_per_kw: int = 0
    #: per-unit tax or surcharge (itemKind 5)
    surcharge_per_unit: int = 0
    surcharge_note: str = "Energy Commission Tax"


_RES_TOU_BASE = dict(customer_charge_per_day=79_000, customer_charge_note="Base Services Charge")

RATE_SCHEDULES: dict[str, RateSchedule] = {
    r.name: r
    for r in (
        RateSchedule(
            "E-1", "electric", False, tier_prices=(36_000, 45_000), baseline_per_day=(12.0, 11.0),
            surcharge_per_unit=30, **_RES_TOU_BASE,
        ),
        RateSchedule(
            "E-TOU-C", "electric", True,
            tou_prices={1: 60_000, 2: 45_000, 4: 49_000, 6: 46_000, 7: 49_000, 8: 46_000, 9: 40_000},
            baseline_credit=-10_000, baseline_per_day=(12.0, 11.0), surcharge_per_unit=30, **_RES_TOU_BASE,
        ),
        RateSchedule(
            "E-TOU-D", "electric", True,
            tou_prices={1: 55_000, 2: 42_000, 4: 47_000, 6: 43_000, 7: 47_000, 8: 43_000, 9: 38_000},
            surcharge_per_unit=30, **_RES_TOU_BASE,
        ),
        RateSchedule(
            "EV2-A", "electric", True,
            tou_prices={1: 62_000, 2: 31_000, 4: 49_000, 6: 31_000, 7: 49_000, 8: 31_000, 9: 29_000},
            surcharge_per_unit=30, **_RES_TOU_BASE,
        ),
        RateSchedule(
            "A-1", "electric", False, tier_prices=(33_000, 33_000), baseline_per_day=(0.0, 0.0),
            customer_charge_per_day=49_281, surcharge_per_unit=30,
        ),
        RateSchedule(
            "B-1", "electric", True,
            tou_prices={1: 38_000, 2: 29_000, 4: 31_000, 6: 27_000, 7: 31_000, 8: 27_000, 9: 20_000},
            customer_charge_per_day=49_281, surcharge_per_unit=30,
        ),
        RateSchedule(
            "B-19", "electric", True,
            tou_prices={1: 26_000, 2: 18_000, 4: 21_000, 6: 17_000, 7: 21_000, 8: 17_000, 9: 12_000},
            customer_charge_per_day=3_300_000, demand_price_per_kw=3_000_000, surcharge_per_unit=30,
        ),
        RateSchedule(
            "AG-C", "electric", True,
            tou_prices={1: 30_000, 2: 21_000, 4: 24_000, 6: 20_000, 7: 24_000, 8: 20_000, 9: 15_000},
            customer_charge_per_day=1_000_000, demand_price_per_kw=1_500_000, surcharge_per_unit=30,
        ),
        RateSchedule(
            "G-1", "gas", False, tier_prices=(200_000, 250_000), baseline_per_day=(0.5, 1.9),
            surcharge_per_unit=10_000, surcharge_note="Gas Public Purpose Program Surcharge",
        ),
        RateSchedule(
            "G-NR1", "gas", False, tier_prices=(170_000, 150_000), baseline_per_day=(133.0, 133.0),
            customer_charge_per_day=80_000, surcharge_per_unit=10_000,
            surcharge_note="Gas Public Purpose Program Surcharge",
        ),
    )
}
