"""The integration report (issue 15): each rule from real traffic, and well-behaved traffic finding nothing.

Traffic goes through the real app in-process (tests/support/report_traffic.py) with a fake wall clock, so
pacing is exercised without sleeping; where traffic is too costly to produce (2,000 calls an hour,
20,000 a day) rows are written to the request log as the app writes them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from support import ROOT
from support.notify_receiver import NotificationReceiver
from support.report_traffic import TOKEN, R, Traffic

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
def frozen_world(world: Traffic) -> Iterator[Traffic]:
    """A fresh world with the simulated clock frozen (the job worker reads the same instant)."""
    world.control("POST", "/reset")
    world.control("POST", "/clock/freeze")
    world.wall.tick(10)
    yield world


def paced(frozen_world: Traffic, client_id: str, token: str, calls: int, path: str = STATUS) -> None:
    """Calls 1.1 s apart: what PG&E's 1 request/s allows on any reading."""
    for _ in range(calls):
        response = frozen_world.get(path, client_id, token, tick=1.1)
        assert response.status_code == 200, response.get_data(as_text=True)


def well_behaved(frozen_world: Traffic, client_id: str = TP) -> None:
    """A token reused for paced calls: no rule may fire."""
    token = frozen_world.token(client_id, tick=1.1)
    paced(frozen_world, client_id, token, 5)


def test_the_catalogue_names_every_rule_once_with_a_severity_and_section() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids)) >= 20
    assert {rule.severity for rule in RULES} == {"error", "warning"}
    assert all(rule.section and rule.explanation.endswith(".") for rule in RULES)


def test_well_behaved_traffic_produces_no_finding(frozen_world: Traffic) -> None:
    well_behaved(frozen_world)
    report = frozen_world.report()
    assert report["findings"] == [] and report["verdict"] == "pass"
    assert report["requests_examined"] == 6


# --- throttling -------------------------------------------------------------------------------------------


def test_calls_faster_than_production_pacing_are_errors_with_first_and_last_examples(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=1.1)
    for _ in range(5):
        frozen_world.get(STATUS, TP, token, tick=0.1)
    ids = [r.id for r in _rows(frozen_world)]
    finding = frozen_world.rules()["rate.vendor_per_second"]
    # Burst of 2 data calls, then one call per second: calls 3-5 (0.1 s apart) are refused.
    assert finding["severity"] == "error" and finding["count"] == 3 and finding["client_id"] == TP
    assert finding["first"]["request_id"] == ids[2] and finding["last"]["request_id"] == ids[4]
    assert finding["first"]["real_at"] < finding["last"]["real_at"]
    assert finding["section"] == "6.7"


def test_production_self_access_burst_is_only_a_warning_on_the_literal_reading(frozen_world: Traffic) -> None:
    # The production self-access client: POST token, GET ReadServiceStatus, GET Bulk within ~100 ms.
    token = frozen_world.token(SELF, tick=2)
    assert frozen_world.get(STATUS, SELF, token, tick=0.05).status_code == 200
    frozen_world.get(f"{R}/Batch/Bulk/{SELF}", SELF, token, tick=0.05)
    found = frozen_world.rules()
    assert "rate.vendor_per_second" not in found
    assert found["rate.literal_per_second"]["severity"] == "warning"
    assert found["rate.literal_per_second"]["count"] == 2
    assert frozen_world.report()["errors"] == 0


def test_pacing_counts_all_registrations_of_one_vendor_together(frozen_world: Traffic) -> None:
    with frozen_world.database.session() as db:
        db.execute(update(ThirdParty).where(ThirdParty.client_id == SELF).values(
            tax_id=db.execute(select(ThirdParty.tax_id).where(ThirdParty.client_id == TP)).scalar_one()))
    one, other = frozen_world.token(TP, tick=2), frozen_world.token(SELF, tick=0)
    for _ in range(2):
        frozen_world.get(STATUS, TP, one, tick=0.2)
        frozen_world.get(STATUS, SELF, other, tick=0.2)
    assert frozen_world.rules()["rate.vendor_per_second"]["count"] >= 1


