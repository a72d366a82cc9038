"""End-to-end feed throughput over mutual TLS against nginx serving the same bytes (issue 17), and memory.

Serves a 15-minute solar SA (two flow directions) through `R/Batch/Subscription/{S}/UsagePoint/{U}`
for 12 months (and 48 with ``--long``). The client is curl (``-o /dev/null``), which is not the
bottleneck. nginx (``/usr/sbin/nginx`` or ``--nginx``) is started on a loopback port with a temporary
config, the mock's own server certificate and client certificates requested, serving the bytes of
one mock response from a file; each mock fetch is generated afresh (the mock keeps no response bytes;
each worker keeps the synthesized days of the SA, so the rounds follow a warm-up fetch per worker,
whose rates are printed apart).
Fetches alternate between the two, so both see the same machine load (each round fetches both, the
one going first alternating; nginx gets one unmeasured fetch first, as the mock's workers do); prints
MB/s, the ratio mock/nginx per round and the worker's peak RSS. Talks only to 127.0.0.1.
Usage: python bench/http_feed.py [--rounds 9] [--long] [--nginx PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.pki import DevPKI
from mock_custodian.store.db import Database

RES = "/GreenButtonConnect/espi/1_1/resource"
WORKERS = 2
NGINX_CONF = """
daemon off;
master_process on;
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ application/atom+xml xml; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client on;
        ssl_verify_depth 3;
        root {tmp}/www;
    }}
}}
"""


def worker_rss_kib(server: testing.RunningServer) -> int:
    """Peak RSS (VmHWM) of the server's gunicorn worker processes, in KiB."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() != str(server.process.pid):
            continue
        peak = max(peak, int(fields.get("VmHWM", "0 kB").split()[0]))
    return peak


def curl(url: str, server: testing.RunningServer, headers: dict[str, str]) -> tuple[int, float]:
    """Bytes and seconds of one fetch, body discarded by curl itself."""
    cert, key = server.cert("00101")
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
            "--cacert", server.ca_bundle, "--cert", cert, "--key", key]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    status, size, seconds = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout.split()
    if status != "200":
        raise SystemExit(f"{url}: HTTP {status}")
    return int(size), float(seconds)


def start_nginx(nginx: str, tmp: Path, body: bytes, server: testing.RunningServer) -> tuple[subprocess.Popen, int]:
    (tmp / "www").mkdir()
    (tmp / "www" / "feed.xml").write_bytes(body)
    for path in (tmp, tmp / "www", tmp / "www" / "feed.xml"):  # nginx's workers may run as another user
        path.chmod(0o755 if path.is_dir() else 0o644)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pki = DevPKI(server.data_dir / "certs")  # the mock's own server certificate (RSA) and trust bundle
    conf = NGINX_CONF.format(tmp=tmp, port=port, chain=pki.server_chain, key=pki.server_key, ca=server.ca_bundle)
    (tmp / "nginx.conf").write_text(conf)
    process = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("nginx did not start: " + (tmp / "nginx-error.log").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9,
                        help="alternating rounds; the median of 3 moved by 0.3 between runs on a shared machine")
    parser.add_argument("--long", action="store_true", help="also fetch 48 months (RSS stays flat)")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp_name:
        tmp = Path(tmp_name)
        server = testing.start(tmp / "d", workers=WORKERS)
        nginx = None
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

            def feed_url(months: int) -> str:
                start = now - months * 30.44 * 86400
                return (f"{server.api_base_url}{RES}/Batch/Subscription/{sub}/UsagePoint/{up}"
                        f"?published-min={int(start)}&published-max={int(now)}")

            body = requests.get(feed_url(12), headers=headers, **kw).content
            readings = body.count(b"<ns0:IntervalReading>") or body.count(b"IntervalReading>") // 2
            print(f"12-month 15-minute feed: {len(body) / 1e6:.1f} MB, {readings:,} IntervalReadings; client: curl")
            # Each worker synthesizes the year's days at its first fetch and keeps them (never response
            # bytes: corrections and clock moves still show at once). Warm up until every worker served
            # the feed once (the request log names the worker), printing those first fetches apart.
            served = Database(f"sqlite:///{server.data_dir}/mock-custodian.db")
            feed_path = feed_url(12).split(server.api_base_url, 1)[1].split("?", 1)[0]

            def workers_served() -> set[int]:
                rows = served.read_row(f"SELECT group_concat(DISTINCT worker_pid) FROM request_log "  # noqa: S608
                                       f"WHERE path = '{feed_path}'")
                return {int(pid) for pid in (rows[0] or "").split(",") if pid}

            seen = workers_served()
            for _ in range(12):
                if len(seen) >= WORKERS:
                    break
                size, seconds = curl(feed_url(12), server, headers)
                now_seen = workers_served()
                if now_seen - seen:
                    print(f"first fetch of a worker (days synthesized): {size / 1e6 / seconds:.1f} MB/s")
                seen = now_seen
            if os.path.exists(opts.nginx):
                nginx, port = start_nginx(opts.nginx, tmp, body, server)
                print(f"nginx: {opts.nginx} on 127.0.0.1:{port}, the same bytes from a file, mutual TLS")
                curl(f"https://127.0.0.1:{port}/feed.xml", server, {})  # nginx's first fetch, not measured
            else:
                print(f"nginx not found at {opts.nginx}: mock figures only")
            ratios = []
            for round_ in range(1, opts.rounds + 1):
                # Each round fetches both, in turns which goes first (so neither always follows the other).
                order = ("mock", "nginx") if round_ % 2 or nginx is None else ("nginx", "mock")
                for which in order:
                    if which == "mock":
                        size, seconds = curl(feed_url(12), server, headers)
                    elif nginx is not None:
                        nsize, nseconds = curl(f"https://127.0.0.1:{port}/feed.xml", server, {})
                mock = size / 1e6 / seconds
                rate = size / seconds / len(body) * readings
                line = f"round {round_}: mock {mock:6.1f} MB/s ({rate:,.0f} readings/s)"
                if nginx is not None:
                    reference = nsize / 1e6 / nseconds
                    ratios.append(mock / reference)
                    line += f"   nginx {reference:6.1f} MB/s   ratio {mock / reference:.2f}"
                print(line, flush=True)
            if ratios:
                print(f"ratio mock/nginx: median {statistics.median(ratios):.2f}, "
                      f"range {min(ratios):.2f}-{max(ratios):.2f}")
            if opts.long:
                size, seconds = curl(feed_url(48), server, headers)
                print(f"48 months: {size / 1e6:.1f} MB at {size / 1e6 / seconds:.1f} MB/s")
            print(f"worker peak RSS {worker_rss_kib(server) / 1024:.1f} MiB")
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)
            server.stop()


if __name__ == "__main__":
    main()
