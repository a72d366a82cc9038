"""The one simulated clock, stored in the database, decides token expiry (issue 2); the app in-process.
Across workers and restarts: tests/e2e/test_state.py."""

from __future__ import annotations

from pathlib import Path

import requests
import support
from support import inprocess

from mock_custodian import testing
from mock_custodian.clock import ClockState

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


def _service_status(server: testing.RunningServer, token: str) -> requests.Response:
    with requests.Session() as session:
        return session.get(f"{server.api_base_url}{RESOURCE}/ReadServiceStatus",
                           headers={"Authorization": f"Bearer {token}"}, cert=server.cert("00101"),
                           verify=server.ca_bundle, timeout=10)


def test_simulated_clock_decides_token_expiry(tmp_path: Path) -> None:
    """Token lifetime follows the one clock: moving it past expires_in makes the token fail with 403."""
    server = inprocess.start(tmp_path / "data", settings={"client_token_ttl": 300})
    try:
        tp = server.third_party("00101")
        response = requests.post(
            f"{server.api_base_url}/datacustodian/oauth/v2/token?grant_type=client_credentials",
            auth=("00101", tp["client_secret"]), cert=server.cert("00101"), verify=server.ca_bundle, timeout=10)
        assert response.json()["expires_in"] == 300
        token = response.json()["client_access_token"]
        assert _service_status(server, token).status_code == 200
        support.database(server).write_clock_state(ClockState(offset_s=301.0))
        expired = _service_status(server, token)
        assert expired.status_code == 403
        assert expired.json()["error"] == "invalid_token"
    finally:
        server.stop()
