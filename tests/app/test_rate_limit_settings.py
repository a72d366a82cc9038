"""Rate limit settings of spec 6.7 on the app in-process: the documents' strict profile, and limits off."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import requests
import support
from support import database, inprocess

from mock_custodian import testing
from mock_custodian.clock import PACIFIC, ClockState

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


def _hit(server: testing.RunningServer, client_id: str) -> requests.Response:
    # No bearer token: the answer is 401 unless a rate limit (checked first) answers 429.
    with requests.Session() as session:
        return session.get(f"{server.api_base_url}{RESOURCE}/ReadServiceStatus", cert=server.cert(client_id),
                           verify=server.ca_bundle, timeout=10)


@pytest.fixture
def limited(tmp_path: Path):  # noqa: ANN201
    """The documents' strict limits, the clock frozen (in-process: the same limiter, one process)."""
    server = inprocess.start(tmp_path / "d", settings={
        "rate_limits_enabled": True,
        "rate_limit_profile": "strict",  # the documents' reading: every call, depth 1
        "rate_limit_vendor_per_second": 0.2,
    })
    database(server).write_clock_state(ClockState(frozen_at=dt.datetime(2026, 6, 1, 12, tzinfo=PACIFIC).timestamp()))
    yield server
    server.stop()


def test_strict_profile_counts_the_token_call_as_the_documents_read(limited: testing.RunningServer) -> None:
    # rate_limit_profile=strict: every call at 1 per second, depth 1, so the self-access pattern that passes
    # on the production default (tests/e2e/test_production_clients.py) is throttled at its first data call.
    tp = limited.third_party("00102")
    with requests.Session() as session:
        session.cert, session.verify, session.trust_env = limited.cert("00102"), limited.ca_bundle, False
        token = session.post(f"{limited.api_base_url}/datacustodian/oauth/v2/token",
                             params={"grant_type": "client_credentials"}, auth=(tp["client_id"], tp["client_secret"]),
                             timeout=10)
        status = session.get(f"{limited.api_base_url}{RESOURCE}/ReadServiceStatus", timeout=10, headers={
            "Authorization": f"Bearer {token.json()['client_access_token']}"})
    assert token.status_code == 200
    assert status.status_code == 429 and int(status.headers["Retry-After"]) >= 1


def test_limits_off_by_setting(tmp_path: Path) -> None:
    server = inprocess.start(tmp_path / "d")  # the test harness default: rate_limits_enabled=false
    try:
        support.database(server).write_clock_state(
            ClockState(frozen_at=1_780_000_000.0))
        assert [_hit(server, "00101").status_code for _ in range(5)] == [401] * 5
    finally:
        server.stop()