def test_pacing_is_judged_on_wall_clock_time_not_the_simulated_clock(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=2)
    for _ in range(4):
        frozen_world.control("POST", "/clock/advance", {"seconds": 5})  # simulated time moves; wall time barely
        frozen_world.get(STATUS, TP, token, tick=0.1)
    assert frozen_world.rules()["rate.vendor_per_second"]["count"] == 2


def _insert_calls(frozen_world: Traffic, client_id: str, start: float, count: int, spacing: float) -> None:
    """Rows as the app writes them for ``count`` paced GETs (too many to make through the app cheaply)."""
    rows = [{"at": start + i * spacing, "real_at": start + i * spacing, "surface": "api", "method": "GET",
             "path": STATUS, "query": "", "status": 200, "client_id": client_id, "claimed_client_id": client_id,
             "headers": {}, "worker_pid": 1} for i in range(count)]
    with frozen_world.database.session() as db:
        db.execute(RequestLog.__table__.insert(), rows)


def test_over_2000_calls_in_an_hour_is_an_error_even_with_the_mocks_limits_off(frozen_world: Traffic) -> None:
    start = frozen_world.wall.t
    _insert_calls(frozen_world, TP, start, 2005, 1.1)  # 2,005 calls in 37 minutes, each 1.1 s apart
    found = frozen_world.rules()
    assert found["rate.client_per_hour"]["count"] == 5
    assert "rate.vendor_per_second" not in found and "rate.literal_per_second" not in found


def test_2000_calls_in_an_hour_pass(frozen_world: Traffic) -> None:
    _insert_calls(frozen_world, TP, frozen_world.wall.t, 2000, 1.1)
    _insert_calls(frozen_world, TP, frozen_world.wall.t + 3700, 1000, 1.1)  # the next hour starts afresh
    assert frozen_world.report()["findings"] == []


def _pacific(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=PACIFIC).timestamp()


def test_over_20000_calls_in_a_pacific_day_is_an_error(frozen_world: Traffic) -> None:
    _insert_calls(frozen_world, TP, _pacific(2026, 5, 4, 17, 0, 1), 20010, 4.0)  # 22 h 14 min of calls, 900 an hour
    finding = frozen_world.rules()["rate.client_per_day"]
    assert finding["count"] == 10 and finding["severity"] == "error"


def test_the_daily_count_restarts_at_1700_pacific(frozen_world: Traffic) -> None:
    # 15,000 calls before 17:00 and 15,000 after: 30,000 in 33 h, but no PG&E day holds over 20,000.
    _insert_calls(frozen_world, TP, _pacific(2026, 5, 4, 17, 0) - 15000 * 4.0, 15000, 4.0)
    _insert_calls(frozen_world, TP, _pacific(2026, 5, 4, 17, 0), 15000, 4.0)
    assert frozen_world.report()["findings"] == []


def test_retrying_before_retry_after_is_an_error_and_waiting_is_not(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=2)
    frozen_world.control("POST", "/faults", {"kind": "rate_limit", "path": "*/ReadServiceStatus", "times": 1,
                                    "retry_after": 5})
    assert frozen_world.get(STATUS, TP, token, tick=1.1).status_code == 429
    frozen_world.get(STATUS, TP, token, tick=2)  # 2 s after a Retry-After of 5
    found = frozen_world.rules()
    assert found["rate.retry_before_retry_after"]["count"] == 1

    frozen_world.control("POST", "/reset")
    token = frozen_world.token(TP, tick=2)
    frozen_world.control("POST", "/faults", {"kind": "maintenance", "path": "*/ReadServiceStatus", "times": 1,
                                    "retry_after": 5})
    assert frozen_world.get(STATUS, TP, token, tick=1.1).status_code == 503
    assert frozen_world.get(STATUS, TP, token, tick=5.5).status_code == 200
    assert frozen_world.report()["findings"] == []


