"""The cheaper per-request path (issue 17) still follows everything that changes by time or elsewhere.

In-process (Flask's test client, the TLS layer's verdict in the environ): the clock read once per
request and pinned for it, the guard's one transaction (due events, certificate owners, rate count,
registration deadlines), the prebuilt rate-limit statements, and the request-log Core insert.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from support.report_traffic import R, Traffic

from mock_custodian.clock import Clock, ClockState, advanced
from mock_custodian.domain.ratelimit import RateLimits, check_and_count
from mock_custodian.store import request_log
from mock_custodian.store.db import Database
from mock_custodian.store.models import AccountEvent, RateCounter, RequestLog, ThirdParty, ThirdPartyCertificate


@pytest.fixture()
def traffic(tmp_path: Path) -> Traffic:
    return Traffic(tmp_path / "d")


def other_instance(traffic: Traffic) -> Database:
    """Another process's view of the same data dir (another worker, or a second server instance)."""
    return Database(traffic.database.url)


def move_clock_elsewhere(traffic: Traffic, seconds: float) -> None:
    """Another worker or instance moves the simulated clock: only the shared row changes."""
    other = other_instance(traffic)
    other.write_clock_state(advanced(other.read_clock_state(), seconds, traffic.wall()))


def test_clock_moved_elsewhere_is_seen_by_the_next_request(traffic: Traffic) -> None:
    cat = traffic.token("00101")
    instant = float(int(traffic.runtime.clock.epoch()) + 120)  # within the token's life
    other_instance(traffic).write_clock_state(ClockState(0.0, instant))
    assert traffic.get(f"{R}/ReadServiceStatus", "00101", cat).status_code == 200
    with traffic.database.session() as db:
        last = db.execute(select(RequestLog).order_by(RequestLog.id.desc())).scalars().first()
    assert last.at == instant and last.path.endswith("ReadServiceStatus")
    move_clock_elsewhere(traffic, 3600)
    assert traffic.runtime.clock.epoch() == instant + 3600  # nothing stays pinned after a request


def test_pinned_clock_keeps_running_and_unpins() -> None:
    reads = []
    real = [1000.0]

    def read() -> ClockState:
        reads.append(1)
        return ClockState(offset_s=50.0)

    clock = Clock(read, lambda: real[0])
    clock.pin()
    real[0] += 5
    assert clock.epoch() == 1055.0 and clock.epoch() == 1055.0
    assert len(reads) == 1  # one read for the whole request
    clock.unpin()
    clock.epoch()
    assert len(reads) == 2


def test_a_scheduled_event_applies_on_the_first_api_request_after_the_clock_reaches_it(traffic: Traffic) -> None:
    cat = traffic.token("00101")
    now = traffic.runtime.clock.epoch()
    event = traffic.control("POST", "/events", {"event": "move_out", "sa": "rivera-gas", "at": now + 7200})
    assert traffic.get(f"{R}/ReadServiceStatus", "00101", cat).status_code == 200
    with traffic.database.session() as db:
        assert db.get(AccountEvent, event["id"]).applied_at is None
    move_clock_elsewhere(traffic, 7300)  # moved by another worker: only time changed here
    cat = traffic.token("00101")  # the token call's guard applies it, in its one transaction
    with traffic.database.session() as db:
        assert db.get(AccountEvent, event["id"]).applied_at is not None


def test_a_certificate_activation_delay_is_followed_by_time_alone(traffic: Traffic) -> None:
    now = traffic.runtime.clock.epoch()
    with traffic.database.session() as db:
        tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == "00101")).scalar_one()
        db.add(ThirdPartyCertificate(third_party_id=tp.id, fingerprint_sha256="ab" * 32, status="pending",
                                     uploaded_at=now, activates_at=now + 600, pem=""))
    traffic.fingerprints["00101"] = "ab" * 32
    refused = traffic.post("/datacustodian/oauth/v2/token", "00101", data={"grant_type": "client_credentials"},
                           basic=True)
    assert refused.status_code == 400  # not in force yet: Invalid Certificate
    move_clock_elsewhere(traffic, 601)
    assert traffic.token("00101")


def test_rate_counts_are_exact_and_refusals_undo_themselves(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'r.db'}")
    database.create_schema()
    limits = RateLimits(vendor_per_second=1000, vendor_burst=1000, client_per_hour=5, client_per_day=100)
    now = 1_800_000_000.0
    with database.session() as db:
        decisions = [check_and_count(db, "T1", "c1", now + i, limits) for i in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert decisions[-1].limit.startswith("2,000 calls per hour") and decisions[-1].retry_after > 0
    with database.session() as db:
        rows = {(r.scope, r.subject): r.count for r in db.execute(select(RateCounter)).scalars()}
    assert rows[("client_minute", "c1")] == 5 and rows[("client_day", "c1")] == 5
    assert rows[("vendor", "T1")] == 7  # the vendor bucket admitted all seven; the hourly limit refused two
    with database.session() as db:  # two hours later the old minute is forgotten when a new minute opens
        assert check_and_count(db, "T1", "c1", now + 7300, limits).allowed
        minutes = db.execute(select(RateCounter.window_start).where(RateCounter.scope == "client_minute")).all()
    assert len(minutes) == 1


def test_the_request_log_keeps_the_newest_rows_up_to_its_cap(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_log, "PRUNE_EVERY", 1)
    traffic = Traffic(tmp_path / "d", request_log_max_rows=3)
    cat = traffic.token("00101")
    for _ in range(5):
        assert traffic.get(f"{R}/ReadServiceStatus", "00101", cat).status_code == 200
    with traffic.database.session() as db:
        rows = db.execute(select(RequestLog.path).order_by(RequestLog.id)).scalars().all()
    assert rows == [f"{R}/ReadServiceStatus"] * 3  # the token call, the oldest, is gone
    with traffic.database.session() as db:
        assert request_log.prune(db, 0) == 0  # 0 keeps everything
