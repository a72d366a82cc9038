"""End-to-end feed throughput over real HTTPS with client certificates, and the server's memory.

Serves a 15-minute solar SA (two flow directions) for 12 and 48 months through
`R/Batch/Subscription/{S}/UsagePoint/{U}` and prints readings/s, MB/s and the worker's peak RSS, so one can
see that memory does not grow with the range. Talks only to 127.0.0.1.
Usage: python bench/http_feed.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import requests

from mock_custodian import testing
from mock_custodian.clock import PACIFIC

RES = "/GreenButtonConnect/espi/1_1/resource"


def worker_rss_kib(server: testing.RunningServer) -> int:
    """Peak RSS (VmHWM) of the server's gunicorn worker processes, in KiB."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if "gunicorn" not in text and "python" not in text:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() != str(server.process.pid):
            continue
        peak = max(peak, int(fields.get("VmHWM", "0 kB").split()[0]))
    return peak


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = testing.start(Path(tmp) / "d", workers=1)
        try:
            now = dt.datetime(2026, 11, 10, 10, tzinfo=PACIFIC).timestamp()
            server.clock.freeze(now)
            granted = server.authorize("okafor", "00101", service_agreements=["okafor-solar"], groups=["Usage"],
                                       via="control")
            sub, token = granted["authorization_id"], granted["token"]["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            kw = {"cert": server.cert("00101"), "verify": server.ca_bundle, "timeout": 600}
            listing = requests.get(f"{server.api_base_url}{RES}/Subscription/{sub}/UsagePoint", headers=headers,
                                   **kw).text
            up = listing.split("/UsagePoint/")[1].split('"')[0]
            for months in (12, 48):
                start = now - months * 30.44 * 86400
                begun = time.monotonic()
                size = readings = 0
                with requests.get(f"{server.api_base_url}{RES}/Batch/Subscription/{sub}/UsagePoint/{up}",
                                  params={"published-min": str(int(start)), "published-max": str(int(now))},
                                  headers=headers, stream=True, **kw) as response:
                    for chunk in response.iter_content(1 << 20):
                        size += len(chunk)
                        readings += chunk.count(b"<ns0:IntervalReading>")
                seconds = time.monotonic() - begun
                print(f"{months:2d} months: {readings:,} IntervalReadings, {size / 1e6:.1f} MB in {seconds:.2f}s = "
                      f"{readings / seconds:,.0f} readings/s, {size / 1e6 / seconds:.1f} MB/s; "
                      f"worker peak RSS {worker_rss_kib(server) / 1024:.1f} MiB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
