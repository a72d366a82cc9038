"""Asynchronous Batch requests and notifications (spec 6.3-6.6, 3.7; checklist 20, 96-110, 113).

A real server (two gunicorn workers and its job worker), real TLS with client certificates, and a
third-party notification receiver that is itself a real HTTPS server on 127.0.0.1 requiring a client
certificate. Simulated time is frozen and moved by the tests; nothing sleeps out a business delay.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from sqlalchemy import select
from support import assert_valid_espi, client_token, database, wait_until
from support.notify_receiver import NotificationReceiver, ReceivedPost

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.domain.authorizations import cancel_by_customer
from mock_custodian.pki import DevPKI
from mock_custodian.store.models import Authorization, Notification, ServiceAgreement, ThirdParty

ESPI = "http://naesb.org/espi"
ATOM = "http://www.w3.org/2005/Atom"
CUSTOMER = "http://naesb.org/espi/customer"
RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
DELAY_S = 15  # the default async_delay_s


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> testing.RunningServer:
    srv = testing.start(tmp_path_factory.mktemp("async"), workers=2, settings={"package_max_subscriptions": 2})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def receiver(server: testing.RunningServer) -> NotificationReceiver:
    rec = NotificationReceiver(server.data_dir / "certs").start()
    yield rec
    rec.stop()


def point_notifications_at(server: testing.RunningServer, base_url: str, daily: tuple[str, ...] = ()) -> None:
    """Every registration's Notification URI becomes ``{base_url}/{client_id}``; "Notify me" only for ``daily``."""
    with database(server).session() as db:
        for tp in db.execute(select(ThirdParty)).scalars():
            tp.notification_uri = f"{base_url}/{tp.client_id}"
            tp.notify_daily = tp.client_id in daily


@pytest.fixture
def notifying_server(server: testing.RunningServer, receiver: NotificationReceiver) -> testing.RunningServer:
    """A fresh world, the clock frozen, notifications pointed at the receiver, daily packages off."""
    server.reset()
    server.clock.freeze()
    point_notifications_at(server, receiver.url)
    after_publication(server)
    receiver.posts.clear()
    receiver.statuses.clear()
    receiver.delay_s = 0.0
    return server


def after_publication(server: testing.RunningServer) -> None:
    """Yesterday's data is published at 06:00 local: before that the T-1 window these tests rely on is
    empty (204). A run in the small hours moves the frozen clock on to 06:30, short of the 07:00 daily
    package time so no daily package is crossed."""
    local = server.clock.now().astimezone(PACIFIC)
    if (local.hour, local.minute) < (6, 30):
        server.clock.set(local.replace(hour=6, minute=30, second=0, microsecond=0).timestamp())


