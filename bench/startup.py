"""Start-up time of `mock-custodian serve`: first start (PKI + scenario) and a restart (everything reused).

Prints seconds from process launch until /__sim/health answers over TLS. Talks only to 127.0.0.1.
Usage: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


def measure(data_dir: Path) -> float:
    """Seconds from launching the process until the health endpoint answers over TLS."""
    runtime = data_dir / "server.json"
    runtime.unlink(missing_ok=True)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_custodian", "serve", "--data-dir", str(data_dir), "--api-port", "0",
         "--portal-port", "0", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - started < 30:
            if runtime.exists():
                try:
                    info = json.loads(runtime.read_text())
                    url = f"{info['portal_base_url']}/__sim/health"
                    if requests.get(url, verify=info["ca_bundle"], timeout=2).status_code == 200:
                        return time.monotonic() - started
                except (ValueError, requests.RequestException):
                    pass
            time.sleep(0.01)
        raise RuntimeError("server did not become ready in 30 s")
    finally:
        process.terminate()
        process.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    first, again = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            first.append(measure(Path(tmp) / "d"))
            again.append(measure(Path(tmp) / "d"))
    print(f"first start (new data dir, PKI + demo scenario), 2 workers: median {statistics.median(first):.2f}s "
          f"(runs: {', '.join(f'{x:.2f}' for x in first)})")
    print(f"restart (existing data dir), 2 workers:                       median {statistics.median(again):.2f}s "
          f"(runs: {', '.join(f'{x:.2f}' for x in again)})")
    print("(from process launch, including the Python interpreter start, to the first TLS health answer)")


if __name__ == "__main__":
    main()
