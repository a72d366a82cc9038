"""Feed generation benchmark: IntervalReadings/s, MB/s and peak RSS (prints numbers; not a test).

    python bench/feed_generation.py            # all scenarios, each in a fresh subprocess
    python bench/feed_generation.py --quick    # smaller ranges

(a) one 15-minute SA over 48 months; (b) 1,000 hourly SAs over one day;
peak RSS of (a) at 1x and 10x the range. Output goes into a byte-counting sink.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mock_custodian.espi import UsagePointRequest, usage_feed  # noqa: E402
from mock_custodian.synth import ServiceAgreementModel, day_bounds  # noqa: E402

R = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource"
NOW = day_bounds(date(2026, 11, 22))[0] + 7 * 3600.0


def scenario_a(months: int) -> list[UsagePointRequest]:
    end = day_bounds(date(2026, 11, 1))[0]
    first = date(2026 - months // 12, 11 - months % 12 if months % 12 < 11 else 12, 1)
    sa = ServiceAgreementModel.from_dict({"usage_point_id": "5391320451", "profile": "commercial_15min",
                                          "seed": 1, "sa_start": 0})
    return [UsagePointRequest("4095251", sa, day_bounds(first)[0], end, include_usage_summaries=False)]


def scenario_b(count: int) -> list[UsagePointRequest]:
    start, end = day_bounds(date(2026, 11, 20))
    return [
        UsagePointRequest(str(4_000_000 + i), ServiceAgreementModel.from_dict(
            {"usage_point_id": f"{5_300_000_000 + i}", "profile": "residential_hourly", "seed": 1,
             "rate_schedule": "E-TOU-C" if i % 2 else "E-1", "climate_zone": (3, 4, 12, 13)[i % 4],
             "sa_start": "2020-01-01"}), start, end, include_usage_summaries=False)
        for i in range(count)
    ]


def run(requests: list[UsagePointRequest]) -> dict[str, float]:
    readings = 0
    for req in requests:
        sa = req.sa
        per_day = 86400 // sa.interval_length
        days = round((req.end - req.start) / 86400)
        readings += per_day * days * sa.meters * len(sa.flow_directions)
    started = time.perf_counter()
    size = 0
    for chunk in usage_feed(requests, resource_base=R, self_href=f"{R}/Batch/Bulk/00123", now=NOW):
        size += len(chunk)
    seconds = time.perf_counter() - started
    return {"readings": readings, "seconds": seconds, "bytes": size,
            "readings_per_s": readings / seconds, "mb_per_s": size / seconds / 1e6}


def lxml_baseline(n: int = 96 * 200) -> float:
    """Readings/s when building one lxml element per IntervalReading (what the template path avoids)."""
    from lxml import etree

    ns = "{http://naesb.org/espi}"
    started = time.perf_counter()
    block = etree.Element(ns + "IntervalBlock", nsmap={"ns0": "http://naesb.org/espi"})
    for i in range(n):
        r = etree.SubElement(block, ns + "IntervalReading")
        etree.SubElement(etree.SubElement(r, ns + "ReadingQuality"), ns + "quality").text = "17"
        tp = etree.SubElement(r, ns + "timePeriod")
        etree.SubElement(tp, ns + "duration").text = "900"
        etree.SubElement(tp, ns + "start").text = str(1_700_000_000 + 900 * i)
        etree.SubElement(r, ns + "value").text = str(123_456 + i)
        etree.SubElement(r, ns + "tou").text = "6"
    etree.tostring(block)
    return n / (time.perf_counter() - started)


def child(kind: str, size: int) -> None:
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    requests = scenario_a(size) if kind == "a" else scenario_b(size)
    cold = run(requests)
    warm = run(requests)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"cold": cold, "warm": warm, "base_rss_kb": base_rss, "peak_rss_kb": peak}))


def in_subprocess(kind: str, size: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(size)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    months = 12 if args.quick else 48
    count = 100 if args.quick else 1000
    print(f"python {sys.version.split()[0]}, one core, output into a byte-counting sink\n")

    def show(label: str, r: dict) -> None:
        for phase in ("cold", "warm"):
            x = r[phase]
            print(f"  {label:<34} {phase}: {x['readings']:>9,} readings in {x['seconds']:6.2f} s = "
                  f"{x['readings_per_s'] / 1e6:5.2f} M readings/s, {x['mb_per_s']:6.1f} MB/s "
                  f"({x['bytes'] / 1e6:,.1f} MB)")

    a1 = in_subprocess("a", months)
    show(f"(a) 1 x 15-min SA, {months} months", a1)
    b = in_subprocess("b", count)
    show(f"(b) {count:,} hourly SAs, 1 day", b)
    a10 = in_subprocess("a", months * 10)
    show(f"(a) at 10x: {months * 10} months", a10)
    print("\npeak RSS (ru_maxrss, whole process incl. interpreter and imports):")
    for label, r in ((f"(a) 1x  {months} months", a1), (f"(a) 10x {months * 10} months", a10)):
        print(f"  {label:<22} peak {r['peak_rss_kb'] / 1024:6.1f} MiB   (after imports "
              f"{r['base_rss_kb'] / 1024:5.1f} MiB, feed adds {(r['peak_rss_kb'] - r['base_rss_kb']) / 1024:5.1f} MiB)"
              f"  output {r['cold']['bytes'] / 1e6:,.0f} MB")
    print(f"\nbaseline, one lxml element per IntervalReading: {lxml_baseline() / 1e6:.2f} M readings/s")


if __name__ == "__main__":
    main()
