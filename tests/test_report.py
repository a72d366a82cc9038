"""The integration report (issue 15): each rule from real traffic, and well-behaved traffic finding nothing.

Traffic goes through the real app in-process (tests/report_traffic.py) with a fake wall clock, so
pacing is exercised without sleeping; where traffic is too costly to produce (2,000 calls an hour,
20,000 a day) rows are written to the request log as the app writes them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_receiver import NotificationReceiver
from report_traffic import TOKEN, R, Traffic
from sqlalchemy import select, update

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.report import RULES, ReportOptions, build_report, exceeds, format_text
from mock_custodian.jobs.worker import JobWorker
from mock_custodian.store.migrate import add_missing_columns
from mock_custodian.store.models import Base, RequestLog, ThirdParty

TP = "00101"  # the demo's standard registration (notify_daily on)
SELF = "00102"  # the demo's self-access registration (daily notifications off)
STATUS = f"{R}/ReadServiceStatus"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    return Traffic(tmp_path_factory.mktemp("report"), async_delay_s=0.0, notify_timeout_s=3.0,
                   notify_retry_minutes=[60.0], report_notification_patience_s=0.3)


@pytest.fixture
def pge(world: Traffic) -> Iterator[Traffic]:
    """A fresh world with the simulated clock frozen (the job worker reads the same instant)."""
    world.control("POST", "/reset")
    world.control("POST", "/clock/freeze")
    world.wall.tick(10)
    yield world


def paced(pge: Traffic, client_id: str, token: str, calls: int, path: str = STATUS) -> None:
    """Calls 1.1 s apart: what PG&E's 1 request/s allows on any reading."""
    for _ in range(calls):
        response = pge.get(path, client_id, token, tick=1.1)
        assert response.status_code == 200, response.get_data(as_text=True)


def well_behaved(pge: Traffic, client_id: str = TP) -> None:
    """A token reused for paced calls: no rule may fire."""
    token = pge.token(client_id, tick=1.1)
    paced(pge, client_id, token, 5)


def test_the_catalogue_names_every_rule_once_with_a_severity_and_section() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids)) >= 20
    assert {rule.severity for rule in RULES} == {"error", "warning"}
    assert all(rule.section and rule.explanation.endswith(".") for rule in RULES)


def test_well_behaved_traffic_produces_no_finding(pge: Traffic) -> None:
    well_behaved(pge)
    report = pge.report()
    assert report["findings"] == [] and report["verdict"] == "pass"
    assert report["requests_examined"] == 6


# --- throttling -------------------------------------------------------------------------------------------


def test_calls_faster_than_production_pacing_are_errors_with_first_and_last_examples(pge: Traffic) -> None:
    token = pge.token(TP, tick=1.1)
    for _ in range(5):
        pge.get(STATUS, TP, token, tick=0.1)
    ids = [r.id for r in _rows(pge)]
    finding = pge.rules()["rate.vendor_per_second"]
    # Burst of 2 data calls, then one call per second: calls 3-5 (0.1 s apart) are refused.
    assert finding["severity"] == "error" and finding["count"] == 3 and finding["client_id"] == TP
    assert finding["first"]["request_id"] == ids[2] and finding["last"]["request_id"] == ids[4]
    assert finding["first"]["real_at"] < finding["last"]["real_at"]
    assert finding["section"] == "6.7"


def test_production_self_access_burst_is_only_a_warning_on_the_literal_reading(pge: Traffic) -> None:
    # The production self-access client: POST token, GET ReadServiceStatus, GET Bulk within ~100 ms.
    token = pge.token(SELF, tick=2)
    assert pge.get(STATUS, SELF, token, tick=0.05).status_code == 200
    pge.get(f"{R}/Batch/Bulk/{SELF}", SELF, token, tick=0.05)
    found = pge.rules()
    assert "rate.vendor_per_second" not in found
    assert found["rate.literal_per_second"]["severity"] == "warning"
    assert found["rate.literal_per_second"]["count"] == 2
    assert pge.report()["errors"] == 0