def get(notifying_server: testing.RunningServer, url: str, token: str, client_id: str,
        **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    if not url.startswith("https://"):
        url = f"{notifying_server.api_base_url}{url}"
    return requests.get(url, headers=headers, cert=notifying_server.cert(client_id), verify=notifying_server.ca_bundle,
                        timeout=30, **kwargs)


def resources(post: ReceivedPost) -> list[str]:
    root = etree.fromstring(post.body)
    assert root.tag == f"{{{ESPI}}}BatchList"
    return [el.text for el in root if el.tag == f"{{{ESPI}}}resources"]


def posts_to(receiver: NotificationReceiver, client_id: str) -> list[ReceivedPost]:
    return [p for p in list(receiver.posts) if p.path.endswith(f"/{client_id}")]


def assert_accepted(response: requests.Response) -> None:
    assert response.status_code == 202, response.text
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"


def due(notifying_server: testing.RunningServer, seconds: float = DELAY_S) -> None:
    notifying_server.clock.advance(seconds=seconds)


def feed_of(body: bytes) -> etree._Element:
    root = etree.fromstring(body)
    assert root.tag == f"{{{ATOM}}}feed"
    return root


def self_link(feed: etree._Element) -> str:
    return feed.find(f"{{{ATOM}}}link[@rel='self']").get("href")


def usage_point_ids(feed: etree._Element) -> set[str]:
    hrefs = [link.get("href") for link in feed.iter(f"{{{ATOM}}}link") if link.get("rel") == "self"]
    return {m.group(1) for h in hrefs if (m := re.search(r"/UsagePoint/(\d+)$", h))}


def block_starts(feed: etree._Element) -> set[int]:
    hrefs = [link.get("href") for link in feed.iter(f"{{{ATOM}}}link") if link.get("rel") == "self"]
    return {int(m.group(1)) for h in hrefs if (m := re.search(r"/IntervalBlock/(\d+)$", h))}


def notification_rows(notifying_server: testing.RunningServer, client_id: str) -> list[dict[str, Any]]:
    return notifying_server.notifications(client_id)


def expect_posts(notifying_server: testing.RunningServer, receiver: NotificationReceiver, count: int,
                 timeout: float = 15.0) -> list[ReceivedPost]:
    """``receiver.wait_for``, saying what the data custodian recorded when the POSTs do not come."""
    try:
        return receiver.wait_for(count, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; notifications: {notifying_server.notifications()}; "
                             f"jobs: {notifying_server.jobs()}") from None


def attempted(notifying_server: testing.RunningServer, client_id: str) -> dict[str, Any]:
    """The newest notification of a client once its first attempt is recorded (the POST lands first)."""
    return wait_until(lambda: (rows := notification_rows(notifying_server,
                                                         client_id)) and rows[-1]["attempts"] and rows[-1])


# --- the whole flow -------------------------------------------------------------------------------


def test_bulk_request_is_accepted_notified_over_mutual_tls_and_retrieved_byte_for_byte(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver, tmp_path: Path
) -> None:
    token = client_token(notifying_server, "00101")
    response = get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101", headers={"X-Transaction": "tx-42"})
    assert_accepted(response)
    assert "X-Transaction" not in response.headers  # only on the POST and the retrieval (spec 6.4)
    assert receiver.quiet_for(0.6) == []  # nothing before async_delay_s of simulated time
    due(notifying_server)
    (post,) = expect_posts(notifying_server, receiver, 1)
    # Transport (spec 6.5, 3.7): the data custodian's client certificate, XML, X-Transaction echoed.
    assert post.headers["Content-Type"] == "application/xml; charset=UTF-8"
    assert post.headers["X-Transaction"] == "tx-42"
    custodian = DevPKI(notifying_server.data_dir / "certs").data_custodian_files()
    assert post.client_cert_sha256 == custodian.fingerprint_sha256
    # Body: one resources entry, the request URL plus ?correlationID={uuid4}.
    (url,) = resources(post)
    batch_url = f"{notifying_server.api_base_url}{RESOURCE}/Batch/Bulk/00101"
    assert url.startswith(f"{batch_url}?correlationID=")
    assert uuid.UUID(url.split("=", 1)[1]).version == 4
    # Retrieval: 200, the same bytes every time, X-Transaction again, self link = the batch URL.
    first = get(notifying_server, url, token, "00101")
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"] == "application/atom+xml;charset=UTF-8"
    assert first.headers["X-Transaction"] == "tx-42"
    second = get(notifying_server, url, client_token(notifying_server, "00101"), "00101")
    assert second.content == first.content
    feed = feed_of(first.content)
    assert self_link(feed) == batch_url
    # Content (checklist 105): every live subscription granting Usage or Billing, and no other.
    with database(notifying_server).session() as db:
        tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == "00101")).scalar_one()
        expected = {sa.usage_point_id for a in db.execute(select(Authorization).where(
            Authorization.third_party_id == tp.id, Authorization.kind == "customer")).scalars()
            for sa in a.service_agreements}
    assert expected and usage_point_ids(feed) == expected
    assert block_starts(feed), "the T-1 window's IntervalBlock is in the package"
    assert_valid_espi(first.content)
    row = attempted(notifying_server, "00101")
    assert row["status"] == "delivered"
    assert [a["status"] for a in row["attempts"]] == [200]


