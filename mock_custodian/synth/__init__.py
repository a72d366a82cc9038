"""Pure data engine: meter profiles, deterministic interval values, TOU calendar and bills.

Nothing here reads a clock or imports the web layer or the store; every
function takes the instants it needs.
"""

from mock_custodian.synth.billing import Bill, LineItem, bill_periods, bills, compute_bill, read_day
from mock_custodian.synth.config import PROFILE_NAMES, ServiceAgreementModel
from mock_custodian.synth.localtime import PACIFIC, day_bounds, iter_local_days, local_date, local_midnight
from mock_custodian.synth.profiles import PROFILES, daily_usage, interval_values, pv_production
from mock_custodian.synth.rates import RATE_SCHEDULES, RateSchedule
from mock_custodian.synth.readings import DayReadings, Overrides, day_readings, interval_value, iter_day_readings
from mock_custodian.synth.tou import PROGRAM_ID_MAPPINGS, tou_code

__all__ = [
    "PACIFIC",
    "PROFILES",
    "PROFILE_NAMES",
    "PROGRAM_ID_MAPPINGS",
    "RATE_SCHEDULES",
    "Bill",
    "DayReadings",
    "LineItem",
    "Overrides",
    "RateSchedule",
    "ServiceAgreementModel",
    "bill_periods",
    "bills",
    "compute_bill",
    "daily_usage",
    "day_bounds",
    "day_readings",
    "interval_value",
    "interval_values",
    "iter_day_readings",
    "iter_local_days",
    "local_date",
    "local_midnight",
    "pv_production",
    "read_day",
    "tou_code",
]