def test_pacing_counts_all_registrations_of_one_vendor_together(pge: Traffic) -> None:
    with pge.database.session() as db:
        db.execute(update(ThirdParty).where(ThirdParty.client_id == SELF).values(
            tax_id=db.execute(select(ThirdParty.tax_id).where(ThirdParty.client_id == TP)).scalar_one()))
    one, other = pge.token(TP, tick=2), pge.token(SELF, tick=0)
    for _ in range(2):
        pge.get(STATUS, TP, one, tick=0.2)
        pge.get(STATUS, SELF, other, tick=0.2)
    assert pge.rules()["rate.vendor_per_second"]["count"] >= 1


def test_pacing_is_judged_on_wall_clock_time_not_the_simulated_clock(pge: Traffic) -> None:
    token = pge.token(TP, tick=2)
    for _ in range(4):
        pge.control("POST", "/clock/advance", {"seconds": 5})  # simulated time moves; wall time barely
        pge.get(STATUS, TP, token, tick=0.1)
    assert pge.rules()["rate.vendor_per_second"]["count"] == 2


def _insert_calls(pge: Traffic, client_id: str, start: float, count: int, spacing: float) -> None:
    """Rows as the app writes them for ``count`` paced GETs (too many to make through the app cheaply)."""
    rows = [{"at": start + i * spacing, "real_at": start + i * spacing, "surface": "api", "method": "GET",
             "path": STATUS, "query": "", "status": 200, "client_id": client_id, "claimed_client_id": client_id,
             "headers": {}, "worker_pid": 1} for i in range(count)]
    with pge.database.session() as db:
        db.execute(RequestLog.__table__.insert(), rows)


def test_over_2000_calls_in_an_hour_is_an_error_even_with_the_mocks_limits_off(pge: Traffic) -> None:
    start = pge.wall.t
    _insert_calls(pge, TP, start, 2005, 1.1)  # 2,005 calls in 37 minutes, each 1.1 s apart
    found = pge.rules()
    assert found["rate.client_per_hour"]["count"] == 5
    assert "rate.vendor_per_second" not in found and "rate.literal_per_second" not in found


def test_2000_calls_in_an_hour_pass(pge: Traffic) -> None:
    _insert_calls(pge, TP, pge.wall.t, 2000, 1.1)
    _insert_calls(pge, TP, pge.wall.t + 3700, 1000, 1.1)  # the next hour starts afresh
    assert pge.report()["findings"] == []


def _pacific(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=PACIFIC).timestamp()


def test_over_20000_calls_in_a_pacific_day_is_an_error(pge: Traffic) -> None:
    _insert_calls(pge, TP, _pacific(2026, 5, 4, 17, 0, 1), 20010, 4.0)  # 22 h 14 min of calls, 900 an hour
    finding = pge.rules()["rate.client_per_day"]
    assert finding["count"] == 10 and finding["severity"] == "error"


def test_the_daily_count_restarts_at_1700_pacific(pge: Traffic) -> None:
    # 15,000 calls before 17:00 and 15,000 after: 30,000 in 33 h, but no PG&E day holds over 20,000.
    _insert_calls(pge, TP, _pacific(2026, 5, 4, 17, 0) - 15000 * 4.0, 15000, 4.0)
    _insert_calls(pge, TP, _pacific(2026, 5, 4, 17, 0), 15000, 4.0)
    assert pge.report()["findings"] == []


def test_retrying_before_retry_after_is_an_error_and_waiting_is_not(pge: Traffic) -> None:
    token = pge.token(TP, tick=2)
    pge.control("POST", "/faults", {"kind": "rate_limit", "path": "*/ReadServiceStatus", "times": 1,
                                    "retry_after": 5})
    assert pge.get(STATUS, TP, token, tick=1.1).status_code == 429
    pge.get(STATUS, TP, token, tick=2)  # 2 s after a Retry-After of 5
    found = pge.rules()
    assert found["rate.retry_before_retry_after"]["count"] == 1

    pge.control("POST", "/reset")
    token = pge.token(TP, tick=2)
    pge.control("POST", "/faults", {"kind": "maintenance", "path": "*/ReadServiceStatus", "times": 1,
                                    "retry_after": 5})
    assert pge.get(STATUS, TP, token, tick=1.1).status_code == 503
    assert pge.get(STATUS, TP, token, tick=5.5).status_code == 200
    assert pge.report()["findings"] == []


