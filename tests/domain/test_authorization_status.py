"""Status and expiry of an authorization (spec 8.3) as a pure function of the row and now."""

from __future__ import annotations

import datetime as dt

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.authorizations import (
    INDEFINITE_END,
    Duration,
    authorization_status,
    check_duration,
    end_of_local_day,
    expires_at,
    next_local_midnight,
)
from mock_custodian.store.models import Authorization


def _local(*args: int) -> float:
    return dt.datetime(*args, tzinfo=PACIFIC).timestamp()


def _row(**values: object) -> Authorization:
    base = {"id": 1, "third_party_id": 1, "kind": "customer", "created_at": _local(2026, 1, 1), "updated_at": 0.0,
            "ends_at": None, "revoked_at": None}
    base.update(values)
    return Authorization(**base)


def test_indefinite_is_active_with_pges_far_future_end() -> None:
    row = _row()
    assert authorization_status(row, _local(2099, 1, 1)) == 1
    assert expires_at(row) == INDEFINITE_END == 253402300799


def test_fixed_period_ends_at_local_midnight_after_the_chosen_date() -> None:
    end = Duration(dt.date(2026, 12, 31)).ends_at()
    assert end == _local(2027, 1, 1)
    row = _row(ends_at=end)
    assert authorization_status(row, end - 1) == 1
    assert authorization_status(row, end) == 0
    assert expires_at(row) == int(end)


def test_cancellation_runs_to_the_next_pacific_midnight_across_dst_changes() -> None:
    # The spring-forward day is 23 h long and the fall-back day 25 h: midnight is still local midnight.
    assert next_local_midnight(_local(2026, 3, 7, 12)) == dt.datetime(2026, 3, 8, 8, tzinfo=dt.UTC).timestamp()
    assert next_local_midnight(_local(2026, 3, 8, 12)) == dt.datetime(2026, 3, 9, 7, tzinfo=dt.UTC).timestamp()
    assert next_local_midnight(_local(2026, 11, 1, 0, 30)) == dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC).timestamp()
    # 23:59:59 local still belongs to today.
    assert next_local_midnight(_local(2026, 11, 22, 23, 59, 59)) == _local(2026, 11, 23)


def test_revocation_wins_over_a_later_end() -> None:
    row = _row(ends_at=_local(2027, 1, 1), revoked_at=_local(2026, 6, 1, 12))
    assert authorization_status(row, _local(2026, 6, 1, 11)) == 1
    assert authorization_status(row, _local(2026, 6, 1, 12)) == 0
    assert expires_at(row) == int(_local(2026, 6, 1, 12))


def test_end_date_must_be_a_future_day_not_before_min_auth_end_date() -> None:
    now = _local(2026, 11, 22, 10)
    assert check_duration(Duration(dt.date(2026, 11, 21)), now)  # past
    assert check_duration(Duration(dt.date(2026, 11, 22)), now)  # today is not in the future
    assert check_duration(Duration(dt.date(2026, 11, 23)), now) == {}
    assert check_duration(Duration(None), now, int(_local(2030, 1, 1))) == {}  # indefinite always satisfies it
    assert "end_date" in check_duration(Duration(dt.date(2027, 1, 1)), now, int(_local(2027, 6, 1, 12)))
    assert check_duration(Duration(dt.date(2027, 6, 1)), now, int(_local(2027, 6, 1, 12))) == {}
    assert end_of_local_day(dt.date(2027, 6, 1)) == _local(2027, 6, 2)