def test_no_back_off_after_a_5xx_is_a_warning(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=2)
    frozen_world.control("POST", "/faults", {"kind": "http_error", "path": "*/ReadServiceStatus", "times": 1})
    assert frozen_world.get(STATUS, TP, token, tick=1.1).status_code == 500
    frozen_world.get(STATUS, TP, token, tick=0.3)
    assert frozen_world.rules()["rate.no_backoff_after_5xx"]["severity"] == "warning"

    frozen_world.control("POST", "/reset")
    token = frozen_world.token(TP, tick=2)
    frozen_world.control("POST", "/faults", {"kind": "http_error", "path": "*/ReadServiceStatus", "times": 1})
    frozen_world.get(STATUS, TP, token, tick=1.1)
    frozen_world.get(STATUS, TP, token, tick=4)
    assert frozen_world.report()["findings"] == []


# --- tokens -------------------------------------------------------------------------------------------------


def test_a_new_client_token_for_every_call_is_a_warning(frozen_world: Traffic) -> None:
    for _ in range(10):
        token = frozen_world.token(TP, tick=1.1)
        frozen_world.get(STATUS, TP, token, tick=1.1)
    finding = frozen_world.rules()["token.new_client_token_per_call"]
    assert finding["severity"] == "warning" and finding["count"] == 10
    assert "10 client access tokens for 10 calls" in finding["detail"]


def test_a_client_token_reused_for_many_calls_is_fine(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=1.1)
    paced(frozen_world, TP, token, 12)
    assert frozen_world.report()["findings"] == []


def _customer_token(frozen_world: Traffic, client_id: str = TP) -> dict:
    token = frozen_world.authorize("rivera", client_id)["token"]
    subscription = token["resourceURI"].rsplit("/", 1)[1]
    return token | {"subscription": subscription}


def test_a_customer_token_used_after_expiry_is_an_error(frozen_world: Traffic) -> None:
    token = _customer_token(frozen_world)
    usage_points = f"{R}/Subscription/{token['subscription']}/UsagePoint"
    assert frozen_world.get(usage_points, TP, token["access_token"], tick=1.1).status_code == 200
    frozen_world.control("POST", "/clock/advance", {"hours": 2})
    assert frozen_world.get(usage_points, TP, token["access_token"], tick=1.1).status_code == 403
    finding = frozen_world.rules()["token.customer_token_after_expiry"]
    assert finding["count"] == 1 and finding["severity"] == "error"


def test_refreshing_before_using_an_expired_token_is_fine_and_reusing_the_old_refresh_token_is_not(
        frozen_world: Traffic) -> None:
    token = _customer_token(frozen_world)
    usage_points = f"{R}/Subscription/{token['subscription']}/UsagePoint"
    frozen_world.control("POST", "/clock/advance", {"hours": 2})
    fresh = frozen_world.refresh(TP, token["refresh_token"], tick=1.1)
    assert fresh.status_code == 200
    assert frozen_world.get(usage_points, TP, fresh.get_json()["access_token"], tick=1.1).status_code == 200
    assert frozen_world.report()["findings"] == []

    again = frozen_world.refresh(TP, token["refresh_token"], tick=1.1)  # the rotated-out one
    assert again.status_code == 400
    finding = frozen_world.rules()["token.refresh_token_reused"]
    assert finding["count"] == 1 and finding["first"]["request_id"] == _rows(frozen_world, TOKEN)[-1].id


def test_calls_after_a_403_on_a_revoked_authorization_are_errors(frozen_world: Traffic) -> None:
    token = _customer_token(frozen_world)
    usage_points = f"{R}/Subscription/{token['subscription']}/UsagePoint"
    cat = frozen_world.token(TP, tick=1.1)
    revoke = frozen_world.client.delete(f"{R}/Authorization/{token['subscription']}",
                                        headers={"Authorization": f"Bearer {cat}"},
                               environ_base=frozen_world._environ(TP, "api", 2))
    assert revoke.status_code in (200, 204), revoke.get_data(as_text=True)
    frozen_world.wall.tick(1.1)
    assert frozen_world.get(usage_points, TP, token["access_token"], tick=1.1).status_code == 403
    assert "token.calls_after_revoked" not in frozen_world.rules()  # learning of it once is how it works
    for _ in range(3):
        frozen_world.get(usage_points, TP, token["access_token"], tick=1.1)
    finding = frozen_world.rules()["token.calls_after_revoked"]
    assert finding["count"] == 3 and finding["severity"] == "error"


