"""The control API as `mock-custodian serve` offers it (issue 8): the token printed at start and written to
server.json, a fixed token from the environment, the explicit off switch, and one clock for every worker.
The rest of the control API runs in-process: tests/app/test_control_api.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import requests

from mock_custodian import testing

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


@pytest.fixture
def fresh_server(fresh_demo_server: testing.RunningServer) -> testing.RunningServer:
    """The session's demo server (two workers), reset before and after."""
    return fresh_demo_server


def raw(server: testing.RunningServer, method: str, path: str, token: str | None = None, base: str | None = None,
        **kwargs) -> requests.Response:  # noqa: ANN003
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["X-Control-Token"] = token
    return requests.request(method, f"{base or server.portal_base_url}/__sim{path}", headers=headers,
                            verify=server.ca_bundle, timeout=30, **kwargs)


def test_control_calls_need_the_token_printed_at_start_and_written_to_server_json(
        fresh_server: testing.RunningServer) -> None:
    info = json.loads((fresh_server.data_dir / "server.json").read_text())
    assert info["control_token"] == fresh_server.control_token and len(fresh_server.control_token) >= 24
    assert f"X-Control-Token: {fresh_server.control_token}" in fresh_server.log()
    assert (fresh_server.data_dir / "server.json").stat().st_mode & 0o077 == 0
    for base in (fresh_server.portal_base_url, fresh_server.api_base_url):  # both hosts, no client certificate needed
        missing = raw(fresh_server, "GET", "/clock", base=base)
        assert missing.status_code == 401
        assert missing.json()["error"] == "control_token_required"
        assert "X-Control-Token" in missing.json()["error_description"]
        wrong = raw(fresh_server, "GET", "/clock", token="not-the-token", base=base)
        assert wrong.status_code == 401 and wrong.json()["error_description"] == "wrong control token"
        assert raw(fresh_server, "GET", "/clock", token=fresh_server.control_token, base=base).status_code == 200
        bearer = raw(fresh_server, "GET", "/clock", base=base,
                     headers={"Authorization": f"Bearer {fresh_server.control_token}"})
        assert bearer.status_code == 200
        assert raw(fresh_server, "GET", "/health", base=base).status_code == 200


def test_fixed_token_from_the_environment_and_the_explicit_off_switch(tmp_path: Path) -> None:
    fixed = testing.start(tmp_path / "fixed", settings={"control_token": "ci-secret-token"})
    try:
        assert fixed.control_token == "ci-secret-token"
        assert "ci-secret-token" not in fixed.log(), "a token the operator chose is not printed to CI logs"
        assert raw(fixed, "GET", "/clock", token="ci-secret-token").status_code == 200
    finally:
        fixed.stop()
    off = testing.start(tmp_path / "off", settings={"control_api": False})
    try:
        assert off.control_token is None
        assert json.loads((off.data_dir / "server.json").read_text())["control_token"] is None
        for path in ("/clock", "/credentials", "/openapi.json"):
            response = raw(off, "GET", path, token="anything")
            assert response.status_code == 404
            assert response.text == f"No listener for endpoint: /__sim{path}"
        response = raw(off, "POST", "/sink/x", data=b"<a/>")
        assert response.status_code == 404
        assert raw(off, "GET", "/health").status_code == 200
        assert off.credentials["third_parties"], "credentials still come from the CLI"
        with pytest.raises(testing.ControlAPIError):
            off.clock.now()
    finally:
        off.stop()


def test_every_worker_reads_the_same_moved_clock(fresh_server: testing.RunningServer) -> None:
    fresh_server.clock.freeze(dt.datetime(2027, 5, 1, 12, 0, tzinfo=dt.UTC))
    seen = {}
    for _ in range(40):  # two workers, fresh connections: both answer within a few tries
        health = requests.get(f"{fresh_server.portal_base_url}/__sim/health", verify=fresh_server.ca_bundle,
                              timeout=10).json()
        seen[health["worker_pid"]] = health["clock"]
        if len(seen) == 2:
            break
    assert len(seen) == 2, "both workers should have answered"
    assert set(seen.values()) == {"2027-05-01T12:00:00Z"}
