"""CCA scale benchmark (issue 14): world load, Batch/Bulk and daily packages, R/Authorization, memory.

For each size it writes the starter file of ``mock-custodian scenario new --cca N`` (one SA per generated
customer, all in the CCA's territory), then prints:

- world load: seconds to load the scenario into a fresh SQLite database, and that process's peak RSS;
- Batch/Bulk: seconds from the 202 to the last package fetched over HTTPS (the BatchList arrives at the
  control sink), packages, MB and MB/s; ``async_delay_s`` is 0 so the figure is the mock's own work;
- daily: the same from the clock reaching 07:00 (the daily package of "Notify me as data is ready");
- BulkRetailCustomerInfo: the same for the customer snapshot;
- GET R/Authorization: seconds and MB for every entry of the CCA (streamed in pages);
- peak RSS (VmHWM) of the server's processes (gunicorn workers and job workers).

Targets: load 10,000 SAs < 5 s and 100,000 < 60 s; Bulk 10,000 SAs < 10 s and 100,000 < 100 s; peak RSS
flat (< +100 MB from 1,000 to 100,000). Talks only to 127.0.0.1.
Usage: python bench/scale.py [sizes...]   (default: 1000 10000)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from mock_custodian import testing
from mock_custodian.clock import PACIFIC

RES = "/GreenButtonConnect/espi/1_1/resource"
CCA = "00201"
JOB_WORKERS = 2


def load_only(scenario: str) -> None:
    """Child-process mode: load the world into a fresh database; print seconds and peak RSS as JSON."""
    from mock_custodian.domain.world import load_world
    from mock_custodian.pki import DevPKI
    from mock_custodian.scenario.parse import load_scenario_file
    from mock_custodian.store.db import Database

    folder = Path(tempfile.mkdtemp(prefix="scale-load-"))
    pki = DevPKI(folder / "certs")
    pki.ensure(["localhost"])
    database = Database(f"sqlite:///{folder / 'world.db'}")
    database.create_schema()
    parsed = load_scenario_file(Path(scenario))
    begun = time.perf_counter()
    load_world(database, parsed, pki)
    seconds = time.perf_counter() - begun
    print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def peak_rss_mb(server: testing.RunningServer) -> float:
    """The largest VmHWM among the server's processes, in MB."""
    peak = 0
    for pid in _descendants(server.process.pid):
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", text)
        if match:
            peak = max(peak, int(match.group(1)))
    return peak / 1024


def _token(server: testing.RunningServer) -> str:
    tp = server.third_party(CCA)
    response = requests.post(f"{server.api_base_url}/datacustodian/oauth/v2/token",
                             params={"grant_type": "client_credentials"}, auth=(tp["client_id"], tp["client_secret"]),
                             cert=server.cert(CCA), verify=server.ca_bundle, timeout=30)
    response.raise_for_status()
    return response.json()["client_access_token"]


