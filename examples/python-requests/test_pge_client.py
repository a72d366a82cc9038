"""A third party's own test suite for its PG&E client, run against mock-custodian's pytest plugin.

The ``pge`` fixture comes from the installed ``mock-custodian`` package (no conftest needed): a real
server with real TLS and client certificates, reset to the demo scenario before every test. The client
under test (``pge_client.py``) never imports mock_custodian; only the tests use the fixture to
consent as a customer, move the clock, inject faults and check what the client sent.

Run: ``pytest examples/python-requests``
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from pge_client import Credentials, ShareMyData, batch_list_urls, interval_readings

CLIENT_ID = "00101"  # Sunny Solar in the demo scenario


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(pge, slept: list[float]) -> ShareMyData:  # noqa: ANN001 - the plugin's handle
    tp = pge.third_party(CLIENT_ID)
    credentials = Credentials(tp["client_id"], tp["client_secret"], tp["certificate_chain"], tp["key"],
                              pge.ca_bundle, tp["redirect_uri"])
    return ShareMyData(pge.api_base_url, credentials, sleep=slept.append)


def window(pge, days_back: int = 10, days: int = 2) -> tuple[str, str]:  # noqa: ANN001
    """A published-min/max window of whole UTC days in the past, in PG&E's Zulu format."""
    today = pge.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - dt.timedelta(days=days_back)
    return (start.strftime("%Y-%m-%dT%H:%M:%SZ"), (start + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_client_token_and_service_status(pge, client: ShareMyData) -> None:  # noqa: ANN001
    assert client.read_service_status() == 1
    token_call, status_call = pge.requests()
    # What our client sent, as PG&E's gateway saw it.
    assert token_call["path"] == "/datacustodian/oauth/v2/token" and token_call["method"] == "POST"
    assert token_call["headers"]["Authorization"] == "Basic [redacted]"
    assert "client_secret" not in token_call["query"]
    assert token_call["certificate"]["registered_to"] == CLIENT_ID
    assert status_call["status"] == 200 and status_call["headers"]["Authorization"] == "Bearer [redacted]"


def test_consent_then_code_exchange_then_synchronous_usage(pge, client: ShareMyData) -> None:  # noqa: ANN001
    consent = pge.authorize("rivera", CLIENT_ID, exchange=False)  # the customer, on PG&E's consent pages
    grant = client.exchange_code(consent["code"])
    assert grant.scope.startswith("scope=FB=")
    usage_points = client.usage_points(grant)
    assert len(usage_points) == 2  # rivera's electric and gas service agreements
    start, end = window(pge)
    feed = client.batch_usage(grant, usage_points[0], start, end)
    assert interval_readings(feed) > 0


def test_asynchronous_request_with_notification(pge, client: ShareMyData) -> None:  # noqa: ANN001
    sink = pge.use_sink(CLIENT_ID)  # our notification URI, for the length of this test
    grant = client.exchange_code(pge.authorize("rivera", CLIENT_ID, exchange=False)["code"])
    start, end = window(pge)
    assert client.request_subscription_batch(grant, start, end, x_transaction="sunny-42") == 202
    pge.release_jobs()  # no waiting out PG&E's packaging delay
    for _ in range(100):  # bounded: the job worker posts within a second or two
        posts = pge.sink(CLIENT_ID)
        if posts:
            break
        time.sleep(0.1)
    [post] = posts
    assert post["headers"]["X-Transaction"] == "sunny-42"
    [url] = batch_list_urls(post["body"])
    assert "correlationID=" in url
    package = client.retrieve(grant, url)
    assert interval_readings(package) > 0
    [note] = pge.notifications(client_id=CLIENT_ID)
    assert note["uri"] == sink and note["status"] == "delivered"


def test_retries_through_an_injected_503_and_a_429(pge, client: ShareMyData, slept: list[float]) -> None:  # noqa: ANN001
    pge.fault("maintenance", path="*/ReadServiceStatus", times=2)
    assert client.read_service_status() == 1
    assert [r["status"] for r in pge.requests(path="*/ReadServiceStatus")] == [503, 503, 200]
    pge.fault("rate_limit", path="*/ReadServiceStatus", times=1, retry_after=7)
    pge.fault("drop", path="*/ReadServiceStatus", times=1)
    assert client.read_service_status() == 1
    assert 7 in slept, "the client honoured Retry-After"
    assert [r["status"] for r in pge.requests(path="*/ReadServiceStatus")][-3:] == [429, 0, 200]


def test_tokens_are_refreshed_after_the_clock_moves_two_hours(pge, client: ShareMyData) -> None:  # noqa: ANN001
    grant = client.exchange_code(pge.authorize("rivera", CLIENT_ID, exchange=False)["code"])
    client.usage_points(grant)
    client.read_service_status()
    first_refresh_token = grant.refresh_token
    pge.clock.advance(hours=2)  # both access tokens (1 h) are now expired at "PG&E"
    assert len(client.usage_points(grant)) == 2
    assert grant.refresh_token != first_refresh_token, "PG&E rotates the refresh token"
    assert client.read_service_status() == 1
    tail = [(r["method"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in pge.requests()][-6:]
    assert tail == [("GET", "UsagePoint", 403), ("POST", "token", 200), ("GET", "UsagePoint", 200),
                    ("GET", "ReadServiceStatus", 403), ("POST", "token", 200), ("GET", "ReadServiceStatus", 200)]
