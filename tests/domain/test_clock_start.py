"""Where the pytest plugin's clock starts (clock.start_instant): pure, with real time passed in."""

from __future__ import annotations

import datetime as dt

import pytest

from mock_custodian.clock import PACIFIC, start_instant


def pacific(*args: int) -> float:
    return dt.datetime(*args, tzinfo=PACIFIC).timestamp()


@pytest.mark.parametrize("real", [pacific(2026, 7, 4, 0, 5), pacific(2026, 7, 4, 3, 0), pacific(2026, 7, 4, 23, 59)])
def test_noon_is_today_pacific_whatever_the_hour(real: float) -> None:
    assert start_instant("12:00", real) == pacific(2026, 7, 4, 12, 0)


def test_today_is_the_pacific_date_not_the_utc_one() -> None:
    late_evening = pacific(2026, 7, 4, 20, 0)  # already 2026-07-05 in UTC
    assert dt.datetime.fromtimestamp(late_evening, dt.UTC).date() == dt.date(2026, 7, 5)
    assert start_instant("12:00", late_evening) == pacific(2026, 7, 4, 12, 0)


def test_dst_change_days_keep_local_noon() -> None:
    assert start_instant("12:00", pacific(2026, 3, 8, 1, 0)) == pacific(2026, 3, 8, 12, 0)
    assert start_instant("12:00", pacific(2026, 11, 1, 23, 0)) == pacific(2026, 11, 1, 12, 0)


def test_other_forms() -> None:
    real = pacific(2026, 7, 4, 9, 0)
    assert start_instant("real", real) is None
    assert start_instant("03:30", real) == pacific(2026, 7, 4, 3, 30)
    assert start_instant("2026-01-15", real) == pacific(2026, 1, 15, 12, 0)
    assert start_instant("2026-01-15T08:00:00Z", real) == dt.datetime(2026, 1, 15, 8, tzinfo=dt.UTC).timestamp()
    for bad in ("noon", "25:00", "2026-01-15T08:00"):
        with pytest.raises(ValueError, match="clock start"):
            start_instant(bad, real)
