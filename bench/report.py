"""Integration report over a big request log: prints how long ``build_report`` takes (issue 15 asks < 5 s
for 1,000,000 rows). Not a timed test: run it by hand, e.g. ``python bench/report.py --rows 1000000``.

The log is a mix like a busy CI suite's: four clients, token calls, data calls with and without dates
(some offsets), 429s with Retry-After, package fetches, leaf-only certificates; ~0.4 s apart on average.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from mock_custodian.cli.common import open_data_dir
from mock_custodian.domain.report import ReportOptions, build_report
from mock_custodian.settings import load_settings
from mock_custodian.store.models import RequestLog

R = "/GreenButtonConnect/espi/1_1/resource"
CLIENTS = ("00101", "00102", "00103", "00104")


def rows(count: int, start: float, seed: int = 15) -> list[dict]:
    rnd = random.Random(seed)
    out, t = [], start
    for i in range(count):
        t += rnd.expovariate(2.5)
        client = CLIENTS[i % len(CLIENTS)]
        kind = rnd.random()
        query, status, path, token_kind, retry_after = "", 200, f"{R}/ReadServiceStatus", "client_access", None
        if kind < 0.1:
            path, token_kind = "/datacustodian/oauth/v2/token", None
        elif kind < 0.5:
            path = f"{R}/Batch/Subscription/{100000 + i % 500}/UsagePoint/{200000 + i % 50}"
            day = 1777000000 + (i % 30) * 86400
            query = (f"published-min={day}&published-max={day + 86400}" if kind < 0.45
                     else "published-min=2026-05-01T00:00:00-07:00")
            token_kind = "access"
        elif kind < 0.52:
            path, query = f"{R}/Batch/Bulk/{client}", f"correlationID={i % 1000:08d}-aaaa-bbbb-cccc-dddddddddddd"
        elif kind < 0.53:
            status, retry_after = 429, 2
        out.append({"at": t, "real_at": t, "surface": "api", "method": "GET", "path": path, "query": query,
                    "status": status, "client_id": client, "claimed_client_id": client, "headers": {},
                    "worker_pid": 1, "token_fingerprint": f"{i // 50:012x}", "token_kind": token_kind,
                    "retry_after": retry_after, "chain_length": 1 if kind > 0.999 else 2})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-report-"))
    settings = load_settings({"data_dir": data_dir}, environ={})
    database = open_data_dir(settings, create=True).database
    started = time.monotonic()
    batch = 100_000
    for offset in range(0, args.rows, batch):
        chunk = rows(min(batch, args.rows - offset), 1_780_000_000.0 + offset * 0.4, seed=offset)
        with database.session() as db:
            db.execute(RequestLog.__table__.insert(), chunk)
    print(f"wrote {args.rows} request-log rows in {time.monotonic() - started:.1f} s ({data_dir})")
    with database.session() as db:
        started, cpu = time.monotonic(), time.process_time()
        report = build_report(db, ReportOptions(), 1_780_000_000.0 + args.rows)
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    # CPU time too: on a shared machine the wall time mostly measures the other processes.
    print(f"report over {report['requests_examined']} requests: {elapsed:.2f} s wall, {cpu:.2f} s CPU, "
          f"{report['errors']} error(s), {report['warnings']} warning(s)")
    for finding in report["findings"]:
        print(f"  {finding['severity']:7} {finding['rule']:40} {finding['client_id']}  x{finding['count']}")


if __name__ == "__main__":
    main()