def test_no_back_off_after_a_5xx_is_a_warning(pge: Traffic) -> None:
    token = pge.token(TP, tick=2)
    pge.control("POST", "/faults", {"kind": "http_error", "path": "*/ReadServiceStatus", "times": 1})
    assert pge.get(STATUS, TP, token, tick=1.1).status_code == 500
    pge.get(STATUS, TP, token, tick=0.3)
    assert pge.rules()["rate.no_backoff_after_5xx"]["severity"] == "warning"

    pge.control("POST", "/reset")
    token = pge.token(TP, tick=2)
    pge.control("POST", "/faults", {"kind": "http_error", "path": "*/ReadServiceStatus", "times": 1})
    pge.get(STATUS, TP, token, tick=1.1)
    pge.get(STATUS, TP, token, tick=4)
    assert pge.report()["findings"] == []


# --- tokens -------------------------------------------------------------------------------------------------


def test_a_new_client_token_for_every_call_is_a_warning(pge: Traffic) -> None:
    for _ in range(10):
        token = pge.token(TP, tick=1.1)
        pge.get(STATUS, TP, token, tick=1.1)
    finding = pge.rules()["token.new_client_token_per_call"]
    assert finding["severity"] == "warning" and finding["count"] == 10
    assert "10 client access tokens for 10 calls" in finding["detail"]


def test_a_client_token_reused_for_many_calls_is_fine(pge: Traffic) -> None:
    token = pge.token(TP, tick=1.1)
    paced(pge, TP, token, 12)
    assert pge.report()["findings"] == []


def _customer_token(pge: Traffic, client_id: str = TP) -> dict:
    token = pge.authorize("rivera", client_id)["token"]
    subscription = token["resourceURI"].rsplit("/", 1)[1]
    return token | {"subscription": subscription}


def test_a_customer_token_used_after_expiry_is_an_error(pge: Traffic) -> None:
    token = _customer_token(pge)
    usage_points = f"{R}/Subscription/{token['subscription']}/UsagePoint"
    assert pge.get(usage_points, TP, token["access_token"], tick=1.1).status_code == 200
    pge.control("POST", "/clock/advance", {"hours": 2})
    assert pge.get(usage_points, TP, token["access_token"], tick=1.1).status_code == 403
    finding = pge.rules()["token.customer_token_after_expiry"]
    assert finding["count"] == 1 and finding["severity"] == "error"


def test_refreshing_before_using_an_expired_token_is_fine_and_reusing_the_old_refresh_token_is_not(
        pge: Traffic) -> None:
    token = _customer_token(pge)
    usage_points = f"{R}/Subscription/{token['subscription']}/UsagePoint"
    pge.control("POST", "/clock/advance", {"hours": 2})
    fresh = pge.refresh(TP, token["refresh_token"], tick=1.1)
    assert fresh.status_code == 200
    assert pge.get(usage_points, TP, fresh.get_json()["access_token"], tick=1.1).status_code == 200
    assert pge.report()["findings"] == []

    again = pge.refresh(TP, token["refresh_token"], tick=1.1)  # the rotated-out one
    assert again.status_code == 400
    finding = pge.rules()["token.refresh_token_reused"]
    assert finding["count"] == 1 and finding["first"]["request_id"] == _rows(pge, TOKEN)[-1].id


def test_calls_after_a_403_on_a_revoked_authorization_are_errors(pge: Traffic) -> None:
    token = _customer_token(pge)
    usage_points = f"{R}/Subscription/{token['subscription']}/UsagePoint"
    cat = pge.token(TP, tick=1.1)
    revoke = pge.client.delete(f"{R}/Authorization/{token['subscription']}", headers={"Authorization": f"Bearer {cat}"},
                               environ_base=pge._environ(TP, "api", 2))
    assert revoke.status_code in (200, 204), revoke.get_data(as_text=True)
    pge.wall.tick(1.1)
    assert pge.get(usage_points, TP, token["access_token"], tick=1.1).status_code == 403
    assert "token.calls_after_revoked" not in pge.rules()  # learning of it once is how it works
    for _ in range(3):
        pge.get(usage_points, TP, token["access_token"], tick=1.1)
    finding = pge.rules()["token.calls_after_revoked"]
    assert finding["count"] == 3 and finding["severity"] == "error"


# --- async: notifications and packages -------------------------------------------------------------------


