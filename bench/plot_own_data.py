"""Plot a replayed recording (and its continued pattern) and a shaped profile to docs/own-data.png.

    pip install matplotlib   # the "plot" extra
    python bench/plot_own_data.py [--out docs/own-data.png]
"""

from __future__ import annotations

import argparse
import sys
from array import array
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from mock_custodian.synth import PACIFIC, ServiceAgreementModel, day_readings, iter_day_readings  # noqa: E402
from mock_custodian.synth.localtime import day_start  # noqa: E402
from mock_custodian.synth.recorded import Channel, Recording  # noqa: E402

EVENING = [1, 1, 1, 1, 1, 1, 2, 3, 2, 1, 1, 1, 1, 1, 1, 1, 2, 3, 5, 6, 5, 3, 2, 1]
SHAPE = {"annual": 5000, "noise": 0.15, "seed": 7, "weekday": EVENING, "weekend": [2.5] * 24,
         "seasons": {"summer": {"weight": 1.6}}}


def recorded_sa(first: date, last: date) -> ServiceAgreementModel:
    """Four weeks of a generated home replayed as a recording (what a CSV or Green Button file gives)."""
    source = ServiceAgreementModel.from_dict({"usage_point_id": "5391320451", "profile": "residential_hourly",
                                              "seed": 42, "sa_start": "2020-01-01"})
    starts, values = [], []
    for block in iter_day_readings(source, 1, 1, day_start(first), day_start(last + timedelta(days=1))):
        starts += block.starts
        values += block.values
    channel = Channel(1, 1, 3600, array("q", starts), array("q", values), array("B", [17] * len(starts)))
    recording = Recording.of({(1, 1): channel})
    model = ServiceAgreementModel.from_dict({"usage_point_id": "5391320452", "profile": "recorded",
                                             "recording": recording.digest, "sa_start": "2020-01-01"})
    return replace(model, recorded=recording)


def series(model: ServiceAgreementModel, first: date, days: int) -> tuple[list[datetime], list[float]]:
    times, values = [], []
    for i in range(days):
        block = day_readings(model, 1, 1, first + timedelta(days=i))
        if block is None:
            continue
        times += [datetime.fromtimestamp(t, PACIFIC) for t in block.starts]
        values += [v / 1e6 for v in block.values]
    return times, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "own-data.png"))
    args = parser.parse_args()
    fig, axes = plt.subplots(3, 1, figsize=(14, 9.5))

    first, last = date(2026, 3, 2), date(2026, 3, 29)
    model = recorded_sa(first, last)
    ax = axes[0]
    t, v = series(model, date(2026, 3, 16), 28)
    inside = [i for i, x in enumerate(t) if x.date() <= last]
    ax.plot([t[i] for i in inside], [v[i] for i in inside], lw=0.8, color="tab:blue", label="recorded (the file)")
    after = [i for i, x in enumerate(t) if x.date() > last]
    ax.plot([t[i] for i in after], [v[i] for i in after], lw=0.8, color="tab:orange",
            label="continued: same weekday of the last recorded week, scaled March -> April")
    ax.set_title("Replayed recording (hourly, file ends 2026-03-29) and its continued pattern")
    ax.set_ylabel("kWh per hour")
    ax.legend(loc="upper left", fontsize=8)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %m-%d", tz=PACIFIC))

    shaped = ServiceAgreementModel.from_dict({"usage_point_id": "5391320453", "profile": "shaped", "shape": SHAPE,
                                              "interval_length": 900, "sa_start": "2020-01-01"})
    ax = axes[1]
    for label, monday, color in (("winter week", date(2026, 1, 12), "tab:blue"),
                                 ("summer week", date(2026, 7, 13), "tab:red")):
        t, v = series(shaped, monday, 7)
        hours = [(x - datetime(monday.year, monday.month, monday.day, tzinfo=PACIFIC)).total_seconds() / 3600
                 for x in t]
        ax.plot(hours, [x * 4 for x in v], lw=0.8, color=color, label=label)
    ax.set_xticks(range(0, 169, 24), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", ""])
    ax.set_title("Shaped profile (15-minute): evening-peak weekdays, flat taller weekends, summer weight 1.6")
    ax.set_ylabel("kW (15-min average)")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[2]
    months = []
    for m in range(1, 13):
        lo = day_start(date(2026, m, 1))
        hi = day_start(date(2026 + (m == 12), m % 12 + 1, 1))
        months.append(sum(sum(b.values) for b in iter_day_readings(shaped, 1, 1, lo, hi)) / 1e6)
    ax.bar(range(1, 13), months, color="tab:green")
    ax.set_xticks(range(1, 13), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
    ax.set_title(f"Shaped profile, monthly kWh: {sum(months):,.0f} kWh in 2026 (target 5,000)")
    ax.set_ylabel("kWh")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
