"""Notifications go out concurrently (issue 14): a hanging receiver delays only its own POSTs.

An in-process job worker (its thread pool, real HTTPS to two local receivers with the dev CA); no server.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from support.notify_receiver import NotificationReceiver

from mock_custodian.jobs.claims import claim_due_notifications
from mock_custodian.jobs.worker import JobWorker
from mock_custodian.pki import DevPKI
from mock_custodian.settings import load_settings
from mock_custodian.store.db import Database
from mock_custodian.store.models import Notification, ThirdParty


def _third_party(db, client_id: str, uri: str) -> int:  # noqa: ANN001
    tp = ThirdParty(client_id=client_id, client_secret="s", registration_access_token=f"r{client_id}",
                    application_information_id=f"7{client_id}", user_type="standard", status="approved",
                    legal_name="L", display_name=f"D{client_id}", tax_id="123456789", created_at=0.0,
                    notification_uri=uri)
    db.add(tp)
    db.flush()
    return tp.id


def _note(db, tp_id: int, uri: str, body: str, due: float) -> None:  # noqa: ANN001
    db.add(Notification(third_party_id=tp_id, uri=uri, body=body, status="pending", created_at=0.0,
                        next_attempt_at=due, attempts=[], kind="authorization"))


@pytest.fixture
def world(tmp_path: Path):  # noqa: ANN201
    DevPKI(tmp_path / "certs").ensure([])
    database = Database(f"sqlite:///{tmp_path / 'mock-custodian.db'}")
    database.create_schema()
    settings = load_settings({"data_dir": tmp_path, "notify_timeout_s": 30.0, "notify_concurrency": 4}, environ={})
    yield tmp_path, database, settings
    database.dispose()


def test_a_hanging_receiver_delays_only_its_own_notifications(world) -> None:  # noqa: ANN001
    data_dir, database, settings = world
    hanging = NotificationReceiver(data_dir / "certs", "hanging").start()
    healthy = NotificationReceiver(data_dir / "certs", "healthy").start()
    hanging.delay_s = 30.0
    now = database.clock().epoch()
    with database.session() as db:
        a = _third_party(db, "00901", hanging.url)
        b = _third_party(db, "00902", healthy.url)
        _note(db, a, hanging.url, "<a1/>", now - 1)
        _note(db, a, hanging.url, "<a2/>", now - 1)
        _note(db, b, healthy.url, "<b1/>", now)
    worker = JobWorker(settings, database=database, api_base_url="https://127.0.0.1:1")
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            if not worker.tick():
                stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    begun = time.time()
    thread.start()
    try:
        got = healthy.wait_for(1, timeout=10)
        assert got[0].body == b"<b1/>"
        assert got[0].at - begun < 2.0  # B is not queued behind A's 30-second hang
        assert len(hanging.wait_for(1, timeout=5)) == 1
        time.sleep(0.5)
        # Per destination, order is kept: A's second POST waits for its first to finish.
        assert [p.body for p in hanging.posts] == [b"<a1/>"]
    finally:
        stop.set()
        thread.join(5)
        worker._pool.shutdown(wait=False, cancel_futures=True)
        hanging.stop()
        healthy.stop()


def test_claims_keep_one_post_in_flight_per_destination(world) -> None:  # noqa: ANN001
    _data_dir, database, _settings = world
    with database.session() as db:
        a = _third_party(db, "00901", "https://a.example/n")
        b = _third_party(db, "00902", "https://b.example/n")
        _note(db, a, "https://a.example/n", "1", 100.0)
        _note(db, a, "https://a.example/n", "2", 100.0)
        _note(db, b, "https://b.example/n", "3", 150.0)
        _note(db, a, "https://a.example/n", "4", 90.0)  # the oldest of A by due time
    with database.session() as db:
        first = claim_due_notifications(db, "w1", now=200.0, real_now=1000.0, lease_s=30, limit=10)
    assert first == [4, 3]  # A's oldest and B's; nothing else of A while one is in flight
    with database.session() as db:
        assert claim_due_notifications(db, "w2", now=200.0, real_now=1001.0, lease_s=30, limit=10) == []
        db.get(Notification, 4).status, db.get(Notification, 4).lease_until = "delivered", None
    with database.session() as db:
        assert claim_due_notifications(db, "w2", now=200.0, real_now=1002.0, lease_s=30, limit=10) == [1]
