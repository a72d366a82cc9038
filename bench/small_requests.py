"""Per-request cost: small API requests against a hello-world app on the same serving stack (issue 17).

Starts two servers on 127.0.0.1 in one run:

- mock-custodian (demo world, rate limits ON but set so high that every call is counted and admitted);
- a hello-world Flask app answering a fixed ``ok``, served by the very same stack: gunicorn with
  ``TLSThreadWorker`` (pyOpenSSL, client certificate requested and verified by the callback), the same
  workers and threads, the same PKI and client certificate.

Then drives each with N client processes over mutual TLS with keep-alive (one connection per client
process), a bounded number of requests each, hello then mock, ``--rounds`` times, and prints requests/s,
the median of the rounds' ratios mock/hello (with each round's), and each server's CPU per request (its
processes' user + system time from /proc over the round: steadier than requests/s on a shared machine,
and it tells the mock's own cost from the stack's) for:

- ``POST /datacustodian/oauth/v2/token`` (client_credentials);
- ``GET  .../resource/ReadServiceStatus`` (client access token);
- ``GET  .../resource/Subscription/{S}/UsagePoint`` (customer access token);
- ``POST /datacustodian/test/oauth/v2/token`` (authorization_code exchange of OAuth Test harness codes made
  beforehand: a production consent replaces the customer's previous authorization and its code).

Every counted response must be 200 (the script fails otherwise). Usage:
``python bench/small_requests.py [--clients 4] [--requests 400] [--workers 2] [--threads 8] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from mock_custodian import testing

RES = "/GreenButtonConnect/espi/1_1/resource"
CLIENT = "00101"
HIGH_LIMITS = {
    "rate_limits_enabled": True,
    "rate_limit_vendor_per_second": 1_000_000,
    "rate_limit_vendor_burst": 1_000_000,
    "rate_limit_client_per_hour": 1_000_000_000,
    "rate_limit_client_per_day": 1_000_000_000,
}

HELLO_SERVER = r"""
import json, sys
from pathlib import Path
from flask import Flask
from mock_custodian.pki import DevPKI
from mock_custodian.server import MockCustodianServer
from mock_custodian.settings import Settings

data_dir, runtime_file, workers, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
settings = Settings(data_dir=data_dir, api_port=0, portal_port=0, workers=workers, threads=threads,
                    control_api=False, job_worker=False, database_url=f"sqlite:///{data_dir}/hello.db")
hello = Flask("hello")

@hello.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@hello.route("/<path:path>", methods=["GET", "POST"])
def ok(path):
    return "ok"

class HelloServer(MockCustodianServer):
    def load(self):
        return hello

