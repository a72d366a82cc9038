"""Date windows of spec 6.1/6.2 (checklist 88-92): formats, defaults, aliases, errors."""

from __future__ import annotations

import datetime as dt

import pytest

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.windows import DataWindow, WindowError, local_day_window, parse_window

# 2024-07-03 10:00 PDT
NOW = dt.datetime(2024, 7, 3, 10, 0, tzinfo=PACIFIC).timestamp()


def _local(y: int, m: int, d: int) -> float:
    return dt.datetime(y, m, d, tzinfo=PACIFIC).timestamp()


def test_default_is_the_previous_local_day() -> None:
    window = parse_window({}, NOW)
    assert (window.published_min, window.published_max) == (_local(2024, 7, 2), _local(2024, 7, 3))
    t2 = parse_window({}, NOW, default_window="T-2")
    assert (t2.published_min, t2.published_max) == (_local(2024, 7, 1), _local(2024, 7, 2))


def test_default_day_spans_dst_changes() -> None:
    start, end = local_day_window(dt.datetime(2024, 3, 11, 9, tzinfo=PACIFIC).timestamp(), 1)
    assert end - start == 23 * 3600  # 2024-03-10 spring forward
    start, end = local_day_window(dt.datetime(2024, 11, 4, 9, tzinfo=PACIFIC).timestamp(), 1)
    assert end - start == 25 * 3600


def test_zulu_and_epoch_are_both_accepted() -> None:
    zulu = parse_window({"published-min": "2024-07-01T07:00:00Z", "published-max": "2024-07-02T07:00:00Z"}, NOW)
    epoch = parse_window({"published-min": "1719817200", "published-max": "1719903600"}, NOW)
    assert zulu == epoch == DataWindow(1719817200.0, 1719903600.0)


@pytest.mark.parametrize("value", ["2024-07-01T00:00:00-07:00", "2024-07-01", "2024-07-01T07:00:00.000Z",
                                   "yesterday", "", "2024-13-01T00:00:00Z"])
def test_other_forms_are_rejected_naming_the_parameter(value: str) -> None:
    with pytest.raises(WindowError) as info:
        parse_window({"published-min": value, "published-max": "1719903600"}, NOW)
    assert "published-min" in str(info.value)
    assert "epoch seconds" in str(info.value)


def test_strict_and_lenient_modes() -> None:
    with pytest.raises(WindowError, match="UTC with Z"):
        parse_window({"published-min": "1719817200"}, NOW, strict=True)
    lenient = parse_window({"published-min": "2024-07-01T00:00:00-07:00",
                            "published-max": "2024-07-02T00:00:00.5-07:00"}, NOW, lenient=True)
    assert lenient.published_min == 1719817200.0
    assert lenient.published_max == 1719903600.5


def test_min_must_precede_max() -> None:
    with pytest.raises(WindowError, match="published-min must be earlier"):
        parse_window({"published-min": "1719903600", "published-max": "1719903600"}, NOW)
    with pytest.raises(WindowError, match="updated-min must be earlier"):
        parse_window({"updated-min": "1719903600", "updated-max": "1719817200"}, NOW)


def test_unhyphenated_alias_and_hyphenated_wins() -> None:
    window = parse_window({"publishedmin": "1719817200", "publishedmax": "1719903600"}, NOW)
    assert window.published_max == 1719903600.0
    both = parse_window({"published-max": "1719900000", "publishedmax": "1719903600",
                         "published-min": "1719817200"}, NOW)
    assert both.published_max == 1719900000.0
    with pytest.raises(WindowError):
        parse_window({"publishedmin": "bad"}, NOW)
    off = parse_window({"publishedmin": "1719817200"}, NOW, accept_unhyphenated=False)
    assert off.published_min == _local(2024, 7, 2)  # alias ignored: T-1 default


def test_one_bound_and_future_max() -> None:
    only_min = parse_window({"published-min": "1719817200"}, NOW)
    assert only_min.published_max == NOW
    only_max = parse_window({"published-max": "1719903600"}, NOW)
    assert only_max.published_min == 1719903600.0 - 86400
    future = parse_window({"published-min": "1719817200", "published-max": str(int(NOW) + 86400 * 30)}, NOW)
    assert future.published_max == NOW


def test_updated_window_disables_the_default() -> None:
    window = parse_window({"updated-min": "1719817200"}, NOW)
    assert window.published_min is None and window.published_max is None
    assert window.by_updated
    both = parse_window({"updated-min": "1719817200", "published-min": "1719817200",
                         "published-max": "1719903600"}, NOW)
    assert both.published_min == 1719817200.0 and both.updated_min == 1719817200.0


def test_snapshot_endpoints_ignore_published_dates() -> None:
    window = parse_window({"published-min": "garbage"}, NOW, use_published=False)
    assert window == DataWindow(None, None)