def _bulk_request(pge: Traffic, client_id: str, receiver_url: str) -> tuple[str, str]:
    """An async Bulk request built and notified by a job worker: (client token, correlationID)."""
    with pge.database.session() as db:
        db.execute(update(ThirdParty).values(notification_uri=receiver_url, notify_daily=False))
    cat = pge.token(client_id, tick=1.1)
    accepted = pge.get(f"{R}/Batch/Bulk/{client_id}", client_id, cat, tick=1.1)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    worker = JobWorker(pge.settings, database=pge.database)
    try:
        for _ in range(5):
            worker.tick()
            worker.drain(timeout=30)  # deliveries run on the worker's pool: wait for them
    finally:
        worker.sender.close()
    correlation = pge.control("GET", "/jobs")["jobs"][-1]["correlation_id"]
    return cat, correlation


@pytest.fixture(scope="module")
def receiver(world: Traffic) -> Iterator[NotificationReceiver]:
    rec = NotificationReceiver(world.settings.resolved_data_dir() / "certs").start()
    yield rec
    rec.stop()


def _packages(pge: Traffic) -> list[str]:
    from mock_custodian.store.models import Package

    with pge.database.session() as db:
        return list(db.execute(select(Package.correlation_id).where(Package.notified_at.is_not(None))).scalars())


def test_a_package_fetched_once_after_a_prompt_200_is_fine(pge: Traffic, receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [], 0.0
    cat, _ = _bulk_request(pge, SELF, f"{receiver.url}/{SELF}")
    (correlation,) = _packages(pge)
    got = pge.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1, query={"correlationID": correlation})
    assert got.status_code == 200
    assert pge.report()["findings"] == []


def test_a_receiver_answering_500_is_an_error_and_the_unfetched_package_a_warning(
        pge: Traffic, receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [500], 0.0
    _bulk_request(pge, SELF, f"{receiver.url}/{SELF}")
    found = pge.rules()
    assert found["notify.receiver_refused"]["severity"] == "error"
    assert found["notify.receiver_refused"]["first"]["ref"].startswith("notification ")
    assert found["package.never_fetched"]["count"] == 1


def test_a_slow_receiver_is_a_warning(pge: Traffic, receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [], 0.6  # patience is 0.3 s in this module
    cat, _ = _bulk_request(pge, SELF, f"{receiver.url}/{SELF}")
    receiver.delay_s = 0.0
    pge.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1, query={"correlationID": _packages(pge)[0]})
    found = pge.rules()
    assert found["notify.receiver_slow"]["severity"] == "warning"
    assert "patience 0.3 s" in found["notify.receiver_slow"]["detail"]
    assert set(found) == {"notify.receiver_slow"}


def test_a_receiver_the_data_custodian_cannot_trust_is_a_tls_error(pge: Traffic, tmp_path: Path) -> None:
    stranger = NotificationReceiver(tmp_path / "another-ca", "stranger").start()  # its own dev CA
    try:
        _bulk_request(pge, SELF, f"{stranger.url}/{SELF}")
    finally:
        stranger.stop()
    assert pge.rules()["notify.receiver_tls"]["severity"] == "error"


def test_packages_fetched_many_times_or_after_expiry(pge: Traffic, receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [], 0.0
    cat, _ = _bulk_request(pge, SELF, f"{receiver.url}/{SELF}")
    (correlation,) = _packages(pge)
    for _ in range(4):
        assert pge.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1,
                       query={"correlationID": correlation}).status_code == 200
    assert pge.rules()["package.fetched_many_times"]["count"] == 4
    pge.control("POST", "/clock/advance", {"days": 6})
    cat = pge.token(SELF, tick=1.1)
    late = pge.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1, query={"correlationID": correlation})
    assert late.status_code >= 400
    finding = pge.rules()["package.fetched_after_expiry"]
    assert finding["count"] == 1 and finding["severity"] == "error"