def test_retrieval_refuses_wrong_token_class_other_clients_and_unknown_ids(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    token = client_token(notifying_server, "00101")
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    due(notifying_server)
    (url,) = resources(expect_posts(notifying_server, receiver, 1)[0])
    correlation_id = url.split("=", 1)[1]
    customer = notifying_server.authorize("rivera", "00101", via="control")["token"]["access_token"]
    assert get(notifying_server, url, customer, "00101").status_code == 403  # checklist 102: a Bulk package needs a CAT
    other = client_token(notifying_server, "00102")
    assert get(notifying_server, url.replace("/Bulk/00101", "/Bulk/00102"), other, "00102").status_code == 403
    assert get(notifying_server, url, other, "00102").status_code == 403  # BulkID is not the caller's
    assert get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101?correlationID={uuid.uuid4()}", token,
               "00101").status_code == 404
    assert get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101?correlationID=not-a-uuid", token,
               "00101").status_code == 404
    # A Bulk correlationID is not a customer-information package.
    wrong = get(notifying_server, f"{RESOURCE}/Batch/BulkRetailCustomerInfo/00101?correlationID={correlation_id}",
                token, "00101")
    assert wrong.status_code == 404
    assert get(notifying_server, url, token, "00101").status_code == 200


def test_subscription_request_takes_the_subscriptions_own_customer_token(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    granted = notifying_server.authorize("rivera", "00101", groups=["Usage", "Billing"], via="control")
    access, subscription = granted["token"]["access_token"], granted["authorization_id"]
    cat = client_token(notifying_server, "00101")
    path = f"{RESOURCE}/Batch/Subscription/{subscription}"
    assert get(notifying_server, path, cat, "00101").status_code == 403  # checklist 104
    assert get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", access, "00101").status_code == 403
    assert_accepted(get(notifying_server, path, access, "00101", params={"published-min": "2026-06-01T07:00:00Z",
                                                             "published-max": "2026-06-03T07:00:00Z"}))
    due(notifying_server)
    (url,) = resources(expect_posts(notifying_server, receiver, 1)[0])
    assert url.startswith(f"{notifying_server.api_base_url}{path}?correlationID=")
    package = get(notifying_server, url, access, "00101")
    assert package.status_code == 200
    feed = feed_of(package.content)
    with database(notifying_server).session() as db:
        expected = {sa.usage_point_id for sa in db.get(Authorization, subscription).service_agreements}
    assert usage_point_ids(feed) == expected
    days = sorted(block_starts(feed))
    assert days and days[0] >= dt.datetime(2026, 5, 31, tzinfo=PACIFIC).timestamp()
    assert days[-1] < dt.datetime(2026, 6, 3, tzinfo=PACIFIC).timestamp()
    assert get(notifying_server, url, cat, "00101").status_code == 403  # a subscription package needs its AT
    other = notifying_server.authorize("harbor", "00101", groups=["Usage"], via="control")["token"]["access_token"]
    assert get(notifying_server, url, other, "00101").status_code == 403  # another subscription's token


def test_an_empty_window_answers_204_and_no_notification_follows(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    token = client_token(notifying_server, "00101")
    response = get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101",
                   params={"published-min": "2001-01-01T08:00:00Z", "published-max": "2001-01-02T08:00:00Z"})
    assert response.status_code == 204
    assert response.content == b""
    due(notifying_server, 600)
    assert receiver.quiet_for(1.0) == []
    assert notifying_server.jobs() == [] and notification_rows(notifying_server, "00101") == []


def test_release_makes_waiting_jobs_and_retries_due_without_moving_the_clock(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    """The control API's release (store.control.release) is honoured by the job worker."""
    receiver.statuses = [500]
    token = client_token(notifying_server, "00101")
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    assert receiver.quiet_for(0.5) == []
    assert len(notifying_server.release_jobs()["jobs"]) == 1
    expect_posts(notifying_server, receiver, 1)  # built and sent, the clock still frozen
    attempted(notifying_server, "00101")
    assert len(notifying_server.release_jobs()["notifications"]) == 1  # the retry due in a minute, now
    expect_posts(notifying_server, receiver, 2)
    assert wait_until(lambda: notification_rows(notifying_server, "00101")[-1]["status"] == "delivered")


def test_cca_customer_information_on_the_path_without_resource_is_split_over_the_size_limit(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    """Checklist 113 and the splitting rule of 6.4 (this server: package_max_subscriptions=2)."""
    token = client_token(notifying_server, "00103")
    legacy = "/GreenButtonConnect/espi/1_1/Batch/BulkRetailCustomerInfo/00103"
    assert_accepted(get(notifying_server, legacy, token, "00103"))
    due(notifying_server)
    (post,) = expect_posts(notifying_server, receiver, 1)
    urls = resources(post)
    assert len(urls) == 2  # three territory accounts, at most two subscriptions per package
    assert all(u.startswith(f"{notifying_server.api_base_url}{legacy}?correlationID=") for u in urls)
    names = []
    for url in urls:
        package = get(notifying_server, url, token, "00103")
        assert package.status_code == 200
        feed = feed_of(package.content)
        assert self_link(feed) == f"{notifying_server.api_base_url}{legacy}"
        assert feed.findtext(f"{{{ATOM}}}title") == "Green Button Customer Feed"
        names += [el.findtext(f"{{{CUSTOMER}}}name") for el in feed.iter(f"{{{CUSTOMER}}}Customer")]
    with database(notifying_server).session() as db:
        tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == "00103")).scalar_one()
        territory = {a.customer.name for a in db.execute(select(Authorization).where(
            Authorization.third_party_id == tp.id, Authorization.kind == "cca")).scalars()}
    assert set(names) == territory and len(names) == 3


def test_demand_response_request_covers_the_enrolments_of_subscriptions_granting_program_enrollment(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    token = client_token(notifying_server, "00101")
    path = f"{RESOURCE}/Batch/BulkRetailDRPrgInfo/00101"
    assert get(notifying_server, path, token, "00101").status_code == 204  # nobody enrolled yet: no notification
    with database(notifying_server).session() as db:  # okafor's SA (authorized to 00101 with ProgramEnrollment) enrols
        sa = db.execute(select(ServiceAgreement).where(ServiceAgreement.key == "okafor-solar")).scalar_one()
        sa.dr_programs = [{"program": "SmartAC", "status": "enrolled", "enrolled_at": 1767225600}]
    assert_accepted(get(notifying_server, path, token, "00101"))
    due(notifying_server)
    (url,) = resources(expect_posts(notifying_server, receiver, 1)[0])
    assert url.startswith(f"{notifying_server.api_base_url}{path}?correlationID=")
    package = get(notifying_server, url, token, "00101")
    assert package.status_code == 200
    feed = feed_of(package.content)
    assert [el.text for el in feed.iter(f"{{{CUSTOMER}}}programName")] == ["SmartAC"]
    assert not list(feed.iter(f"{{{CUSTOMER}}}Customer"))  # enrolments only


def test_package_is_refused_once_five_days_have_passed_since_the_notification(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    token = client_token(notifying_server, "00101")
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/BulkRetailCustomerInfo/00101", token, "00101"))
    due(notifying_server)
    (url,) = resources(expect_posts(notifying_server, receiver, 1)[0])
    notified = attempted(notifying_server, "00101")["attempts"][0]["at"]
    notifying_server.clock.set(notified + 5 * 86400 - 60)
    assert get(notifying_server, url, client_token(notifying_server, "00101"), "00101").status_code == 200
    notifying_server.clock.set(notified + 5 * 86400 + 1)
    expired = get(notifying_server, url, client_token(notifying_server, "00101"), "00101")
    assert expired.status_code == 404
    assert expired.json() == {"error": "not_found"}


# --- delivery: retries, faults, authorization changes, TLS ------------------------------------------


def test_receiver_down_is_retried_after_1_5_15_simulated_minutes_and_gets_it_once(
    notifying_server: testing.RunningServer, tmp_path: Path
) -> None:
    down = NotificationReceiver(notifying_server.data_dir / "certs", "down").start(listen=False)  # port bound, refusing
    try:
        point_notifications_at(notifying_server, down.url)
        token = client_token(notifying_server, "00101")
        assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
        due(notifying_server)

        def attempts() -> list[dict[str, Any]]:
            return notification_rows(notifying_server, "00101")[-1]["attempts"]

        wait_until(lambda: len(attempts()) == 1)
        assert attempts()[0]["status"] is None and "connection" in attempts()[0]["error"]
        due(notifying_server, 59)
        time.sleep(0.8)
        assert len(attempts()) == 1  # not before a minute of simulated time
        due(notifying_server, 2)
        wait_until(lambda: len(attempts()) == 2)
        due(notifying_server, 4 * 60)
        time.sleep(0.8)
        assert len(attempts()) == 2  # the second retry waits 5 minutes
        down.listen()
        due(notifying_server, 61)
        wait_until(lambda: notification_rows(notifying_server, "00101")[-1]["status"] == "delivered")
        assert len(down.wait_for(1)) == 1
        assert [a["status"] for a in attempts()] == [None, None, 200]
        due(notifying_server, 3600)
        assert len(down.quiet_for(0.8)) == 1  # delivered once, never again
    finally:
        down.stop()


def test_a_receiver_that_keeps_failing_is_marked_failed_and_the_package_stays_retrievable(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    receiver.statuses = [503, 500, 502, 404]
    token = client_token(notifying_server, "00101")
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    due(notifying_server)
    expect_posts(notifying_server, receiver, 1)
    for minutes, count in ((1, 2), (5, 3), (15, 4)):
        due(notifying_server, minutes * 60 + 1)
        expect_posts(notifying_server, receiver, count)
    row = wait_until(lambda: (r := notification_rows(notifying_server, "00101")[-1])["status"] == "failed" and r)
    assert [a["status"] for a in row["attempts"]] == [503, 500, 502, 404]
    assert all(a["error"] for a in row["attempts"])
    gaps = [round(b["at"] - a["at"]) for a, b in zip(row["attempts"], row["attempts"][1:], strict=False)]
    assert gaps == [61, 301, 901]
    due(notifying_server, 3600)
    assert len(receiver.quiet_for(0.6)) == 4
    (url,) = resources(receiver.posts[0])
    assert get(notifying_server, url, client_token(notifying_server, "00101"), "00101").status_code == 200


def test_injected_notification_faults_are_honoured(notifying_server: testing.RunningServer,
                                                   receiver: NotificationReceiver) -> None:
    token = client_token(notifying_server, "00101")
    notifying_server.fault("notification_duplicated", copies=2, times=1)
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    due(notifying_server)
    first, second = expect_posts(notifying_server, receiver, 2)
    assert first.body == second.body
    notifying_server.fault("notification_lost", times=1)
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    due(notifying_server)
    lost = wait_until(lambda: [r for r in notification_rows(notifying_server, "00101") if r["status"] == "lost"])
    assert len(receiver.quiet_for(0.8)) == 2
    (url,) = resources(ReceivedPost("", {}, lost[0]["body"].encode(), None, None, 0))
    assert get(notifying_server, url, token, "00101").status_code == 200  # the package is there all the same
    notifying_server.fault("notification_early", times=1)
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    early = expect_posts(notifying_server, receiver, 3)[-1]  # before async_delay_s: no clock move yet
    (url,) = resources(early)
    assert get(notifying_server, url, token, "00101").status_code == 404  # not built yet
    due(notifying_server)
    wait_until(lambda: get(notifying_server, url, token, "00101").status_code == 200)
    notifying_server.fault("notification_delayed", delay_s=300, times=1)
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    due(notifying_server)
    assert len(receiver.quiet_for(0.8)) == 3
    due(notifying_server, 300)
    expect_posts(notifying_server, receiver, 4)


def test_customer_changes_and_reauthorization_notify_the_authorization_url(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    """Checklist 46, 108: whatever the "Notify me" setting, a POST naming R/Authorization/{id}."""
    first = notifying_server.authorize("rivera", "00101", via="control")
    second = notifying_server.authorize("rivera", "00101", via="control")  # replaces the first (spec 4.14)
    (post,) = expect_posts(notifying_server, receiver, 1)
    assert resources(post) == [f"{notifying_server.api_base_url}{RESOURCE}/Authorization/{first['authorization_id']}"]
    assert "X-Transaction" not in post.headers
    store = database(notifying_server)
    with store.session() as db:  # what the customer's X on "My authorizations" calls, at the server's own now
        row = db.get(Authorization, second["authorization_id"])
        cancel_by_customer(db, row.customer_id, row.id, store.clock().epoch(),
                           f"{notifying_server.api_base_url}{RESOURCE}")
    cancelled = expect_posts(notifying_server, receiver, 2)[-1]
    (url,) = resources(cancelled)
    assert url == f"{notifying_server.api_base_url}{RESOURCE}/Authorization/{second['authorization_id']}"
    entry = get(notifying_server, url, client_token(notifying_server, "00101"), "00101")
    assert entry.status_code == 200 and b"<ns0:status>1</ns0:status>" in entry.content  # until midnight
    # A revocation by the third party itself sends nothing (notify_on_tp_revoke is off).
    third = notifying_server.authorize("okafor", "00101", via="control")
    revoked = requests.delete(f"{notifying_server.api_base_url}{RESOURCE}/Authorization/{third['authorization_id']}",
                              headers={"Authorization": f"Bearer {client_token(notifying_server, '00101')}"},
                              cert=notifying_server.cert("00101"), verify=notifying_server.ca_bundle, timeout=10)
    assert revoked.status_code == 200
    named = [u for p in receiver.quiet_for(1.0) for u in resources(p)]
    assert f"{notifying_server.api_base_url}{RESOURCE}/Authorization/{third['authorization_id']}" not in named
    assert len(named) == 3  # the first, the second, and the okafor authorization `third` replaced


def test_receiver_certificate_is_verified_against_the_trust_bundle(
    notifying_server: testing.RunningServer, tmp_path: Path
) -> None:
    """Checklist 20: a receiver whose certificate does not chain to the bundle gets no notification."""
    stranger = NotificationReceiver(tmp_path / "another-ca", "stranger").start()  # its own dev CA
    try:
        point_notifications_at(notifying_server, stranger.url)
        token = client_token(notifying_server, "00101")
        assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
        due(notifying_server)
        row = attempted(notifying_server, "00101")
        assert row["attempts"][0]["error"].startswith("TLS error")
        assert stranger.posts == []
    finally:
        stranger.stop()


# --- daily packages -------------------------------------------------------------------------------


def _next_local(epoch: float, hour: int, minute: int = 0) -> float:
    local = dt.datetime.fromtimestamp(epoch, PACIFIC)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate.timestamp() <= epoch:
        day = local.date() + dt.timedelta(days=1)
        candidate = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=PACIFIC)
    return candidate.timestamp()


def _local_days_later(epoch: float, days: int) -> float:
    """The same local wall-clock time ``days`` calendar days later."""
    local = dt.datetime.fromtimestamp(epoch, PACIFIC)
    day = local.date() + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, local.hour, local.minute, tzinfo=PACIFIC).timestamp()


def _local_midnight(epoch: float, days_back: int) -> int:
    day = dt.datetime.fromtimestamp(epoch, PACIFIC).date() - dt.timedelta(days=days_back)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp())


def test_daily_package_appears_when_the_clock_passes_the_package_time_not_before(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    point_notifications_at(notifying_server, receiver.url, daily=("00101", "00103"))
    package_time = _next_local(notifying_server.clock.now().timestamp(), 7)
    notifying_server.clock.set(package_time - 60)
    assert receiver.quiet_for(1.0) == []
    notifying_server.clock.set(package_time + 30)
    expect_posts(notifying_server, receiver, 2)
    sunny, cca = posts_to(receiver, "00101"), posts_to(receiver, "00103")
    assert len(sunny) == 1 and len(cca) == 1 and posts_to(receiver, "00102") == []
    base = f"{notifying_server.api_base_url}{RESOURCE}/Batch"
    sunny_urls = resources(sunny[0])
    assert [u.split("?")[0] for u in sunny_urls] == [f"{base}/Bulk/00101", f"{base}/BulkRetailCustomerInfo/00101"]
    # A CCA always gets its customer-information package; three accounts split 2 + 1 here.
    assert [u.split("?")[0] for u in resources(cca[0])] == [f"{base}/Bulk/00103"] * 2 + [
        f"{base}/BulkRetailCustomerInfo/00103"] * 2
    token = client_token(notifying_server, "00101")
    bulk = get(notifying_server, sunny_urls[0], token, "00101")
    assert bulk.status_code == 200
    assert block_starts(feed_of(bulk.content)) == {_local_midnight(package_time, 1)}  # the newest day only
    customer = get(notifying_server, sunny_urls[1], token, "00101")
    assert customer.status_code == 200 and b"Green Button Customer Feed" in customer.content

    # The clock jumps three days: the skipped days' packages come, in order, one POST each.
    later = [_local_days_later(package_time, n) for n in (1, 2, 3)]  # 07:00 local, across DST too
    notifying_server.clock.set(later[-1] + 30)
    expect_posts(notifying_server, receiver, 2 + 6)
    sunny = posts_to(receiver, "00101")
    assert len(sunny) == 4
    token = client_token(notifying_server, "00101")  # three days on, a fresh client access token
    days = []
    for post in sunny[1:]:
        feed = feed_of(get(notifying_server, resources(post)[0], token, "00101").content)
        days.append(block_starts(feed))
    assert days == [{_local_midnight(instant, 1)} for instant in later]
    assert len(receiver.quiet_for(1.0)) == 8  # exactly once per day


# --- durability -----------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        for child in children.get(current, []):
            out.append(child)
            stack.append(child)
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the server's processes")
def test_kill_9_between_202_and_delivery_still_delivers_exactly_once_after_restart(
    tmp_path_factory: pytest.TempPathFactory, server: testing.RunningServer
) -> None:
    data_dir = tmp_path_factory.mktemp("kill9")
    shutil.copytree(server.data_dir / "certs", data_dir / "certs")  # the same dev PKI: no key generation
    first = testing.start(data_dir, workers=2)
    rec = NotificationReceiver(data_dir / "certs", "kill9").start()
    try:
        first.clock.freeze()
        after_publication(first)
        point_notifications_at(first, rec.url)
        token = client_token(first, "00101")
        assert_accepted(get(first, f"{RESOURCE}/Batch/Bulk/00101", token, "00101", headers={"X-Transaction": "k9"}))
        processes = [first.process.pid, *_descendants(first.process.pid)]
        assert len(processes) >= 4  # arbiter, two gunicorn workers, the job worker
        for pid in processes:
            os.kill(pid, signal.SIGKILL)
        first.process.wait(10)
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in processes))
        assert rec.quiet_for(0.5) == []

        second = testing.start(data_dir, workers=2)
        try:
            assert rec.quiet_for(1.0) == []  # still not due: the clock stayed frozen
            due(second)
            (post,) = rec.wait_for(1)
            assert post.headers["X-Transaction"] == "k9"
            (url,) = resources(post)
            assert url.startswith(first.api_base_url)  # frozen at acceptance; this restart has other ports
            package = get(second, url.replace(first.api_base_url, second.api_base_url), token, "00101")
            assert package.status_code == 200
            assert len(rec.quiet_for(1.5)) == 1
        finally:
            second.stop()
    finally:
        rec.stop()
        first.stop()


def _job_workers(server: testing.RunningServer) -> list[int]:
    return [pid for pid in _descendants(server.process.pid)
            if b"mock_custodian\x00worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the server's processes")
def test_serve_restarts_its_job_worker_when_it_dies(notifying_server: testing.RunningServer,
                                                    receiver: NotificationReceiver) -> None:
    (worker,) = _job_workers(notifying_server)
    os.kill(worker, signal.SIGKILL)
    token = client_token(notifying_server, "00101")
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101"))
    due(notifying_server)
    expect_posts(notifying_server, receiver, 1)
    (replacement,) = wait_until(lambda: _job_workers(notifying_server))
    assert replacement != worker


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_several_workers_deliver_each_notification_once(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    """The server's own job worker and two `mock-custodian worker` processes race for the same due work."""
    env = dict(notifying_server.env)
    env["MOCK_CUSTODIAN_API_BASE_URL"] = notifying_server.api_base_url
    extra = [subprocess.Popen([sys.executable, "-m", "mock_custodian", "worker", "--data-dir",
                               str(notifying_server.data_dir)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        tokens = {cid: client_token(notifying_server, cid) for cid in ("00101", "00102", "00103")}
        count = 0
        for _ in range(4):
            for cid, token in tokens.items():
                assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/{cid}", token, cid))
                count += 1
        store = database(notifying_server)
        with store.session() as db:  # and an authorization notice, due at once
            row = db.execute(select(Authorization).where(Authorization.kind == "customer")).scalars().first()
            cancel_by_customer(db, row.customer_id, row.id, store.clock().epoch(),
                               f"{notifying_server.api_base_url}{RESOURCE}")
        time.sleep(0.5)  # every worker is polling when the jobs fall due together
        due(notifying_server)
        posts = expect_posts(notifying_server, receiver, count + 1, timeout=30)
        assert len(receiver.quiet_for(1.5)) == count + 1
        urls = [u for p in posts for u in resources(p)]
        assert len(urls) == len(set(urls))
        with database(notifying_server).session() as db:
            statuses = db.execute(select(Notification.status)).scalars().all()
        assert statuses.count("delivered") == count + 1
    finally:
        for process in extra:
            process.send_signal(signal.SIGTERM)
        for process in extra:
            process.wait(10)


def test_a_correction_reaches_the_next_daily_package_and_leaves_earlier_packages_unchanged(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    """Issue 9: a correction ten days back sets a new `updated`, appears in the next daily package, and the
    bytes of a package built before it do not change."""
    point_notifications_at(notifying_server, receiver.url, daily=("00101",))
    now = notifying_server.clock.now().timestamp()
    day = _local_midnight(now, 10)
    token = client_token(notifying_server, "00101")
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101",
                        params={"published-min": str(day), "published-max": str(day + 86400)}))
    due(notifying_server)
    (post,) = expect_posts(notifying_server, receiver, 1)
    (url,) = resources(post)
    before = get(notifying_server, url, token, "00101").content
    assert block_starts(feed_of(before)) == {day}
    notifying_server.control("POST", "/data-changes", json={"kind": "correction", "sa": "okafor-solar", "start": day,
                                               "end": day + 86400, "factor": 1.25})
    assert get(notifying_server, url, token, "00101").content == before  # a built package is frozen
    package_time = _next_local(notifying_server.clock.now().timestamp(), 7)
    notifying_server.clock.set(package_time + 30)
    expect_posts(notifying_server, receiver, 2)
    daily = posts_to(receiver, "00101")[-1]
    token = client_token(notifying_server, "00101")
    feed = feed_of(get(notifying_server, resources(daily)[0], token, "00101").content)
    assert block_starts(feed) == {day, _local_midnight(package_time, 1)}  # the correction and the newest day
    qualities = {q.text for block in feed.iter(f"{{{ESPI}}}IntervalBlock")
                 if block.findtext(f"{{{ESPI}}}interval/{{{ESPI}}}start") == str(day)
                 for q in block.iter(f"{{{ESPI}}}quality")}
    assert qualities == {"7"}


def test_a_self_access_users_bulk_package_holds_its_own_service_agreements(
    notifying_server: testing.RunningServer, receiver: NotificationReceiver
) -> None:
    """Spec 4.7 and 6.8: a self-access user's authorization of its own SAs reaches it through Bulk."""
    token = client_token(notifying_server, "00102")
    assert_accepted(get(notifying_server, f"{RESOURCE}/Batch/Bulk/00102", token, "00102"))
    due(notifying_server)
    (post,) = expect_posts(notifying_server, receiver, 1)
    feed = feed_of(get(notifying_server, resources(post)[0], token, "00102").content)
    with database(notifying_server).session() as db:
        own = db.execute(select(ServiceAgreement.usage_point_id).where(ServiceAgreement.key == "lee-electric")
                         ).scalar_one()
    assert usage_point_ids(feed) == {own}
