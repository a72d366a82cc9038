"""Keep-alive connections spread evenly over the workers (issue 17: a CI suite or a load test with a
few keep-alive clients must not have them all on one worker, one core, while the other idles)."""

from __future__ import annotations

import collections

import requests
import support
from sqlalchemy import func, select

from mock_custodian import testing
from mock_custodian.server import ConnectionBoard
from mock_custodian.store.models import RequestLog

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


def test_the_board_tells_a_busier_worker_from_the_least_busy() -> None:
    board = ConnectionBoard(4)
    first = board.claim(set())
    second = board.claim({first})
    assert first != second
    assert not board.busier_than_another(first)  # 0 and 0
    board.counts[first] = 2
    board.counts[second] = 1
    assert board.busier_than_another(first)
    assert not board.busier_than_another(second)
    board.free(second)  # an exited worker's slot counts for nothing
    assert not board.busier_than_another(first)
    assert board.claim({first}) == second  # and is given to the next worker


def test_four_keep_alive_connections_land_two_on_each_worker(demo_server: testing.RunningServer) -> None:
    """Opened one after another and kept open, as four client processes would: two per worker.

    Without the board, which worker accepts is chance: all four on one worker 1 time in 8, three and one
    1 time in 2.
    """
    token = support.client_token(demo_server)
    database = support.database(demo_server)
    with database.session() as db:
        since = db.execute(select(func.coalesce(func.max(RequestLog.id), 0))).scalar_one()
    sessions = [requests.Session() for _ in range(4)]
    try:
        for session in sessions:  # each connection is open (kept alive) before the next one is made
            for _ in range(2):
                response = session.get(f"{demo_server.api_base_url}{RESOURCE}/ReadServiceStatus",
                                       headers={"Authorization": f"Bearer {token}"},
                                       cert=demo_server.cert("00101"), verify=demo_server.ca_bundle, timeout=10)
                assert response.status_code == 200
        with database.session() as db:
            pids = db.execute(select(RequestLog.worker_pid).where(RequestLog.id > since)
                              .order_by(RequestLog.id)).scalars().all()
    finally:
        for session in sessions:
            session.close()
    assert len(pids) == 8
    per_connection = [pids[i:i + 2] for i in range(0, 8, 2)]
    assert all(a == b for a, b in per_connection), "a kept-alive connection changed worker"
    counts = collections.Counter(first for first, _ in per_connection)
    assert sorted(counts.values()) == [2, 2], counts