HelloServer(settings, DevPKI(Path(data_dir) / "certs"), Path(runtime_file)).run()
"""


def _client(args: tuple) -> tuple[int, float, dict[int, int]]:
    """One client process: its own keep-alive TLS connection, ``len(requests)`` calls, statuses counted."""
    base, ca, cert, key, requests_, barrier_at = args
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    parts = urlsplit(base)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=60)
    method, path, body, headers = requests_[0]
    conn.request(method, path, body=body, headers=headers)  # warm the connection (handshake) first
    conn.getresponse().read()
    while time.time() < barrier_at:
        time.sleep(0.001)
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    for method, path, body, headers in requests_[1:]:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.will_close:
            conn.close()
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=60)
    elapsed = time.perf_counter() - started
    conn.close()
    return len(requests_) - 1, elapsed, statuses


def drive(pool: mp.pool.Pool, base: str, ca: str, cert: tuple[str, str], per_client: list[list],
          server: set[int]) -> tuple[float, dict, float]:
    """Requests/s over all clients (total requests / slowest client's time), the status counts, and the
    server's CPU microseconds per request (``server``: its processes; the warm-up calls included)."""
    barrier_at = time.time() + 1.0
    before = cpu_seconds(server)
    results = pool.map(_client, [(base, ca, cert[0], cert[1], reqs, barrier_at) for reqs in per_client])
    used = cpu_seconds(server) - before
    total = sum(n for n, _, _ in results)
    slowest = max(t for _, t, _ in results)
    statuses: dict[int, int] = {}
    for _, _, counts in results:
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    return total / slowest, statuses, 1e6 * used / (total + len(results))


def _tree(pid: int) -> set[int]:
    """A process and its descendants (the arbiter, its workers and the job worker), from /proc."""
    found = {pid}
    for _ in range(3):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid in found:
                    found.add(int(entry))
    return found


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds the processes have used so far (0 where /proc is not there)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


def start_hello(data_dir: Path, workers: int, threads: int) -> tuple[subprocess.Popen, dict]:
    runtime_file = data_dir / "hello.json"
    runtime_file.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-c", HELLO_SERVER, str(data_dir), str(runtime_file), str(workers),
                                str(threads)], stdout=subprocess.DEVNULL, stderr=(data_dir / "hello.log").open("ab"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if runtime_file.exists():
            try:
                info = json.loads(runtime_file.read_text())
                time.sleep(0.5)  # workers fork after the runtime file appears
                return process, info
            except ValueError:
                pass
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("hello-world server did not start: " + (data_dir / "hello.log").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400, help="requests per client process per measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="hello/mock alternations per request (median ratio)")
    parser.add_argument("--only", help="measure only requests whose name contains this text (e.g. token)")
    opts = parser.parse_args()
    n, c = opts.requests, opts.clients
    with tempfile.TemporaryDirectory(prefix="bench-small-") as tmp:
        data_dir = Path(tmp) / "d"
        env = {"MOCK_CUSTODIAN_THREADS": str(opts.threads)}
        server = testing.start(data_dir, workers=opts.workers, settings=HIGH_LIMITS, env=env)
        hello = None
        try:
            hello, info = start_hello(data_dir, opts.workers, opts.threads)
            hello_base = info["api_base_url"]
            mock_pids, hello_pids = _tree(server.process.pid), _tree(hello.pid)
            cert = server.cert(CLIENT)
            tp = server.third_party(CLIENT)
            basic = base64.b64encode(f"{tp['client_id']}:{tp['client_secret']}".encode()).decode()
            form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"}
            token_req = ("POST", "/datacustodian/oauth/v2/token", "grant_type=client_credentials", form)
            cat = json.loads(subprocess.run(
                ["curl", "-s", "--cacert", server.ca_bundle, "--cert", cert[0], "--key", cert[1], "-X", "POST",
                 "-H", f"Authorization: Basic {basic}", "-d", "grant_type=client_credentials",
                 f"{server.api_base_url}/datacustodian/oauth/v2/token"],
                check=True, capture_output=True, text=True).stdout)["client_access_token"]
            status_req = ("GET", f"{RES}/ReadServiceStatus", None, {"Authorization": f"Bearer {cat}"})
            granted = server.authorize("okafor", CLIENT, via="control")
            sub, at = granted["authorization_id"], granted["token"]["access_token"]
            up_req = ("GET", f"{RES}/Subscription/{sub}/UsagePoint", None, {"Authorization": f"Bearer {at}"})
            redirect = tp["redirect_uri"]

            def codes(count: int) -> list[tuple]:
                """Fresh codes from the OAuth Test harness (PG&E's one source of many live codes per client:
                a production consent replaces the customer's previous authorization, and its code with it)."""
                ctx = ssl.create_default_context(cafile=server.ca_bundle)
                api = urlsplit(server.api_base_url)
                conn = http.client.HTTPSConnection(api.hostname, api.port, context=ctx, timeout=60)
                query = urlencode({"client_id": CLIENT, "redirect_uri": redirect, "response_type": "code"})
                out = []
                for _ in range(count):
                    conn.request("GET", f"/datacustodian/test/oauth/v2/authorize?{query}")
                    response = conn.getresponse()
                    response.read()
                    location = response.getheader("Location", "")
                    code = parse_qs(urlsplit(location).query)["authorization_code"][0]
                    body = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect})
                    out.append(("POST", "/datacustodian/test/oauth/v2/token", body, form))
                conn.close()
                return out

            code_n = max(20, n // 4)
            print(f"{c} client processes x {n} requests (code exchange: x {code_n}), keep-alive, mutual TLS; "
                  f"server {opts.workers} workers x {opts.threads} threads; rate limits on, set high")
            print(f"rounds: {opts.rounds}, each hello then mock with the same requests; the ratio printed is the "
                  "median of the rounds' ratios (the machine's load moves both)")
            print("server CPU: microseconds of the server's processes per request, mock and hello (same round)")
            print(f"{'request':<44}{'mock req/s':>12}{'hello req/s':>13}{'ratio':>8}{'cpu us':>8}{'hello':>7}"
                  "   per round")
            results = {}
            with mp.get_context("fork").Pool(c) as pool:
                for name, mk in (
                    ("POST token (client_credentials)", lambda: [[token_req] * (n + 1) for _ in range(c)]),
                    ("GET ReadServiceStatus (CAT)", lambda: [[status_req] * (n + 1) for _ in range(c)]),
                    ("GET Subscription/{S}/UsagePoint (AT)", lambda: [[up_req] * (n + 1) for _ in range(c)]),
                    ("POST test token (authorization_code)", lambda: [codes(code_n + 1) for _ in range(c)]),
                ):
                    if opts.only and opts.only not in name:
                        continue
                    rounds = []
                    for _ in range(opts.rounds):
                        requests_ = mk()
                        hello_rate, hello_statuses, hello_cpu = drive(pool, hello_base, server.ca_bundle, cert,
                                                                      requests_, hello_pids)
                        mock_rate, statuses, mock_cpu = drive(pool, server.api_base_url, server.ca_bundle, cert,
                                                              requests_, mock_pids)
                        if set(statuses) != {200} or set(hello_statuses) != {200}:
                            raise SystemExit(f"{name}: not every response was 200: mock {statuses} "
                                             f"hello {hello_statuses}")
                        rounds.append((mock_rate / hello_rate, mock_rate, hello_rate, mock_cpu, hello_cpu))
                    ratio, mock_rate, hello_rate, mock_cpu, hello_cpu = sorted(rounds)[len(rounds) // 2]
                    results[name] = ratio
                    each = " ".join(f"{r[0]:.2f}" for r in rounds)
                    print(f"{name:<44}{mock_rate:>12.0f}{hello_rate:>13.0f}{ratio:>8.2f}{mock_cpu:>8.0f}"
                          f"{hello_cpu:>7.0f}   {each}", flush=True)
            print(json.dumps({k: round(r, 3) for k, r in results.items()}))
        finally:
            if hello is not None:
                hello.terminate()
                hello.wait(15)
            server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
