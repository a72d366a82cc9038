"""The one source of business time ("now") for the whole simulator.

Real time plus an offset, or a frozen instant. The state is stored in the database (by the store
layer) so every gunicorn worker and the job worker agree; this module only does the arithmetic.
Certificate validity is the one exception and always uses real time.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
# The instants simulated time may reach: every window, deadline and local-day computation around them
# stays inside what datetime can represent (years 1..9999), so a clock moved to the edge never breaks.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC).timestamp()
LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC).timestamp()


@dataclass(frozen=True)
class ClockState:
    """Offset from real time in seconds, or a frozen epoch instant (which wins when set)."""

    offset_s: float = 0.0
    frozen_at: float | None = None

    def now_epoch(self, real: float) -> float:
        return self.frozen_at if self.frozen_at is not None else real + self.offset_s


class Clock:
    """Reads the shared state on every call (one indexed row, never stale), unless the thread pinned it.

    A request handler pins the state read at its start (:meth:`pin`): the request then sees one clock
    setting throughout, and pays one read instead of one per ``epoch()``. Real time still runs: a pinned
    running clock keeps advancing, a pinned frozen one stays put. Requests that move the clock (the
    control API) do not pin.
    """

    def __init__(self, read_state: Callable[[], ClockState], real_time: Callable[[], float] = time.time):
        self._read_state = read_state
        self._real_time = real_time
        self._pinned = threading.local()

    def pin(self) -> ClockState:
        """Read the shared state once and use it for this thread's calls until :meth:`unpin`."""
        state = self._read_state()
        self._pinned.state = state
        return state

    def unpin(self) -> None:
        self._pinned.state = None

    def state(self) -> ClockState:
        pinned = getattr(self._pinned, "state", None)
        return pinned if pinned is not None else self._read_state()

    def epoch(self) -> float:
        """Simulated now, in epoch seconds (float)."""
        return self.state().now_epoch(self._real_time())

    def now(self) -> dt.datetime:
        """Simulated now, timezone-aware UTC."""
        return dt.datetime.fromtimestamp(self.epoch(), dt.UTC)

    def local_now(self) -> dt.datetime:
        """Simulated now in America/Los_Angeles, for local-day arithmetic."""
        return self.now().astimezone(PACIFIC)

    def real_epoch(self) -> float:
        return self._real_time()


def advanced(state: ClockState, seconds: float, real: float) -> ClockState:
    """The state after moving simulated time forward (or back) by ``seconds``."""
    if state.frozen_at is not None:
        return ClockState(state.offset_s, state.frozen_at + seconds)
    return ClockState(state.offset_s + seconds, None)


def set_to(state: ClockState, instant: float, real: float) -> ClockState:
    """The state whose now is ``instant``, keeping frozen-ness."""
    if state.frozen_at is not None:
        return ClockState(state.offset_s, instant)
    return ClockState(instant - real, None)


def frozen(state: ClockState, real: float) -> ClockState:
    return ClockState(state.offset_s, state.now_epoch(real))


def thawed(state: ClockState, real: float) -> ClockState:
    """Resume running from the frozen instant."""
    if state.frozen_at is None:
        return state
    return ClockState(state.frozen_at - real, None)


def check_instant(epoch: float) -> float:
    """``epoch`` if simulated time may be there (finite, 1970 to 2999), else ValueError saying so."""
    if not math.isfinite(epoch) or not EARLIEST <= epoch < LATEST:
        raise ValueError(f"{epoch!r} is outside the simulated calendar (1970-01-01 to 2999-12-31 UTC)")
    return epoch


def parse_instant(text: str) -> float:
    """An ISO 8601 instant with zone (``2026-03-01T00:00Z``) or epoch seconds, as epoch seconds.

    Instants outside 1970-2999 are refused (ValueError) so nothing downstream overflows.
    """
    raw = text.strip()
    try:
        number = float(raw)
    except ValueError:
        number = None
    if number is not None:
        return check_instant(number)
    if raw.endswith("Z") or raw.endswith("z"):
        raw = raw[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError(f"instant {text!r} has no time zone; add Z or an offset")
    try:
        return check_instant(value.timestamp())
    except OverflowError:
        raise ValueError(f"{text!r} is outside the simulated calendar (1970-01-01 to 2999-12-31 UTC)") from None


# The pytest plugin's servers start their (running) clock at this Pacific time of the current day, so a
# "fetch yesterday" test sees yesterday published (06:00) whatever the hour the suite runs at.
DEFAULT_TEST_START = "12:00"


def start_instant(spec: str, real: float) -> float | None:
    """Where a test server's clock starts, given the real epoch; None leaves it at real time.

    ``spec``: ``real``; ``HH:MM`` (that Pacific time on the real Pacific date); ``YYYY-MM-DD`` (12:00
    Pacific that day); or an instant with zone / epoch seconds. The clock keeps running from there.
    """
    text = spec.strip()
    if text.lower() == "real":
        return None
    if len(text) == 5 and text[2] == ":" and text.replace(":", "").isdigit():
        hour, minute = int(text[:2]), int(text[3:])
        if hour > 23 or minute > 59:
            raise ValueError(f"clock start {spec!r}: not a time of day")
        today = dt.datetime.fromtimestamp(real, PACIFIC).date()
        return dt.datetime(today.year, today.month, today.day, hour, minute, tzinfo=PACIFIC).timestamp()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        day = dt.date.fromisoformat(text)
        return dt.datetime(day.year, day.month, day.day, 12, tzinfo=PACIFIC).timestamp()
    try:
        return parse_instant(text)
    except ValueError:
        raise ValueError(f"clock start {spec!r}: use real, HH:MM (Pacific, today), YYYY-MM-DD (12:00 Pacific) "
                         "or an instant with zone") from None


def real_epoch() -> float:
    """Real (wall-clock) time, for the few callers outside a server that must anchor to it (test start)."""
    return time.time()


def local_time(epoch: float | None) -> str:
    """A Pacific wall-clock rendering for pages and e-mails."""
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, PACIFIC).strftime("%Y-%m-%d %H:%M %Z")


def iso(epoch: float | None) -> str | None:
    """An epoch instant as ISO 8601 UTC with ``Z``, to the millisecond."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