def _fetch_all(server: testing.RunningServer, token: str, sink: str, seen: int, timeout: float) -> tuple[int, int]:
    """Wait for the next BatchList at the sink, then fetch every package it names: (packages, bytes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        posts = server.sink(sink)
        if len(posts) > seen:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"no notification within {timeout}s")
    urls = re.findall(r"<(?:\w+:)?resources>([^<]+)</", posts[seen]["body"])
    size = 0
    with requests.Session() as session:
        for url in urls:
            with session.get(url.replace("&amp;", "&"), headers={"Authorization": f"Bearer {token}"},
                             cert=server.cert(CCA), verify=server.ca_bundle, timeout=600, stream=True) as response:
                response.raise_for_status()
                for chunk in response.iter_content(1 << 20):
                    size += len(chunk)
    return len(urls), size


def _row(label: str, seconds: float, packages: int, size: int) -> str:
    mb = size / 1e6
    return f"  {label:<28} {seconds:7.2f} s  {packages:4d} packages  {mb:8.1f} MB  {mb / seconds:6.1f} MB/s"


def run(count: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"scale-{count}-") as tmp:
        scenario = Path(tmp) / "cca.yaml"
        subprocess.run([sys.executable, "-m", "mock_custodian", "scenario", "new", "--cca", str(count),
                        str(scenario)], check=True, capture_output=True)
        loaded = json.loads(subprocess.run([sys.executable, __file__, "--load-only", str(scenario)], check=True,
                                           capture_output=True, text=True).stdout)
        figures["load_s"], figures["load_rss_mb"] = loaded["seconds"], loaded["rss_mb"]
        print(f"{count} SAs\n  world load                   {loaded['seconds']:7.2f} s  "
              f"(peak RSS {loaded['rss_mb']:.0f} MB)", flush=True)
        server = testing.start(Path(tmp) / "data", scenario=scenario, workers=2,
                               settings={"async_delay_s": 0, "job_worker_processes": JOB_WORKERS})
        try:
            local = dt.datetime.now(PACIFIC).replace(hour=10, minute=0, second=0, microsecond=0)
            server.clock.freeze(local.timestamp())
            server.use_sink(CCA, "cca")
            token = _token(server)
            headers = {"Authorization": f"Bearer {token}"}
            kw = {"cert": server.cert(CCA), "verify": server.ca_bundle, "timeout": 600}
            seen = 0
            for label, path in (("Batch/Bulk", f"{RES}/Batch/Bulk/{CCA}"),
                                ("BulkRetailCustomerInfo", f"{RES}/Batch/BulkRetailCustomerInfo/{CCA}")):
                begun = time.perf_counter()
                response = requests.get(f"{server.api_base_url}{path}", headers=headers, **kw)
                assert response.status_code == 202, (response.status_code, response.text[:300])
                packages, size = _fetch_all(server, token, "cca", seen, timeout=900)
                seen += 1
                seconds = time.perf_counter() - begun
                figures[f"{label}_s"] = seconds
                print(_row(label, seconds, packages, size), flush=True)
            begun = time.perf_counter()
            server.clock.freeze((local + dt.timedelta(days=1)).replace(hour=7, minute=0).timestamp())
            token = _token(server)  # the clock moved a day: the old client token has expired
            headers = {"Authorization": f"Bearer {token}"}
            packages, size = _fetch_all(server, token, "cca", seen, timeout=900)
            seconds = time.perf_counter() - begun
            figures["daily_s"] = seconds
            print(_row("daily (07:00)", seconds, packages, size), flush=True)
            begun = time.perf_counter()
            with requests.get(f"{server.api_base_url}{RES}/Authorization", headers=headers, stream=True,
                              **kw) as response:
                response.raise_for_status()
                size = sum(len(c) for c in response.iter_content(1 << 20))
            seconds = time.perf_counter() - begun
            figures["authorization_s"] = seconds
            print(f"  GET R/Authorization          {seconds:7.2f} s  {size / 1e6:8.1f} MB", flush=True)
            figures["server_rss_mb"] = peak_rss_mb(server)
            print(f"  server peak RSS (any process) {figures['server_rss_mb']:6.0f} MB", flush=True)
        finally:
            server.stop()
    return figures


def main(sizes: list[int]) -> None:
    results = {n: run(n) for n in sizes}
    if len(sizes) > 1:
        low, high = results[sizes[0]], results[sizes[-1]]
        print(f"\n{sizes[-1]} vs {sizes[0]} SAs: Bulk time x{high['Batch/Bulk_s'] / low['Batch/Bulk_s']:.1f}, "
              f"server peak RSS {high['server_rss_mb'] - low['server_rss_mb']:+.0f} MB, "
              f"loader peak RSS {high['load_rss_mb'] - low['load_rss_mb']:+.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--load-only":
        load_only(sys.argv[2])
    else:
        main([int(a) for a in sys.argv[1:]] or [1000, 10000])