# --- async: notifications and packages -------------------------------------------------------------------


def _bulk_request(frozen_world: Traffic, client_id: str, receiver_url: str) -> tuple[str, str]:
    """An async Bulk request built and notified by a job worker: (client token, correlationID)."""
    with frozen_world.database.session() as db:
        db.execute(update(ThirdParty).values(notification_uri=receiver_url, notify_daily=False))
    cat = frozen_world.token(client_id, tick=1.1)
    accepted = frozen_world.get(f"{R}/Batch/Bulk/{client_id}", client_id, cat, tick=1.1)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    worker = JobWorker(frozen_world.settings, database=frozen_world.database)
    try:
        for _ in range(5):
            worker.tick()
            worker.drain(timeout=30)  # deliveries run on the worker's pool: wait for them
    finally:
        worker.sender.close()
    correlation = frozen_world.control("GET", "/jobs")["jobs"][-1]["correlation_id"]
    return cat, correlation


@pytest.fixture(scope="module")
def receiver(world: Traffic) -> Iterator[NotificationReceiver]:
    rec = NotificationReceiver(world.settings.resolved_data_dir() / "certs").start()
    yield rec
    rec.stop()


def _packages(frozen_world: Traffic) -> list[str]:
    from mock_custodian.store.models import Package

    with frozen_world.database.session() as db:
        return list(db.execute(select(Package.correlation_id).where(Package.notified_at.is_not(None))).scalars())


def test_a_package_fetched_once_after_a_prompt_200_is_fine(frozen_world: Traffic,
                                                           receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [], 0.0
    cat, _ = _bulk_request(frozen_world, SELF, f"{receiver.url}/{SELF}")
    (correlation,) = _packages(frozen_world)
    got = frozen_world.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1, query={"correlationID": correlation})
    assert got.status_code == 200
    assert frozen_world.report()["findings"] == []


def test_a_receiver_answering_500_is_an_error_and_the_unfetched_package_a_warning(
        frozen_world: Traffic, receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [500], 0.0
    _bulk_request(frozen_world, SELF, f"{receiver.url}/{SELF}")
    found = frozen_world.rules()
    assert found["notify.receiver_refused"]["severity"] == "error"
    assert found["notify.receiver_refused"]["first"]["ref"].startswith("notification ")
    assert found["package.never_fetched"]["count"] == 1


def test_a_slow_receiver_is_a_warning(frozen_world: Traffic, receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [], 0.6  # patience is 0.3 s in this module
    cat, _ = _bulk_request(frozen_world, SELF, f"{receiver.url}/{SELF}")
    receiver.delay_s = 0.0
    frozen_world.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1, query={"correlationID": _packages(frozen_world)[0]})
    found = frozen_world.rules()
    assert found["notify.receiver_slow"]["severity"] == "warning"
    assert "patience 0.3 s" in found["notify.receiver_slow"]["detail"]
    assert set(found) == {"notify.receiver_slow"}


def test_a_receiver_the_data_custodian_cannot_trust_is_a_tls_error(frozen_world: Traffic, tmp_path: Path) -> None:
    stranger = NotificationReceiver(tmp_path / "another-ca", "stranger").start()  # its own dev CA
    try:
        _bulk_request(frozen_world, SELF, f"{stranger.url}/{SELF}")
    finally:
        stranger.stop()
    assert frozen_world.rules()["notify.receiver_tls"]["severity"] == "error"


def test_packages_fetched_many_times_or_after_expiry(frozen_world: Traffic, receiver: NotificationReceiver) -> None:
    receiver.statuses, receiver.delay_s = [], 0.0
    cat, _ = _bulk_request(frozen_world, SELF, f"{receiver.url}/{SELF}")
    (correlation,) = _packages(frozen_world)
    for _ in range(4):
        assert frozen_world.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1,
                       query={"correlationID": correlation}).status_code == 200
    assert frozen_world.rules()["package.fetched_many_times"]["count"] == 4
    frozen_world.control("POST", "/clock/advance", {"days": 6})
    cat = frozen_world.token(SELF, tick=1.1)
    late = frozen_world.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1, query={"correlationID": correlation})
    assert late.status_code >= 400
    finding = frozen_world.rules()["package.fetched_after_expiry"]
    assert finding["count"] == 1 and finding["severity"] == "error"


