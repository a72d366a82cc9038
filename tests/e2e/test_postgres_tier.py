"""Several servers on one PostgreSQL (issue 14): the ``postgres`` tier, run by ``.ci/postgres-tier.sh``.

Two ``serve`` instances on different ports share one database, one data folder (the dev PKI whose CA
signs CSRs, and the package files) and one configured control token. Deselected from the default run
(``-m "not postgres"`` in pyproject); ``pytest -m postgres`` runs it against a throwaway cluster.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support import client_token
from support.notify_receiver import NotificationReceiver

from mock_custodian import testing

pytestmark = pytest.mark.postgres

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
TOKEN = "/datacustodian/oauth/v2/token"
CONTROL_TOKEN = "shared-control-token-for-the-postgres-tier"


def _unavailable(reason: str) -> None:
    from support.pg_cluster import ENV_REQUIRED

    if os.environ.get(ENV_REQUIRED):
        pytest.fail(f"{reason} ({ENV_REQUIRED} is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    from support.pg_cluster import ENV_URL, Cluster, find_bin

    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed: pip install 'mock-custodian[postgres]'")
    if os.environ.get(ENV_URL):
        yield os.environ[ENV_URL]
        return
    bin_dir = find_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql/*/bin); "
                     ".ci/postgres-tier.sh installs it")
    cluster = Cluster(bin_dir).start()
    try:
        yield cluster.url()
    finally:
        cluster.stop()


def _pair(tmp: Path, database_url: str, **settings: object) -> tuple[testing.RunningServer, testing.RunningServer]:
    common = {"database_url": database_url, "control_token": CONTROL_TOKEN, "async_delay_s": 0,
              "notify_timeout_s": 5, "notify_retry_minutes": [0.05, 0.05, 0.05], **settings}
    first = testing.start(tmp / "shared", workers=2, settings=common, new_session=True)
    try:
        second = testing.start(tmp / "shared", workers=2, settings=common, new_session=True)
    except BaseException:
        first.stop()
        raise
    return first, second


@pytest.fixture(scope="module")
def pair(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from support.pg_cluster import create_database

    a, b = _pair(tmp_path_factory.mktemp("pg-pair"), create_database(pg_admin_url))
    yield a, b
    for server in (a, b):
        server.stop()


def _get(server: testing.RunningServer, path: str, token: str, client_id: str, **headers: str) -> requests.Response:
    return requests.get(f"{server.api_base_url}{path}", headers={"Authorization": f"Bearer {token}", **headers},
                        cert=server.cert(client_id), verify=server.ca_bundle, timeout=30)


def test_both_instances_share_the_database_pki_and_control_token(pair) -> None:  # noqa: ANN001
    a, b = pair
    assert a.api_base_url != b.api_base_url
    assert a.control_token == b.control_token == CONTROL_TOKEN
    assert a.control("GET", "/scenario")["digest"] == b.control("GET", "/scenario")["digest"]
    # One CA: the certificate files of a third party are the same for both, and each accepts them.
    assert a.third_party("00101")["certificate_chain"] == b.third_party("00101")["certificate_chain"]
    token = client_token(a, "00101")
    assert _get(b, f"{RESOURCE}/ReadServiceStatus", token, "00101").status_code == 200  # issued by A, used on B


def test_the_clock_moved_on_one_is_seen_by_the_other(pair) -> None:  # noqa: ANN001
    a, b = pair
    try:
        moved = a.clock.freeze("2027-03-01T12:00:00-08:00")
        assert b.clock.now() == moved
        a.clock.advance(days=2)
        assert (b.clock.now() - moved).total_seconds() == 2 * 86400
    finally:
        a.clock.thaw()


def test_rate_limits_are_counted_across_both(pg_admin_url: str, tmp_path: Path) -> None:
    from support.pg_cluster import create_database

    # The per-second vendor bucket runs on real time (production pacing): one call per 4 s, depth 1, so
    # "within the window" holds however slow a loaded machine is between two calls.
    a, b = _pair(tmp_path, create_database(pg_admin_url), rate_limits_enabled=True, rate_limit_vendor_burst=1,
                 rate_limit_vendor_per_second=0.25)
    try:
        def hit(server: testing.RunningServer) -> int:  # no token: 401 unless the rate limit answers 429
            return requests.get(f"{server.api_base_url}{RESOURCE}/ReadServiceStatus", cert=server.cert("00101"),
                                verify=server.ca_bundle, timeout=30).status_code

        assert hit(a) == 401
        assert hit(b) == 429  # the vendor's call for this window was spent on the other instance
        time.sleep(4.2)
        assert hit(b) == 401
        assert hit(a) == 429
    finally:
        a.stop()
        b.stop()


def test_no_async_job_is_lost_when_one_instance_is_killed(pair, tmp_path: Path) -> None:  # noqa: ANN001
    a, b = pair
    receiver = NotificationReceiver(a.data_dir / "certs", "pg-tier").start()
    clients = ("00101", "00103")
    try:
        for cid in clients:
            a.control("PATCH", f"/third_parties/{cid}", json={"notification_uri": receiver.url})
        tokens = {cid: client_token(b, cid) for cid in clients}
        accepted: set[str] = set()
        attempted: set[str] = set()
        killed = threading.Event()
        for i in range(200):
            server = b if killed.is_set() or i % 2 else a
            cid = clients[i % 4 // 2]
            transaction = f"pg-tier-{i:03d}"
            attempted.add(transaction)
            try:
                response = _get(server, f"{RESOURCE}/Batch/Bulk/{cid}", tokens[cid], cid, **{"X-Transaction":
                                                                                              transaction})
            except requests.RequestException:
                continue  # in flight at the kill: not accepted, so not owed
            if response.status_code == 202:
                accepted.add(transaction)
            else:
                assert killed.is_set() and server is a, (response.status_code, response.text[:200])
            if i == 100:
                os.killpg(a.process.pid, signal.SIGKILL)  # the whole group: arbiter, workers, job worker
                killed.set()
        assert len(accepted) >= 150

        def owed() -> set[str]:
            return accepted - {p.headers.get("X-Transaction") for p in receiver.posts}

        # A lease the killed worker held runs out first (a package build: 120 s); then the survivor works
        # through the backlog, one POST at a time per third party. Give up only when nothing arrives for
        # longer than that lease (bounded overall), so a busy machine slows the test but does not fail it.
        deadline, seen, last_progress = time.monotonic() + 900, -1, time.monotonic()
        while owed() and time.monotonic() < deadline and time.monotonic() - last_progress < 180:
            if len(receiver.posts) != seen:
                seen, last_progress = len(receiver.posts), time.monotonic()
            time.sleep(0.5)
        if owed():
            stuck = [j for j in b.jobs() if j.get("x_transaction") in owed()]
            notes = [n for n in b.notifications() if n.get("x_transaction") in owed()]
            pytest.fail(f"{len(owed())} accepted job(s) never notified: jobs {stuck[:3]} notifications {notes[:3]}")
        batch = [p for p in receiver.posts if p.headers.get("X-Transaction") is not None]  # not daily packages
        for post in batch:  # a duplicate only ever repeats an accepted request's X-Transaction
            assert post.headers.get("X-Transaction") in attempted
        by_transaction: dict[str, set[str]] = {}
        for post in batch:
            urls = frozenset(re.findall(r"correlationID=([0-9a-f-]+)", post.body.decode()))
            by_transaction.setdefault(post.headers["X-Transaction"], set()).add(urls)
        assert all(len(ids) == 1 for ids in by_transaction.values())  # repeats carry the same correlation ids
        # A package built before the kill, or after it by the survivor, is served by the survivor.
        token = client_token(b, "00101")
        for transaction in sorted(t for t in accepted if int(t.rsplit("-", 1)[1]) % 4 < 2)[:: 10]:  # 00101's
            for correlation_id in next(iter(by_transaction[transaction])):
                url = f"{RESOURCE}/Batch/Bulk/00101?correlationID={correlation_id}"
                assert _get(b, url, token, "00101").status_code == 200
    finally:
        receiver.stop()
