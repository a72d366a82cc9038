"""Data-request windows (spec 6.1, 6.2): ``published-*`` / ``updated-*`` parsing and the T-1 default.

Pure functions of the query parameters, the simulated now and the quirk settings, so every rule is
unit-testable; the web layer turns :class:`WindowError` into PG&E's Q400.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mock_custodian.clock import PACIFIC

ZULU = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$")
EPOCH = re.compile(r"^-?\d{1,12}$")
LENIENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


class WindowError(ValueError):
    """A malformed or inconsistent window parameter; the message names it and the accepted forms."""


@dataclass(frozen=True)
class DataWindow:
    """Half-open windows in epoch seconds; ``None`` means that filter does not apply."""

    published_min: float | None
    published_max: float | None
    updated_min: float | None = None
    updated_max: float | None = None

    @property
    def by_updated(self) -> bool:
        return self.updated_min is not None or self.updated_max is not None


def _accepted(strict: bool, lenient: bool) -> str:
    if strict:
        return "UTC with Z, e.g. 2024-07-01T07:00:00Z"
    if lenient:
        return "RFC 3339 with Z or a numeric offset (fractions allowed), or integer epoch seconds"
    return "UTC with Z (e.g. 2024-07-01T07:00:00Z) or integer epoch seconds (e.g. 1719817200)"


def parse_instant(name: str, raw: str, *, strict: bool = False, lenient: bool = False) -> float:
    """One date parameter as epoch seconds, by PG&E's rules (Zulu, plus epoch seconds unless strict)."""
    value = raw.strip()
    match = ZULU.match(value)
    try:
        if match:
            y, mo, d, h, mi, s = (int(x) for x in match.groups())
            return dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC).timestamp()
        if not strict and EPOCH.match(value):
            return float(int(value))
        if lenient and LENIENT.match(value):
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    raise WindowError(f"{name} '{raw}' is not a valid date; accepted: {_accepted(strict, lenient)}")


def _param(args: Mapping[str, str], name: str, accept_unhyphenated: bool) -> tuple[str, str] | None:
    if name in args:
        return name, args[name]
    alias = name.replace("-", "")
    if accept_unhyphenated and alias in args:
        return alias, args[alias]
    return None


def local_day_window(now: float, days_back: int) -> tuple[float, float]:
    """The local calendar day ``days_back`` days before now's local date, as UTC epochs (DST-aware)."""
    today = dt.datetime.fromtimestamp(now, PACIFIC).date()
    day = today - dt.timedelta(days=days_back)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
    following = day + dt.timedelta(days=1)
    end = dt.datetime(following.year, following.month, following.day, tzinfo=PACIFIC)
    return start.timestamp(), end.timestamp()


def parse_window(
    args: Mapping[str, str],
    now: float,
    *,
    default_window: str = "T-1",
    strict: bool = False,
    lenient: bool = False,
    accept_unhyphenated: bool = True,
    use_published: bool = True,
) -> DataWindow:
    """Read ``published-min/max`` and ``updated-min/max`` per spec 6.1-6.2.

    ``use_published`` is False for snapshot endpoints (customer data), which ignore dates.
    """

    def read(name: str) -> float | None:
        found = _param(args, name, accept_unhyphenated)
        if found is None:
            return None
        return parse_instant(found[0], found[1], strict=strict, lenient=lenient)

    updated_min, updated_max = read("updated-min"), read("updated-max")
    if updated_min is not None and updated_max is not None and updated_min >= updated_max:
        raise WindowError("updated-min must be earlier than updated-max")
    if not use_published:
        return DataWindow(None, None, updated_min, updated_max)
    published_min, published_max = read("published-min"), read("published-max")
    if published_min is None and published_max is None:
        if updated_min is not None or updated_max is not None:
            return DataWindow(None, None, updated_min, updated_max)  # no T-1 default with updated-*
        if default_window not in ("T-1", "T-2"):
            raise ValueError(f"default_window must be T-1 or T-2, not {default_window!r}")
        start, end = local_day_window(now, 1 if default_window == "T-1" else 2)
        return DataWindow(start, end, updated_min, updated_max)
    if published_min is not None and published_max is not None and published_min >= published_max:
        raise WindowError("published-min must be earlier than published-max")
    if published_max is None:
        published_max = now
    if published_min is None:
        published_min = published_max - 86400
    published_max = min(published_max, now)  # a future published-max is treated as now
    return DataWindow(published_min, published_max, updated_min, updated_max)
