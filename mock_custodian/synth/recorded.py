"""Recorded meter data: a customer's own readings replayed as an SA's intervals (issue 19).

A :class:`Recording` holds one channel per (meter, flow direction): ascending interval starts, values
(in the engine's units, Wh x 10^-3 or therms x 10^-3) and quality codes, in compact arrays. Inside the
recording's range the served block of a local day is exactly the recorded readings of that day. Outside
it (``outside="continue"``, the default) the file's pattern is continued: a day borrows the readings of
a day inside the range with the same weekday, 52 weeks away when the recording spans a year (the same
season, no scaling), else the nearest recorded week scaled by a fixed monthly seasonal index. With
``outside="none"`` days outside the range have no data. Both are pure functions of the recording and
the day, so overlapping requests agree and bills equal the sum of their intervals.

Nothing here touches the store: a recording is encoded to bytes (:meth:`Channel.encode`) for the
database, which keeps it once, and decoded back when an SA is served.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import operator
import struct
import sys
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from mock_custodian.synth.localtime import day_bounds, local_date, seconds_of_day

OUTSIDE_MODES = ("continue", "none")
INTERVAL_LENGTHS = (300, 900, 1800, 3600, 86400)
DAY_LENGTHS = (82800, 86400, 90000)

#: Relative daily energy by local month (January first), used to scale a borrowed day across seasons when
#: the recording is shorter than a year: Californian residential electric load, solar output, gas heating.
SEASONAL_INDEX: dict[str, tuple[float, ...]] = {
    "load": (1.10, 0.98, 0.95, 0.88, 0.90, 1.00, 1.18, 1.20, 1.08, 0.92, 0.95, 1.10),
    "solar": (0.55, 0.70, 0.95, 1.15, 1.30, 1.35, 1.35, 1.25, 1.10, 0.85, 0.60, 0.50),
    "gas": (1.90, 1.60, 1.30, 0.90, 0.60, 0.45, 0.40, 0.40, 0.45, 0.70, 1.20, 1.80),
}
_BIG_ENDIAN = sys.byteorder == "big"
_HEADER = struct.Struct("<4sIIIQ")  # magic, meter, flow, interval, count
_MAGIC = b"MCR1"


def _le(a: array) -> bytes:
    if _BIG_ENDIAN:  # pragma: no cover - the stored bytes are little-endian on any hardware
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _from_le(typecode: str, raw: bytes) -> array:
    a = array(typecode)
    a.frombytes(raw)
    if _BIG_ENDIAN:  # pragma: no cover
        a.byteswap()
    return a


@dataclass(frozen=True, eq=False)
class Channel:
    """One recorded channel: parallel arrays of starts (epoch s), values and quality codes."""

    meter: int
    flow_direction: int
    interval_length: int
    starts: array
    values: array
    qualities: array

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def first_day(self) -> date:
        return local_date(self.starts[0])

    @property
    def last_day(self) -> date:
        return local_date(self.starts[-1])

    def day(self, day: date) -> tuple[array, array, array]:
        """(starts, values, qualities) of the readings starting within one local day."""
        lo_t, hi_t = day_bounds(day)
        lo = bisect.bisect_left(self.starts, lo_t)
        hi = bisect.bisect_left(self.starts, hi_t, lo)
        return self.starts[lo:hi], self.values[lo:hi], self.qualities[lo:hi]

    def encode(self) -> bytes:
        """Compact, compressed bytes: start deltas (int32), values (int64), qualities (uint8)."""
        deltas = array("q", self.starts[:1])
        deltas.extend(map(operator.sub, self.starts[1:], self.starts[:-1]))
        body = _le(deltas) + _le(self.values) + self.qualities.tobytes()
        header = _HEADER.pack(_MAGIC, self.meter, self.flow_direction, self.interval_length, len(self.starts))
        return header + zlib.compress(body, 6)

    @classmethod
    def decode(cls, raw: bytes) -> Channel:
        magic, meter, flow, interval, n = _HEADER.unpack_from(raw)
        if magic != _MAGIC:
            raise ValueError("not a recorded channel")
        body = zlib.decompress(raw[_HEADER.size:])
        starts = array("q", itertools.accumulate(_from_le("q", body[:8 * n])))
        values = _from_le("q", body[8 * n:16 * n])
        qualities = array("B", body[16 * n:])
        return cls(meter, flow, interval, starts, values, qualities)


def recording_digest(channels: Mapping[tuple[int, int], Channel]) -> str:
    """A content hash naming a recording: the same readings always get the same name."""
    h = hashlib.sha256()
    for key in sorted(channels):
        ch = channels[key]
        h.update(b"%d|%d|%d|" % (ch.meter, ch.flow_direction, ch.interval_length))
        h.update(_le(ch.starts))
        h.update(_le(ch.values))
        h.update(ch.qualities.tobytes())
    return h.hexdigest()[:32]


@dataclass(frozen=True, eq=False)
class Recording:
    """All channels of one usage point's recorded data, named by its content digest."""

    digest: str
    channels: Mapping[tuple[int, int], Channel] = field(repr=False)

    @classmethod
    def of(cls, channels: Mapping[tuple[int, int], Channel]) -> Recording:
        return cls(recording_digest(channels), dict(channels))

    @property
    def interval_length(self) -> int:
        return next(iter(self.channels.values())).interval_length

    @property
    def meters(self) -> int:
        return max(m for m, _ in self.channels)

    @property
    def flow_directions(self) -> tuple[int, ...]:
        return tuple(sorted({f for _, f in self.channels}, key=(1, 19, 4).index))

    @property
    def first_day(self) -> date:
        return min(ch.first_day for ch in self.channels.values())

    @property
    def last_day(self) -> date:
        return max(ch.last_day for ch in self.channels.values())

    def readings(self) -> int:
        return sum(len(ch) for ch in self.channels.values())


