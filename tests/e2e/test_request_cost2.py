"""Issue 17, second round: what the cheaper paths keep must never show a stale answer.

- Synthesized days kept per worker (``synth.readings.PureDays``): corrections apply on top at once, a
  changed SA model is another key, the memory bound holds.
- Large responses written in whole-chunk writes (``server.TLSSocket``): complete, in order, the connection
  reusable afterwards, and a client that leaves mid-stream costs the worker nothing.
- The guard's and handlers' reads on the driver connection (``store.db.Sql``): a registration deadline
  passed by time alone still moves the registration on.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from lxml import etree
from sqlalchemy import select
from support.report_traffic import R, Traffic

from mock_custodian import testing
from mock_custodian.clock import PACIFIC, ClockState
from mock_custodian.domain.registry import TESTING_WINDOW_S
from mock_custodian.store.db import Database, Sql
from mock_custodian.store.models import ThirdParty
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.localtime import day_bounds
from mock_custodian.synth.readings import PURE_DAYS, DayReadings, PureDays, _pure_block, day_readings

ESPI = "http://naesb.org/espi"
DAY = dt.date(2026, 5, 12)


def _model(seed: int = 7) -> ServiceAgreementModel:
    return ServiceAgreementModel(usage_point_id=f"up-{seed}", profile="commercial_15min", interval_length=900,
                                 seed=seed, sa_start=0)


def test_a_kept_day_is_the_synthesized_day_and_overrides_still_win() -> None:
    sa = _model()
    start, end = day_bounds(DAY)
    first = day_readings(sa, 1, 1, DAY)
    assert first is day_readings(sa, 1, 1, DAY)  # kept: the second call synthesizes nothing
    assert first == _pure_block(sa, 1, 1, DAY, start, end)
    corrected = DayReadings(start, end - start, 900, list(first.starts), [v * 2 for v in first.values], 17)
    assert day_readings(sa, 1, 1, DAY, {(1, 1, start): corrected}) is corrected  # a correction, at once
    assert day_readings(sa, 1, 1, DAY, {(1, 1, start): None}) is None  # a gap, at once
    other = day_readings(_model(seed=8), 1, 1, DAY)  # another model (here its seed) is another key
    assert other is not None and other.values != first.values
    assert other == _pure_block(_model(seed=8), 1, 1, DAY, start, end)


def test_kept_days_stay_within_their_limit_oldest_model_first() -> None:
    days = PureDays(limit=300)
    blocks = {seed: day_readings(_model(seed), 1, 1, DAY) for seed in (1, 2, 3, 4)}  # 96 readings each
    tables = {}
    for seed, block in blocks.items():
        tables[seed] = days.table(_model(seed))
        days.put(tables[seed], (1, 1, block.day_start), block)
    held = [seed for seed in blocks if days.table(_model(seed))]
    assert held == [2, 3, 4]  # the first model's day went to make room; 288 readings held
    big = PureDays(limit=100)
    table = big.table(_model(5))
    big.put(table, (1, 1, 0), blocks[1])
    big.put(table, (1, 1, 1), blocks[2])  # one model alone cannot push past the limit
    assert list(table) == [(1, 1, 0)]
    assert PureDays(limit=0).table(_model(6)) is None  # 0 keeps nothing


def _feed_values(traffic: Traffic, url: str, token: str, day_start: int) -> list[int]:
    response = traffic.get(url, "00101", token)
    assert response.status_code == 200, response.get_data(as_text=True)
    feed = etree.fromstring(response.get_data())
    for block in feed.iter(f"{{{ESPI}}}IntervalBlock"):
        if block.findtext(f"{{{ESPI}}}interval/{{{ESPI}}}start") == str(day_start):
            return [int(v.text) for v in block.iter(f"{{{ESPI}}}value")]
    raise AssertionError(f"no block of {day_start}")


def test_a_correction_shows_at_once_on_a_feed_of_kept_days(tmp_path: Path) -> None:
    traffic = Traffic(tmp_path / "d")
    granted = traffic.control("POST", "/authorizations", {"customer": "okafor", "client_id": "00101",
                                                           "service_agreements": ["okafor-solar"]})
    token, sub = granted["token"]["access_token"], granted["authorization_id"]
    listing = traffic.get(f"{R}/Subscription/{sub}/UsagePoint", "00101", token).get_data(as_text=True)
    up = listing.split("/UsagePoint/")[1].split('"')[0]
    now = traffic.runtime.clock.epoch()
    day = dt.datetime.fromtimestamp(now, PACIFIC).date() - dt.timedelta(days=10)
    day_start = int(dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp())
    url = (f"{R}/Batch/Subscription/{sub}/UsagePoint/{up}?"
           + urlencode({"published-min": day_start - 3 * 86400, "published-max": int(now)}))
    PURE_DAYS.clear()
    before = _feed_values(traffic, url, token, day_start)
    assert _feed_values(traffic, url, token, day_start) == before  # served again from the kept days
    assert any(key[2] == day_start for table in PURE_DAYS._tables.values() for key in table)
    traffic.control("POST", "/data-changes", {"kind": "correction", "sa": "okafor-solar", "start": day_start,
                                              "end": day_start + 86400, "factor": 1.25})
    after = _feed_values(traffic, url, token, day_start)
    assert after != before
    assert sum(after) == pytest.approx(sum(before) * 1.25, rel=0.01)


def test_a_clock_moved_elsewhere_shows_at_once_on_a_feed_of_kept_days(tmp_path: Path) -> None:
    traffic = Traffic(tmp_path / "d")
    now = traffic.runtime.clock.epoch()
    window = urlencode({"published-min": int(now - 5 * 86400), "published-max": int(now + 10 * 86400)})

    def block_starts() -> set[str]:
        granted = traffic.control("POST", "/authorizations", {"customer": "okafor", "client_id": "00101",
                                                               "service_agreements": ["okafor-solar"]})
        token, sub = granted["token"]["access_token"], granted["authorization_id"]
        listing = traffic.get(f"{R}/Subscription/{sub}/UsagePoint", "00101", token).get_data(as_text=True)
        up = listing.split("/UsagePoint/")[1].split('"')[0]
        response = traffic.get(f"{R}/Batch/Subscription/{sub}/UsagePoint/{up}?{window}", "00101", token)
        assert response.status_code == 200, response.get_data(as_text=True)
        feed = etree.fromstring(response.get_data())
        return {b.findtext(f"{{{ESPI}}}interval/{{{ESPI}}}start") for b in feed.iter(f"{{{ESPI}}}IntervalBlock")}

    before = block_starts()
    assert block_starts() == before  # the second fetch is served from the kept days
    other = Database(traffic.database.url)  # another worker or instance moves the clock two days on
    state = other.read_clock_state()
    other.write_clock_state(ClockState(state.offset_s + 2 * 86400,
                                       None if state.frozen_at is None else state.frozen_at + 2 * 86400))
    after = block_starts()
    assert before < after and len(after - before) == 2  # two more days published, at once


def test_a_deadline_passed_by_time_alone_moves_the_registration_on_at_the_guard(tmp_path: Path) -> None:
    traffic = Traffic(tmp_path / "d")
    with traffic.database.session() as db:
        tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == "00101")).scalar_one()
        tp.status, tp.accepted_at, tp.approved_at = "accepted", traffic.runtime.clock.epoch() - 10, None
    assert traffic.post("/datacustodian/test/oauth/v2/token", "00101", data={"grant_type": "client_credentials"},
                        basic=True).status_code == 200
    other = Database(traffic.database.url)  # another worker or instance moves the clock past the window
    other.write_clock_state(ClockState(TESTING_WINDOW_S, None))
    refused = traffic.post("/datacustodian/test/oauth/v2/token", "00101", data={"grant_type": "client_credentials"},
                           basic=True)
    assert refused.status_code == 401
    with traffic.database.session() as db:
        assert db.execute(select(ThirdParty.status).where(ThirdParty.client_id == "00101")).scalar_one() == "expired"


def test_prebuilt_statements_render_for_each_driver() -> None:
    stmt = Sql("SELECT a FROM t WHERE b = :b AND c::text LIKE '10%' AND d = :d_2",
               postgresql="SELECT a FROM t WHERE b = :b AND c::text LIKE '10%' AND d = CAST(:d_2 AS JSON)")
    assert stmt.named == "SELECT a FROM t WHERE b = :b AND c::text LIKE '10%' AND d = :d_2"
    assert stmt.pyformat == "SELECT a FROM t WHERE b = %(b)s AND c::text LIKE '10%%' AND d = CAST(%(d_2)s AS JSON)"


# --- large writes, over real TLS ----------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    running = testing.start(tmp_path_factory.mktemp("writer"), workers=1)
    try:
        running.clock.freeze(dt.datetime(2026, 11, 10, 10, tzinfo=PACIFIC).timestamp())
        yield running
    finally:
        running.stop()


def _connection(server: testing.RunningServer) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=server.ca_bundle)
    ctx.load_cert_chain(*server.cert("00101"))
    api = urlsplit(server.api_base_url)
    return http.client.HTTPSConnection(api.hostname, api.port, context=ctx, timeout=60)


def _feed_path(server: testing.RunningServer) -> tuple[str, dict[str, str]]:
    granted = server.authorize("okafor", "00101", service_agreements=["okafor-solar"], groups=["Usage"],
                               via="control")
    headers = {"Authorization": f"Bearer {granted['token']['access_token']}"}
    conn = _connection(server)
    conn.request("GET", f"{R}/Subscription/{granted['authorization_id']}/UsagePoint", headers=headers)
    up = conn.getresponse().read().decode().split("/UsagePoint/")[1].split('"')[0]
    conn.close()
    now = server.clock.now().timestamp()
    query = urlencode({"published-min": int(now - 90 * 86400), "published-max": int(now)})
    return f"{R}/Batch/Subscription/{granted['authorization_id']}/UsagePoint/{up}?{query}", headers


def test_a_large_feed_arrives_whole_and_the_connection_serves_the_next_request(
        server: testing.RunningServer) -> None:
    path, headers = _feed_path(server)
    conn = _connection(server)
    fetched = []
    for _ in range(2):  # the second fetch on the same keep-alive connection, after the large writes
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
        body = response.read()
        assert len(body) > 4 * 65536  # large enough for whole-chunk writes
        fetched.append([v.text for v in etree.fromstring(body).iter(f"{{{ESPI}}}value")])
    assert fetched[0] == fetched[1] and len(fetched[0]) >= 2 * 96 * 85  # 90 days of both flows, none lost
    conn.request("GET", f"{R}/ReadServiceStatus", headers=headers)
    small = conn.getresponse()
    assert small.status == 403 and small.read()  # a customer token on a client-token resource: answered in order
    conn.close()


def test_a_client_leaving_mid_stream_leaves_the_worker_serving(server: testing.RunningServer) -> None:
    path, headers = _feed_path(server)
    for _ in range(3):
        conn = _connection(server)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        response.read(100_000)
        conn.sock.close()  # gone, with most of the feed unsent
    conn = _connection(server)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    assert response.status == 200 and etree.fromstring(response.read()) is not None
    conn.close()
    assert "Traceback" not in server.log()


def test_a_prebuilt_write_waits_for_another_connections_write_lock(tmp_path: Path) -> None:
    """The hot path's connections do not sleep in SQLite's busy handler (1 ms and up) but retry briefly
    themselves: a write behind another connection's transaction still waits for it, then succeeds."""
    import sqlite3
    import threading

    database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    database.create_schema()
    blocker = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    blocker.execute("INSERT INTO sim_meta (key, value) VALUES ('first', '1')")
    done: list[object] = []

    def write() -> None:
        try:
            with database.transaction() as raw:
                raw.run(Sql("INSERT INTO sim_meta (key, value) VALUES ('second', '2')"))
            done.append("ok")
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            done.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.3)
    assert writer.is_alive() and not done  # still waiting, not failed with "database is locked"
    blocker.execute("COMMIT")
    writer.join(10)
    assert done == ["ok"]
    assert database.read_row("SELECT COUNT(*) FROM sim_meta WHERE key IN ('first', 'second')") == (2,)
    blocker.close()