def test_polling_bulk_while_daily_notifications_are_on_is_a_warning(frozen_world: Traffic) -> None:
    with frozen_world.database.session() as db:
        daily = db.execute(select(ThirdParty.notify_daily).where(ThirdParty.client_id == TP)).scalar_one()
    assert daily  # the demo's standard registration ticks "Notify me as data is ready (Daily)"
    cat = frozen_world.token(TP, tick=1.1)
    for _ in range(4):
        frozen_world.get(f"{R}/Batch/Bulk/{TP}", TP, cat, tick=1.1)
    assert frozen_world.rules()["bulk.polled_with_daily_notifications"]["count"] == 4
    frozen_world.control("POST", "/reset")
    cat = frozen_world.token(SELF, tick=1.1)  # daily notifications off: an async request now and then is how it works
    for _ in range(4):
        frozen_world.get(f"{R}/Batch/Bulk/{SELF}", SELF, cat, tick=1.1)
    assert "bulk.polled_with_daily_notifications" not in frozen_world.rules()


def test_the_same_days_data_requested_many_times_is_a_warning(frozen_world: Traffic) -> None:
    token = _customer_token(frozen_world)
    path = f"{R}/Batch/Subscription/{token['subscription']}"
    usage_point = frozen_world.get(f"{R}/Subscription/{token['subscription']}/UsagePoint", TP, token["access_token"],
                          tick=1.1)
    assert usage_point.status_code == 200
    first_up = usage_point.get_data(as_text=True).split("UsagePoint/")[1].split("<")[0].split('"')[0]
    path = f"{R}/Batch/Subscription/{token['subscription']}/UsagePoint/{first_up}"
    query = {"published-min": "2026-05-01T07:00:00Z", "published-max": "2026-05-02T07:00:00Z"}
    for _ in range(5):
        assert frozen_world.get(path, TP, token["access_token"], tick=1.1, query=query).status_code == 200
    assert frozen_world.report()["findings"] == []  # a few repeats (a retry, a re-run) are fine
    for _ in range(2):
        assert frozen_world.get(path, TP, token["access_token"], tick=1.1, query=query).status_code == 200
    finding = frozen_world.rules()["data.same_day_requested_many_times"]
    assert finding["count"] == 7 and finding["severity"] == "warning"


# --- requests PG&E does not promise ---------------------------------------------------------------------------


def test_date_forms_pg_e_does_not_promise_are_warnings_but_epoch_seconds_are_not(frozen_world: Traffic) -> None:
    cat = frozen_world.token(TP, tick=1.1)
    bulk = f"{R}/Batch/Bulk/{TP}"
    frozen_world.get(bulk, TP, cat, tick=1.1, query={"published-min": "1777000000", "published-max": "1777082800"})
    frozen_world.get(bulk, TP, cat, tick=1.1, query={"published-min": "2026-05-01T07:00:00Z"})
    assert frozen_world.report()["findings"] == []
    frozen_world.get(bulk, TP, cat, tick=1.1, query={"published-min": "2026-05-01T00:00:00-07:00"})
    frozen_world.get(bulk, TP, cat, tick=1.1, query={"published-min": "2026-05-01T07:00:00.000Z"})
    finding = frozen_world.rules()["request.date_form"]
    assert finding["count"] == 2 and "-07:00" in finding["detail"]


def test_unhyphenated_aliases_and_unknown_parameters_are_warnings(frozen_world: Traffic) -> None:
    cat = frozen_world.token(TP, tick=1.1)
    bulk = f"{R}/Batch/Bulk/{TP}"
    frozen_world.get(bulk, TP, cat, tick=1.1, query={"publishedmin": "2026-05-01T07:00:00Z"})
    frozen_world.get(STATUS, TP, cat, tick=1.1, query={"max-results": "10"})
    found = frozen_world.rules()
    assert found["request.unhyphenated_alias"]["detail"] == "publishedmin"
    assert found["request.unknown_parameter"]["detail"] == "max-results"
    assert "request.date_form" not in found


