"""Plot one summer and one winter week of every profile to docs/profiles-week.png.

    pip install matplotlib   # the "plot" extra
    python bench/plot_profiles.py [--out docs/profiles-week.png]
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from mock_custodian.synth import (  # noqa: E402
    PACIFIC,
    PROFILE_NAMES,
    ServiceAgreementModel,
    daily_usage,
    day_readings,
    pv_production,
)

WEEKS = {"summer": date(2026, 7, 13), "winter": date(2026, 1, 12)}  # both start on a Monday


def sa(profile: str) -> ServiceAgreementModel:
    return ServiceAgreementModel.from_dict({"usage_point_id": "5391320451", "profile": profile, "seed": 42,
                                            "climate_zone": 12, "sa_start": "2020-01-01"})


def week(model: ServiceAgreementModel, first: date, flow: int = 1, pv: bool = False):
    times, values = [], []
    for i in range(7):
        day = first + timedelta(days=i)
        block = day_readings(model, 1, flow, day)
        series = pv_production(model, 1, day) if pv else block.values
        times += [datetime.fromtimestamp(t, PACIFIC) for t in block.starts]
        values += [v / (1e3 if model.commodity == "gas" else 1e6) for v in series]
    return times, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "profiles-week.png"))
    args = parser.parse_args()
    fig, axes = plt.subplots(len(PROFILE_NAMES), 2, figsize=(14, 2.3 * len(PROFILE_NAMES)), sharex="col")
    for row, profile in enumerate(PROFILE_NAMES):
        model = sa(profile)
        for col, (season, first) in enumerate(WEEKS.items()):
            ax = axes[row][col]
            if profile == "non_interval":
                days = [first + timedelta(days=i) for i in range(7)]
                ax.bar([datetime(d.year, d.month, d.day, 12, tzinfo=PACIFIC) for d in days],
                       [daily_usage(model, 1, d) / 1e6 for d in days], width=0.8, color="#999")
                ax.set_ylabel("kWh / day")
                ax.text(0.01, 0.85, "not served: only billed totals (UsageSummary)", transform=ax.transAxes,
                        fontsize=8)
            elif profile == "gas_daily":
                t, v = week(model, first)
                ax.bar([x + timedelta(hours=12) for x in t], v, width=0.8, color="#c60")
                ax.set_ylabel("therms / day")
            elif profile == "solar_net_metered":
                t, delivered = week(model, first, 1)
                _, received = week(model, first, 19)
                _, pv = week(model, first, pv=True)
                ax.step(t, delivered, where="post", lw=0.8, label="delivered (flow 1)")
                ax.step(t, [-x for x in received], where="post", lw=0.8, label="received (flow 19)")
                ax.plot(t, pv, lw=0.6, color="#e9a700", label="PV production (hidden)")
                ax.axhline(0, color="k", lw=0.4)
                ax.set_ylabel("kWh / 15 min")
                ax.legend(fontsize=7, loc="lower left", ncol=3)
            else:
                t, v = week(model, first)
                ax.step(t, v, where="post", lw=0.8)
                ax.set_ylabel("kWh / " + ("15 min" if model.interval_length == 900 else "hour"))
            ax.set_title(f"{profile} ({model.rate_schedule}, zone {model.climate_zone}) - {season} week",
                         fontsize=9, loc="left")
            ax.xaxis.set_major_locator(mdates.DayLocator(tz=PACIFIC))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=PACIFIC))
            ax.grid(alpha=0.3)
    fig.suptitle("mock-custodian synthetic meter profiles (seed 42, one meter each; America/Los_Angeles)")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