def test_polling_bulk_while_daily_notifications_are_on_is_a_warning(pge: Traffic) -> None:
    with pge.database.session() as db:
        daily = db.execute(select(ThirdParty.notify_daily).where(ThirdParty.client_id == TP)).scalar_one()
    assert daily  # the demo's standard registration ticks "Notify me as data is ready (Daily)"
    cat = pge.token(TP, tick=1.1)
    for _ in range(4):
        pge.get(f"{R}/Batch/Bulk/{TP}", TP, cat, tick=1.1)
    assert pge.rules()["bulk.polled_with_daily_notifications"]["count"] == 4
    pge.control("POST", "/reset")
    cat = pge.token(SELF, tick=1.1)  # daily notifications off: an async request now and then is how it works
    for _ in range(4):
        pge.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1)
    assert "bulk.polled_with_daily_notifications" not in pge.rules()


def test_the_same_days_data_requested_many_times_is_a_warning(pge: Traffic) -> None:
    token = _customer_token(pge)
    path = f"{R}/Batch/Subscription/{token['subscription']}"
    usage_point = pge.get(f"{R}/Subscription/{token['subscription']}/UsagePoint", TP, token["access_token"],
                          tick=1.1)
    assert usage_point.status_code == 200
    first_up = usage_point.get_data(as_text=True).split("UsagePoint/")[1].split("<")[0].split('"')[0]
    path = f"{R}/Batch/Subscription/{token['subscription']}/UsagePoint/{first_up}"
    query = {"published-min": "2026-05-01T07:00:00Z", "published-max": "2026-05-02T07:00:00Z"}
    for _ in range(5):
        assert pge.get(path, TP, token["access_token"], tick=1.1, query=query).status_code == 200
    assert pge.report()["findings"] == []  # a few repeats (a retry, a re-run) are fine
    for _ in range(2):
        assert pge.get(path, TP, token["access_token"], tick=1.1, query=query).status_code == 200
    finding = pge.rules()["data.same_day_requested_many_times"]
    assert finding["count"] == 7 and finding["severity"] == "warning"


# --- requests PG&E does not promise ---------------------------------------------------------------------------


def test_date_forms_pg_e_does_not_promise_are_warnings_but_epoch_seconds_are_not(pge: Traffic) -> None:
    cat = pge.token(TP, tick=1.1)
    bulk = f"{R}/Batch/Bulk/{TP}"
    pge.get(bulk, TP, cat, tick=1.1, query={"published-min": "1777000000", "published-max": "1777082800"})
    pge.get(bulk, TP, cat, tick=1.1, query={"published-min": "2026-05-01T07:00:00Z"})
    assert pge.report()["findings"] == []
    pge.get(bulk, TP, cat, tick=1.1, query={"published-min": "2026-05-01T00:00:00-07:00"})
    pge.get(bulk, TP, cat, tick=1.1, query={"published-min": "2026-05-01T07:00:00.000Z"})
    finding = pge.rules()["request.date_form"]
    assert finding["count"] == 2 and "-07:00" in finding["detail"]


def test_unhyphenated_aliases_and_unknown_parameters_are_warnings(pge: Traffic) -> None:
    cat = pge.token(TP, tick=1.1)
    bulk = f"{R}/Batch/Bulk/{TP}"
    pge.get(bulk, TP, cat, tick=1.1, query={"publishedmin": "2026-05-01T07:00:00Z"})
    pge.get(STATUS, TP, cat, tick=1.1, query={"max-results": "10"})
    found = pge.rules()
    assert found["request.unhyphenated_alias"]["detail"] == "publishedmin"
    assert found["request.unknown_parameter"]["detail"] == "max-results"
    assert "request.date_form" not in found


def test_a_leaf_certificate_without_its_chain_is_a_warning(pge: Traffic) -> None:
    cat = pge.token(TP, tick=1.1)
    pge.get(STATUS, TP, cat, tick=1.1, chain_length=1)
    assert pge.rules()["tls.leaf_without_chain"]["count"] == 1
    pge.control("POST", "/reset")
    well_behaved(pge)  # leaf and intermediate
    assert "tls.leaf_without_chain" not in pge.rules()


# --- period, filters, surfaces ---------------------------------------------------------------------------


def test_client_filter_and_since_id_limit_the_period(pge: Traffic) -> None:
    token = pge.token(TP, tick=1.1)
    for _ in range(4):
        pge.get(STATUS, TP, token, tick=0.1)
    last_bad = _rows(pge)[-1].id
    assert pge.report(client_id=TP)["errors"] == 1
    assert pge.report(client_id=SELF)["findings"] == []
    paced(pge, TP, token, 2)
    assert pge.report(since_id=last_bad)["findings"] == []
    assert pge.report(since_id=last_bad)["requests_examined"] == 2


