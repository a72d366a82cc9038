"""Where a small API request's time goes: cProfile over the app in-process (issue 17).

Prepares a data dir with a real ``mock-custodian serve`` (PKI, demo world), stops it, then builds the
same Flask app in this process with rate limits on (set high) and replays, through Flask's test client
with the client certificate's verified identity in the environ (as the TLS worker puts it), the calls of
``bench/small_requests.py``. TLS and gunicorn are left out on purpose: they cost the same as for a
hello-world app. Prints per-request microseconds and the top functions by cumulative time.
``--kind feed`` profiles the 12-month 15-minute IntervalBlock feed of ``bench/http_feed.py`` instead
(the response body consumed in-process, so generation without TLS).
Usage: python bench/profile_requests.py [--requests 500] [--top 30] [--kind status|token|usagepoint|feed]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import datetime as dt
import io
import pstats
import tempfile
import time
from pathlib import Path

from cryptography import x509

from mock_custodian import testing, tls
from mock_custodian.app import create_app
from mock_custodian.clock import PACIFIC
from mock_custodian.settings import load_settings

try:
    from mock_custodian.store.db import start_checkpoints
except ImportError:  # an older tree (comparing before and after)
    def start_checkpoints(url: str) -> None:
        return None

RES = "/GreenButtonConnect/espi/1_1/resource"
CLIENT = "00101"


class _Socket:
    """What the TLS worker hangs on the WSGI environ's ``gunicorn.socket``."""

    def __init__(self, peer: tls.PeerCertificate) -> None:
        self.surface = "api"
        self.peer_certificate = peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime, ...")
    parser.add_argument("--callers", help="also print who calls functions matching this pattern")
    parser.add_argument("--callees", help="also print what functions matching this pattern call")
    parser.add_argument("--kind", choices=("status", "token", "usagepoint", "feed"), default="status")
    parser.add_argument("--cold", action="store_true", help="feed: profile the first fetch (days synthesized)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        data_dir = Path(tmp) / "d"
        server = testing.start(data_dir)
        try:
            tp = server.third_party(CLIENT)
            if opts.kind == "feed":  # bench/http_feed.py's feed: a frozen clock, one solar SA, Usage
                now = dt.datetime(2026, 11, 10, 10, tzinfo=PACIFIC).timestamp()
                server.clock.freeze(now)
                granted = server.authorize("okafor", CLIENT, service_agreements=["okafor-solar"], groups=["Usage"],
                                           via="control")
            else:
                granted = server.authorize("okafor", CLIENT, via="control")
        finally:
            server.stop()
        settings = load_settings({"data_dir": data_dir, "rate_limits_enabled": True,
                                  "rate_limit_vendor_per_second": 1e6, "rate_limit_vendor_burst": 1_000_000,
                                  "rate_limit_client_per_hour": 10**9, "rate_limit_client_per_day": 10**9},
                                 environ={})
        start_checkpoints(settings.resolved_database_url())  # as each server worker does
        app = create_app(settings)
        pem = Path(tp["certificate_chain"]).read_bytes()
        certs = x509.load_pem_x509_certificates(pem)
        trusted = Path(server.ca_bundle).read_bytes()
        peer = tls.ClientCertificateVerifier(trusted).verify(certs[0], certs)
        client = app.test_client()
        environ = {"gunicorn.socket": _Socket(peer)}
        basic = base64.b64encode(f"{tp['client_id']}:{tp['client_secret']}".encode()).decode()
        cat = client.post("/datacustodian/oauth/v2/token", data={"grant_type": "client_credentials"},
                          headers={"Authorization": f"Basic {basic}"}, environ_base=environ).json
        assert cat and "client_access_token" in cat, cat

        feed_url = None
        if opts.kind == "feed":
            listing = client.get(f"{RES}/Subscription/{granted['authorization_id']}/UsagePoint",
                                 headers={"Authorization": f"Bearer {granted['token']['access_token']}"},
                                 environ_base=environ).get_data(as_text=True)
            up = listing.split("/UsagePoint/")[1].split('"')[0]
            feed_url = (f"{RES}/Batch/Subscription/{granted['authorization_id']}/UsagePoint/{up}"
                        f"?published-min={int(now - 12 * 30.44 * 86400)}&published-max={int(now)}")

        def one() -> int:
            if feed_url is not None:
                response = client.get(feed_url, headers={"Authorization": f"Bearer {granted['token']['access_token']}"},
                                      environ_base=environ, buffered=False)
                size = sum(len(chunk) for chunk in response.response)
                response.close()
                assert size > 1_000_000, size
                return response.status_code
            if opts.kind == "token":
                return client.post("/datacustodian/oauth/v2/token", data={"grant_type": "client_credentials"},
                                   headers={"Authorization": f"Basic {basic}"}, environ_base=environ).status_code
            if opts.kind == "usagepoint":
                return client.get(f"{RES}/Subscription/{granted['authorization_id']}/UsagePoint",
                                  headers={"Authorization": f"Bearer {granted['token']['access_token']}"},
                                  environ_base=environ).status_code
            return client.get(f"{RES}/ReadServiceStatus",
                              headers={"Authorization": f"Bearer {cat['client_access_token']}"},
                              environ_base=environ).status_code

        if feed_url is not None and opts.cold:
            profiler = cProfile.Profile()
            profiler.enable()
            one()
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(opts.sort).print_stats(opts.top)
            print(out.getvalue())
            return
        if feed_url is not None:
            opts.requests = min(opts.requests, 15)
            started = time.perf_counter()
            assert one() == 200
            print(f"feed: first fetch in this process {(time.perf_counter() - started) * 1e3:.0f} ms "
                  "(synthesizes every day; later fetches reuse the synthesized days)")
        for _ in range(20 if feed_url is None else 0):
            assert one() == 200
        times = []
        for _ in range(opts.requests):
            started = time.perf_counter()
            assert one() == 200
            times.append(time.perf_counter() - started)
        plain = sum(times) / len(times)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(opts.requests):
            one()
        profiler.disable()
        print(f"{opts.kind}: {plain * 1e6:.0f} us per request in-process, without profiling ({opts.requests} requests; "
              f"median {sorted(times)[len(times) // 2] * 1e6:.0f} us, fastest {min(times) * 1e6:.0f} us)")
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats(opts.sort)
        stats.print_stats(opts.top)
        if opts.callers:
            stats.print_callers(opts.callers)
        if opts.callees:
            stats.print_callees(opts.callees)
        print(out.getvalue())


if __name__ == "__main__":
    main()