def test_a_leaf_certificate_without_its_chain_is_a_warning(frozen_world: Traffic) -> None:
    cat = frozen_world.token(TP, tick=1.1)
    frozen_world.get(STATUS, TP, cat, tick=1.1, chain_length=1)
    assert frozen_world.rules()["tls.leaf_without_chain"]["count"] == 1
    frozen_world.control("POST", "/reset")
    well_behaved(frozen_world)  # leaf and intermediate
    assert "tls.leaf_without_chain" not in frozen_world.rules()


# --- period, filters, surfaces ---------------------------------------------------------------------------


def test_client_filter_and_since_id_limit_the_period(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=1.1)
    for _ in range(4):
        frozen_world.get(STATUS, TP, token, tick=0.1)
    last_bad = _rows(frozen_world)[-1].id
    assert frozen_world.report(client_id=TP)["errors"] == 1
    assert frozen_world.report(client_id=SELF)["findings"] == []
    paced(frozen_world, TP, token, 2)
    assert frozen_world.report(since_id=last_bad)["findings"] == []
    assert frozen_world.report(since_id=last_bad)["requests_examined"] == 2


def test_fail_on_gates_and_the_text_form_names_rule_client_and_examples(frozen_world: Traffic) -> None:
    token = frozen_world.token(SELF, tick=2)
    frozen_world.get(STATUS, SELF, token, tick=0.05)  # a literal-reading warning only
    report = frozen_world.report()
    assert not exceeds(report, "error") and exceeds(report, "warning") and not exceeds(report, None)
    text = format_text(report)
    assert "rate.literal_per_second" in text and f"client {SELF}" in text and "first: request" in text


def test_the_control_api_serves_the_report_and_refuses_a_bad_fail_on(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=1.1)
    for _ in range(4):
        frozen_world.get(STATUS, TP, token, tick=0.1)
    body = frozen_world.control("GET", "/report?fail_on=error")
    assert body["failed"] is True and body["findings"][0]["rule"] == "rate.vendor_per_second"
    assert frozen_world.control("GET", f"/report?client_id={SELF}")["findings"] == []
    bad = frozen_world.client.get("/__sim/report?fail_on=sometimes",
                                  headers={"X-Control-Token": "control-token-for-tests"},
                         environ_base=frozen_world._environ(None, "portal", 0))
    assert bad.status_code == 400
    anonymous = frozen_world.client.get("/__sim/report", environ_base=frozen_world._environ(None, "portal", 0))
    assert anonymous.status_code == 401
    assert len(frozen_world.control("GET", "/report/rules")["rules"]) == len(RULES)


def test_the_request_log_keeps_a_token_fingerprint_never_the_token(frozen_world: Traffic) -> None:
    token = frozen_world.token(TP, tick=1.1)
    frozen_world.get(STATUS, TP, token, tick=1.1)
    row = _rows(frozen_world)[-1]
    assert row.token_fingerprint and len(row.token_fingerprint) == 12 and row.token_fingerprint not in token
    assert row.token_kind == "client_access" and row.real_at == frozen_world.wall.t and row.chain_length == 2
    with frozen_world.database.session() as db:
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


def _rows(frozen_world: Traffic, path: str | None = None) -> list[RequestLog]:
    """Logged data calls (or the calls to ``path``), oldest first."""
    where = RequestLog.path == path if path else RequestLog.path != TOKEN
    with frozen_world.database.session() as db:
        return list(db.execute(select(RequestLog).where(where).order_by(RequestLog.id)).scalars())


def test_the_docs_rules_table_lists_exactly_the_rules() -> None:
    docs = (ROOT / "docs" / "report-and-console.md").read_text()
    table = docs.split("### Rules", 1)[1].split("How the less obvious", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_.]+)` \| (error|warning) \|", table, re.MULTILINE)
    assert documented == [(rule.id, rule.severity) for rule in RULES]