# --------------------------------------------------------------------------- continuing the pattern
def source_day(first: date, last: date, day: date) -> tuple[date, float] | None:
    """The recorded day whose readings a day outside [first, last] borrows, and the seasonal factor's months.

    Returns (source day, 0.0) for a 52-week shift (no scaling needed) or (source day, 1.0) when the
    caller must scale by the seasonal index; None when the recording is shorter than a week.
    """
    if first <= day <= last:
        return day, 0.0
    span = (last - first).days + 1
    if span >= 364:
        step = 364
    elif span >= 7:
        step = 7
    else:
        return None
    if day > last:
        k = -(-(day - last).days // step)
        src = day - timedelta(days=k * step)
    else:
        k = -(-(first - day).days // step)
        src = day + timedelta(days=k * step)
    return src, (0.0 if step == 364 else 1.0)


def continued_day(channel: Channel, day: date, kind: str) -> tuple[list[int], list[int], list[int]] | None:
    """Readings of a day outside the recording: a recorded day's readings at the same wall-clock times."""
    found = source_day(channel.first_day, channel.last_day, day)
    if found is None:
        return None
    src, seasonal = found
    starts, values, qualities = channel.day(src)
    for _ in range(8):  # the chosen day is a hole in the file: step one week further inside
        if len(starts):
            break
        src += timedelta(days=7) if src < day else timedelta(days=-7)
        if not channel.first_day <= src <= channel.last_day:
            return None
        starts, values, qualities = channel.day(src)
    if not len(starts):
        return None
    factor = 1.0
    if seasonal:
        index = SEASONAL_INDEX[kind]
        factor = index[day.month - 1] / index[src.month - 1]
    t0, t1 = day_bounds(day)
    s0, s1 = day_bounds(src)
    L = channel.interval_length
    if L >= 86400:
        return [t0], [_scale(values[0], factor)], [qualities[0]]
    by_wall: dict[int, int] = {}
    src_wall = seconds_of_day(s1 - s0, L)
    for t, i in zip(starts, range(len(starts)), strict=True):
        k = (t - s0) // L
        if 0 <= k < len(src_wall):
            by_wall.setdefault(src_wall[k], i)
    out_s: list[int] = []
    out_v: list[int] = []
    out_q: list[int] = []
    for k, sod in enumerate(seconds_of_day(t1 - t0, L)):
        # a 23-hour source day lacks 02:00-03:00 (take the hour before); a 25-hour target repeats 01:00-02:00
        i = by_wall.get(sod, by_wall.get(sod - 3600))
        if i is None:
            continue
        out_s.append(t0 + k * L)
        out_v.append(_scale(values[i], factor))
        out_q.append(qualities[i])
    return out_s, out_v, out_q


def _scale(value: int, factor: float) -> int:
    if factor == 1.0:
        return int(value)
    x = value * factor
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def served_day(recording: Recording, meter: int, flow: int, day: date, *, outside: str, commodity: str,
               not_before: int) -> tuple[list[int], list[int], list[int]] | None:
    """(starts, values, qualities) a recorded SA serves for one channel-day: the recorded (or continued)
    readings at or after ``not_before`` (the SA's start); None when there are none."""
    if day_bounds(day)[1] <= not_before:
        return None
    found = recorded_day(recording, meter, flow, day, outside, commodity)
    if found is None or not found[0]:
        return None
    starts, values, qualities = found
    keep = [i for i, t in enumerate(starts) if t >= not_before]
    if len(keep) != len(starts):
        starts, values, qualities = ([x[i] for i in keep] for x in (starts, values, qualities))
        if not starts:
            return None
    return starts, values, qualities


def recorded_day(recording: Recording, meter: int, flow: int, day: date, outside: str,
                 commodity: str) -> tuple[list[int], list[int], list[int]] | None:
    """(starts, values, qualities) served for one channel-day, or None for no data.

    A net channel (flow 4) the file does not carry is delivered minus received at each start.
    """
    channel = recording.channels.get((meter, flow))
    if channel is None:
        if flow == 4 and (meter, 1) in recording.channels:
            delivered = recorded_day(recording, meter, 1, day, outside, commodity)
            received = recorded_day(recording, meter, 19, day, outside, commodity)
            if delivered is None:
                return None
            minus = dict(zip(received[0], received[1], strict=True)) if received else {}
            return delivered[0], [v - minus.get(t, 0) for t, v in zip(delivered[0], delivered[1], strict=True)], \
                delivered[2]
        return None
    if channel.first_day <= day <= channel.last_day:
        starts, values, qualities = channel.day(day)
        if not len(starts):
            return None
        return list(starts), list(values), list(qualities)
    if outside != "continue":
        return None
    kind = "gas" if commodity == "gas" else ("solar" if flow == 19 else "load")
    return continued_day(channel, day, kind)
