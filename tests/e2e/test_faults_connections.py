"""Injected faults a client only sees on a real connection (issue 8): a dropped connection, a cut response,
latency past the client's timeout, the control API never faulted; and a counted fault across two gunicorn
workers under concurrency. The rest of the fault tests run in-process: tests/app/test_faults.py."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from support import StatusClient

from mock_custodian import testing

STATUS_PATH = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"


@pytest.fixture
def fresh_server(fresh_demo_server: testing.RunningServer) -> testing.RunningServer:
    """The session's demo server (two workers: a counted fault must fire exactly as often across both)."""
    return fresh_demo_server


def test_dropped_connection_and_cut_response(fresh_server: testing.RunningServer) -> None:
    client = StatusClient(fresh_server)
    whole = client.status().content
    fresh_server.fault("drop", path=STATUS_PATH, times=1)
    with pytest.raises(requests.ConnectionError, match="without response|aborted"):
        client.status()
    fresh_server.fault("cut", path=STATUS_PATH, times=1, after_bytes=20)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match=r"IncompleteRead\(20 bytes read"):
        client.status()
    fresh_server.fault("cut", path=STATUS_PATH, times=1)  # default: half the body
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match=rf"{len(whole) // 2} bytes read"):
        client.status()
    # A streaming client sees the first bytes, exactly as sent, then the break.
    fresh_server.fault("cut", path=STATUS_PATH, times=1, after_bytes=30)
    response = requests.get(f"{fresh_server.api_base_url}{STATUS_PATH}",
                            headers={"Authorization": f"Bearer {client.token}"},
                            cert=fresh_server.cert("00101"), verify=fresh_server.ca_bundle, timeout=10, stream=True)
    assert response.status_code == 200
    received = b""
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in response.iter_content(1):
            received += chunk
    assert received == whole[:30]
    assert client.status().content == whole
    logged = fresh_server.requests(path=STATUS_PATH)
    assert [r["status"] for r in logged] == [200, 0, 200, 200, 200, 200]
    assert logged[1]["reason"].endswith("(drop)") and logged[2]["reason"].endswith("(cut)")
    assert logged[-1]["error"] is None


def test_latency_delays_the_real_answer(fresh_server: testing.RunningServer) -> None:
    client = StatusClient(fresh_server)
    fresh_server.fault("latency", path=STATUS_PATH, times=1, delay_ms=600)
    fresh_server.fault("maintenance", path=STATUS_PATH, times=1, delay_ms=400)
    started = time.monotonic()
    slow = client.status()
    middle = time.monotonic()
    slow_error = client.status()
    ended = time.monotonic()
    assert slow.status_code == 200 and middle - started >= 0.6
    assert slow_error.status_code == 503 and ended - middle >= 0.4
    with pytest.raises(requests.Timeout):
        fresh_server.fault("latency", path=STATUS_PATH, times=1, delay_ms=2000)
        requests.get(f"{fresh_server.api_base_url}{STATUS_PATH}", headers={"Authorization": f"Bearer {client.token}"},
                     cert=fresh_server.cert("00101"), verify=fresh_server.ca_bundle, timeout=0.5)
    # The server still answers the abandoned request 2 s later; wait for its log row, so it cannot land in
    # the next test's freshly reset log (bounded: 20 s).
    deadline = time.monotonic() + 20
    while len(fresh_server.requests(path=STATUS_PATH)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(fresh_server.requests(path=STATUS_PATH)) == 3
    assert fresh_server.requests(path=STATUS_PATH)[0]["error"] is None, "latency alone is not an error"


def test_counted_fault_fires_exactly_times_across_workers_under_concurrency(
        fresh_server: testing.RunningServer) -> None:
    client = StatusClient(fresh_server)
    fresh_server.fault("maintenance", path=STATUS_PATH, times=3)
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: client.status(), range(12)))
    assert statuses == [200] * 9 + [503] * 3
    [fault] = fresh_server.faults()
    assert fault["fired"] == 3 and 3 <= fault["matched"] <= 12 and fault["active"] is False


def test_the_control_api_is_never_faulted(fresh_server: testing.RunningServer) -> None:
    fresh_server.fault("drop")  # every path, every client
    assert fresh_server.clock.state()["frozen"] is False
    assert fresh_server.requests() == []
    assert requests.get(f"{fresh_server.portal_base_url}/__sim/health", verify=fresh_server.ca_bundle,
                        timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fresh_server.portal_base_url}/", verify=fresh_server.ca_bundle, timeout=10)
