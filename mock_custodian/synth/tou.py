"""Time-of-use calendar (§7.8) and the ProgramIdMappings table.

The codes depend only on the local month and local hour, so a day's code
sequence is cached per (calendar, month, day length, interval length).
"""

from __future__ import annotations

from functools import lru_cache

from mock_custodian.synth.localtime import seconds_of_day

#: (code, name, note) exactly as the ProgramIdMappings entry lists them.
PROGRAM_ID_MAPPINGS: tuple[tuple[int, str, str], ...] = (
    (1, "SPK", "Summer Peak"),
    (2, "SOP", "Summer Off Peak"),
    (3, "SPP", "Summer Partial Peak"),
    (4, "WPK", "Winter Peak"),
    (5, "WPP", "Winter Partial Peak"),
    (6, "WOP", "Winter Off Peak"),
    (7, "MPK", "Spring Peak"),
    (8, "MOP", "Spring Off Peak"),
    (9, "MXO", "Spring Super Off Peak"),
)
TOU_NOTES: dict[int, str] = {code: note for code, _, note in PROGRAM_ID_MAPPINGS}
TOU_CALENDARS = ("standard", "with_spring")

SUMMER_MONTHS = frozenset({6, 7, 8, 9})
SPRING_MONTHS = frozenset({3, 4, 5})
PEAK_HOURS = range(16, 21)
SUPER_OFF_PEAK_HOURS = range(9, 14)


def season(month: int, calendar: str = "standard") -> str:
    """'summer', 'winter' or (with_spring only) 'spring' for a local month."""
    if month in SUMMER_MONTHS:
        return "summer"
    if calendar == "with_spring" and month in SPRING_MONTHS:
        return "spring"
    return "winter"


def tou_code(month: int, hour: int, calendar: str = "standard") -> int:
    """TOU code of an interval starting at local ``hour`` in local ``month``."""
    s = season(month, calendar)
    peak = hour in PEAK_HOURS
    if s == "summer":
        return 1 if peak else 2
    if s == "spring":
        if peak:
            return 7
        return 9 if hour in SUPER_OFF_PEAK_HOURS else 8
    return 4 if peak else 6


@lru_cache(maxsize=1024)
def day_tou_codes(calendar: str, month: int, day_length: int, interval_length: int) -> tuple[int, ...]:
    """TOU code of every interval of one local day (DST days included)."""
    if interval_length >= 86400:
        return (tou_code(month, 0, calendar),)
    return tuple(tou_code(month, sod // 3600, calendar) for sod in seconds_of_day(day_length, interval_length))
