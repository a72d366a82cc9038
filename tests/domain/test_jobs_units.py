"""The job machinery's rules without a server: package times across DST, leases, settings, transport refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mock_custodian.clock import PACIFIC
from mock_custodian.jobs.claims import claim_due_jobs, claim_due_notifications
from mock_custodian.jobs.config import WorkerConfig
from mock_custodian.jobs.daily import latest_instant, package_instants
from mock_custodian.jobs.delivery import Sender
from mock_custodian.jobs.supervisor import settings_environment
from mock_custodian.pki import DevPKI
from mock_custodian.settings import load_settings
from mock_custodian.store.db import Database
from mock_custodian.store.models import AsyncJob, Notification, ThirdParty


def _local(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=PACIFIC).timestamp()


def test_package_instants_are_local_seven_oclock_across_daylight_saving_changes() -> None:
    # 2026-03-08 springs forward, 2026-11-01 falls back: 07:00 local is 15:00 then 14:00 UTC, and back.
    spring = package_instants(_local(2026, 3, 6, 12), _local(2026, 3, 9, 7), 7, 0)
    assert [dt.datetime.fromtimestamp(t, dt.UTC).hour for t in spring] == [15, 14, 14]
    autumn = package_instants(_local(2026, 10, 31, 7), _local(2026, 11, 2, 7), 7, 0)
    assert [dt.datetime.fromtimestamp(t, PACIFIC).strftime("%m-%d %H:%M") for t in autumn] == ["11-01 07:00",
                                                                                               "11-02 07:00"]
    assert package_instants(_local(2026, 5, 1, 7), _local(2026, 5, 1, 7), 7, 0) == []  # (after, until]
    assert package_instants(_local(2026, 5, 1, 6, 59), _local(2026, 5, 1, 7), 7, 0) == [_local(2026, 5, 1, 7)]


def test_latest_instant_is_the_newest_package_time_not_after_now() -> None:
    assert latest_instant(_local(2026, 5, 2, 6, 59), 7, 0) == _local(2026, 5, 1, 7)
    assert latest_instant(_local(2026, 5, 2, 7), 7, 0) == _local(2026, 5, 2, 7)
    assert latest_instant(_local(2026, 5, 2, 23), 7, 30) == _local(2026, 5, 2, 7, 30)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jobs")
    DevPKI(path / "certs").ensure([])
    return path


def test_worker_settings_are_checked_at_start(data_dir: Path) -> None:
    def config(**env: str) -> WorkerConfig:
        environ = {f"MOCK_CUSTODIAN_{k.upper()}": v for k, v in env.items()}
        return WorkerConfig.from_settings(load_settings({"data_dir": data_dir}, environ=environ))

    default = config()
    assert default.retry_minutes == (1.0, 5.0, 15.0)
    assert default.verify == str(data_dir / "certs" / "ca.pem")
    assert default.client_cert == (str(data_dir / "certs" / "data-custodian" / "chain.pem"),
                                   str(data_dir / "certs" / "data-custodian" / "key.pem"))
    assert (default.daily_hour, default.daily_minute) == (7, 0)
    assert config(notify_retry_minutes="0.5,2").retry_minutes == (0.5, 2.0)
    assert config(notify_verify_tls="false", notify_client_cert="false").verify is False
    assert config(notify_client_cert="false").client_cert is None
    bundle = data_dir / "certs" / "ca.pem"
    assert config(notify_trust_bundle=str(bundle)).verify == str(bundle)
    for bad, message in ((dict(daily_package_time="7am"), "daily_package_time"),
                         (dict(notify_retry_minutes="one,five"), "notify_retry_minutes"),
                         (dict(notify_timeout_s="0"), "notify_timeout_s"),
                         (dict(bulk_retrieval_token="at"), "bulk_retrieval_token"),
                         (dict(package_max_subscriptions="0"), "package_max_subscriptions"),
                         (dict(notify_trust_bundle="/nonexistent/receivers.pem"), "notify_trust_bundle")):
        with pytest.raises(ValueError, match=message):
            config(**bad)


def test_the_job_worker_process_gets_exactly_the_servers_settings(data_dir: Path) -> None:
    settings = load_settings({"data_dir": data_dir, "notify_retry_minutes": [2.0, 3.0], "async_delay_s": 0.0,
                              "san": ["api.pge.com"], "notify_verify_tls": False}, environ={})
    again = load_settings(environ=settings_environment(settings))
    for name in ("notify_retry_minutes", "async_delay_s", "san", "notify_verify_tls", "daily_package_time"):
        got = getattr(again, name)
        if name == "notify_retry_minutes":
            got = [float(x) for x in got]
        assert got == getattr(settings, name), name
    assert again.api_base_url == settings.resolved_api_base_url()
    assert Path(again.data_dir) == Path(settings.data_dir)


def test_notifications_go_only_to_https_uris(data_dir: Path) -> None:
    sender = Sender(WorkerConfig.from_settings(load_settings({"data_dir": data_dir}, environ={})))
    plain = sender.post("http://127.0.0.1:9/notify", "<BatchList/>", None)
    assert plain.status is None and "https" in plain.error
    missing = sender.post("", "<BatchList/>", None)
    assert missing.status is None and "no Notification URI" in missing.error
    refused = sender.post("https://127.0.0.1:9/notify", "<BatchList/>", None)  # discard port: nothing listens
    assert refused.status is None and refused.error.startswith("connection failed")


def _third_party(db) -> int:  # noqa: ANN001
    tp = ThirdParty(client_id="00901", client_secret="s", registration_access_token="r",
                    application_information_id="7000901", user_type="standard", status="approved",
                    legal_name="L", display_name="D", tax_id="123456789", created_at=0.0)
    db.add(tp)
    db.flush()
    return tp.id


def test_a_due_row_is_leased_to_one_worker_until_its_lease_runs_out(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    database.create_schema()
    with database.session() as db:
        tp_id = _third_party(db)
        db.add(Notification(third_party_id=tp_id, uri="https://x", body="", status="pending", created_at=0.0,
                            next_attempt_at=100.0, attempts=[]))
        db.add(AsyncJob(correlation_id="c", third_party_id=tp_id, request_path="/p", status="pending",
                        accepted_at=0.0, due_at=200.0))
    with database.session() as db:
        assert claim_due_notifications(db, "a", now=99.0, real_now=1000.0, lease_s=30, limit=5) == []  # not due
        assert claim_due_notifications(db, "a", now=100.0, real_now=1000.0, lease_s=30, limit=5) == [1]
    with database.session() as db:
        assert claim_due_notifications(db, "b", now=100.0, real_now=1029.0, lease_s=30, limit=5) == []
        assert claim_due_notifications(db, "b", now=100.0, real_now=1031.0, lease_s=30, limit=5) == [1]  # expired
        assert db.get(Notification, 1).lease_owner == "b"
    with database.session() as db:
        assert claim_due_jobs(db, "a", now=200.0, real_now=0.0, lease_s=30, limit=5) == [1]
        assert claim_due_jobs(db, "b", now=200.0, real_now=1.0, lease_s=30, limit=5) == []
    database.dispose()


def test_a_reset_during_a_delivery_round_ends_it_quietly(tmp_path: Path, data_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Tests reset the world between cases while the job worker delivers: the round ends, nothing is raised."""
    from mock_custodian.jobs import delivery
    from mock_custodian.store.db import clear_world

    database = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    database.create_schema()
    with database.session() as db:
        tp_id = _third_party(db)
        db.add(Notification(third_party_id=tp_id, uri="https://127.0.0.1:9/n", body="", status="pending",
                            created_at=0.0, next_attempt_at=0.0, attempts=[]))
    with database.session() as db:
        assert claim_due_notifications(db, "a", now=0.0, real_now=0.0, lease_s=30, limit=5) == [1]

    def reset_meanwhile(db, **_kwargs):  # noqa: ANN001, ANN202  (between reading the row and writing it)
        with database.session() as other:
            clear_world(other)

    monkeypatch.setattr(delivery, "claim_notification_fault", reset_meanwhile)
    config = WorkerConfig.from_settings(load_settings({"data_dir": data_dir}, environ={}))
    with caplog.at_level("INFO", logger="mock_custodian.jobs"):
        assert delivery.deliver(database, 1, "a", Sender(config), config) is None
    assert "went away during its delivery round" in caplog.text
    database.dispose()
