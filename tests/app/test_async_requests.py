"""Asynchronous package requests (spec 6.4-6.6) refused before any job exists: PG&E's statuses for bad windows,
other registrations, unapproved ones, missing tokens and wrong methods; the app in-process. Accepted
requests, their notifications and retrievals: tests/e2e/test_async_batch.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support import client_token, inprocess

from mock_custodian import testing
from mock_custodian.clock import PACIFIC

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    srv = inprocess.start(tmp_path_factory.mktemp("async"), settings={"package_max_subscriptions": 2})
    yield srv
    srv.stop()


@pytest.fixture
def notifying_server(server: testing.RunningServer) -> testing.RunningServer:
    """A fresh world with the clock frozen after yesterday's publication (as tests/e2e/test_async_batch.py)."""
    server.reset()
    server.clock.freeze()
    after_publication(server)
    return server


def get(notifying_server: testing.RunningServer, url: str, token: str, client_id: str,
        **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    if not url.startswith("https://"):
        url = f"{notifying_server.api_base_url}{url}"
    return requests.get(url, headers=headers, cert=notifying_server.cert(client_id), verify=notifying_server.ca_bundle,
                        timeout=30, **kwargs)


def after_publication(server: testing.RunningServer) -> None:
    """Yesterday's data is published at 06:00 local: before that the T-1 window these tests rely on is
    empty (204). A run in the small hours moves the frozen clock on to 06:30, short of the 07:00 daily
    package time so no daily package is crossed."""
    local = server.clock.now().astimezone(PACIFIC)
    if (local.hour, local.minute) < (6, 30):
        server.clock.set(local.replace(hour=6, minute=30, second=0, microsecond=0).timestamp())


def test_bad_requests_get_pge_statuses_and_store_nothing(notifying_server: testing.RunningServer) -> None:
    token = client_token(notifying_server, "00101")
    bad = get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101",
              params={"published-min": "2026-06-02T07:00:00Z", "published-max": "2026-06-01T07:00:00Z"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request" and "published-min" in bad.json()["error_description"]
    offset = get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", token, "00101",
                 params={"published-min": "2026-06-01T00:00:00-07:00"})
    assert offset.status_code == 400
    assert get(notifying_server, f"{RESOURCE}/Batch/Bulk/00102", token, "00101").status_code == 403  # checklist 2
    testing_token = client_token(notifying_server, "00104", "/datacustodian/test/oauth/v2/token")
    assert get(notifying_server, f"{RESOURCE}/Batch/Bulk/00104", testing_token,
               "00104").status_code == 403  # not Approved
    assert get(notifying_server, f"{RESOURCE}/Batch/Bulk/00101", "", "00101").status_code == 401
    put = requests.put(f"{notifying_server.api_base_url}{RESOURCE}/Batch/Bulk/00101",
                       headers={"Authorization": f"Bearer {token}"},
                       cert=notifying_server.cert("00101"), verify=notifying_server.ca_bundle, timeout=10)
    assert put.status_code == 405
    head = requests.head(f"{notifying_server.api_base_url}{RESOURCE}/Batch/Bulk/00101",
                         headers={"Authorization": f"Bearer {token}"},
                         cert=notifying_server.cert("00101"), verify=notifying_server.ca_bundle, timeout=10)
    assert head.status_code == 405  # a HEAD does not start a job
    # A self-access registration receives no DR data: the whole request needs ProgramEnrollment.
    assert get(notifying_server, f"{RESOURCE}/Batch/BulkRetailDRPrgInfo/00102", client_token(notifying_server,
                                                                                             "00102"), "00102"
               ).status_code == 403
    assert notifying_server.jobs() == []