def test_fail_on_gates_and_the_text_form_names_rule_client_and_examples(pge: Traffic) -> None:
    token = pge.token(SELF, tick=2)
    pge.get(STATUS, SELF, token, tick=0.05)  # a literal-reading warning only
    report = pge.report()
    assert not exceeds(report, "error") and exceeds(report, "warning") and not exceeds(report, None)
    text = format_text(report)
    assert "rate.literal_per_second" in text and f"client {SELF}" in text and "first: request" in text


def test_the_control_api_serves_the_report_and_refuses_a_bad_fail_on(pge: Traffic) -> None:
    token = pge.token(TP, tick=1.1)
    for _ in range(4):
        pge.get(STATUS, TP, token, tick=0.1)
    body = pge.control("GET", "/report?fail_on=error")
    assert body["failed"] is True and body["findings"][0]["rule"] == "rate.vendor_per_second"
    assert pge.control("GET", f"/report?client_id={SELF}")["findings"] == []
    bad = pge.client.get("/__sim/report?fail_on=sometimes", headers={"X-Control-Token": "control-token-for-tests"},
                         environ_base=pge._environ(None, "portal", 0))
    assert bad.status_code == 400
    anonymous = pge.client.get("/__sim/report", environ_base=pge._environ(None, "portal", 0))
    assert anonymous.status_code == 401
    assert len(pge.control("GET", "/report/rules")["rules"]) == len(RULES)


def test_the_request_log_keeps_a_token_fingerprint_never_the_token(pge: Traffic) -> None:
    token = pge.token(TP, tick=1.1)
    pge.get(STATUS, TP, token, tick=1.1)
    row = _rows(pge)[-1]
    assert row.token_fingerprint and len(row.token_fingerprint) == 12 and row.token_fingerprint not in token
    assert row.token_kind == "client_access" and row.real_at == pge.wall.t and row.chain_length == 2
    with pge.database.session() as db:
        for logged in db.execute(select(RequestLog)).scalars():
            assert token not in repr(logged.headers) + repr(logged.parameters) + logged.query


def test_an_older_data_dirs_request_log_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    from sqlalchemy import create_engine, inspect

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE request_log (id INTEGER PRIMARY KEY, at FLOAT, surface VARCHAR(8), method "
                     "VARCHAR(10), path TEXT, query TEXT, status INTEGER, client_id VARCHAR(32), claimed_client_id "
                     "VARCHAR(32), certificate_sha256 VARCHAR(64), headers JSON, error VARCHAR(64), reason TEXT, "
                     "parameters JSON, worker_pid INTEGER)")
        conn.execute("INSERT INTO request_log (at, surface, method, path, query, status, client_id, headers, "
                     "worker_pid) VALUES (1.0, 'api', 'GET', '/x', '', 200, '00101', '{}', 1)")
    engine = create_engine(f"sqlite:///{path}")
    added = add_missing_columns(engine)
    assert {"request_log.real_at", "request_log.token_fingerprint", "request_log.chain_length"} <= set(added)
    assert "real_at" in {c["name"] for c in inspect(engine).get_columns("request_log")}
    assert add_missing_columns(engine) == []
    Base.metadata.create_all(engine)  # the tables an old data dir lacks, as Database.create_schema does
    from sqlalchemy.orm import Session

    with Session(engine) as db:  # an old row (no wall-clock time) is judged on its simulated time
        report = build_report(db, ReportOptions(), 2.0)
    assert report["requests_examined"] == 1 and report["findings"] == []


def _rows(pge: Traffic, path: str | None = None) -> list[RequestLog]:
    """Logged data calls (or the calls to ``path``), oldest first."""
    where = RequestLog.path == path if path else RequestLog.path != TOKEN
    with pge.database.session() as db:
        return list(db.execute(select(RequestLog).where(where).order_by(RequestLog.id)).scalars())


def test_the_docs_rules_table_lists_exactly_the_rules() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "report-and-console.md").read_text()
    table = docs.split("### Rules", 1)[1].split("How the less obvious", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_.]+)` \| (error|warning) \|", table, re.MULTILINE)
    assert documented == [(rule.id, rule.severity) for rule in RULES]
