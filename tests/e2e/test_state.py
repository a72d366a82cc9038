"""State lives in the database: workers share it and restarts keep it (issue 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import support
from sqlalchemy import select

from mock_custodian import testing
from mock_custodian.clock import ClockState
from mock_custodian.store.hashed import token_key
from mock_custodian.store.models import RequestLog, Token

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


def _client_token(server: testing.RunningServer, client_id: str = "00101") -> str:
    tp = server.third_party(client_id)
    with requests.Session() as session:  # a new connection each time, so the kernel may pick any worker
        response = session.post(
            f"{server.api_base_url}/datacustodian/oauth/v2/token?grant_type=client_credentials",
            auth=(client_id, tp["client_secret"]), cert=server.cert(client_id), verify=server.ca_bundle, timeout=10,
        )
    assert response.status_code == 200, response.text
    return response.json()["client_access_token"]


def _service_status(server: testing.RunningServer, token: str) -> requests.Response:
    with requests.Session() as session:
        return session.get(f"{server.api_base_url}{RESOURCE}/ReadServiceStatus",
                           headers={"Authorization": f"Bearer {token}"}, cert=server.cert("00101"),
                           verify=server.ca_bundle, timeout=10)


def test_two_workers_see_each_others_writes(demo_server: testing.RunningServer) -> None:
    """A token issued by one worker process is accepted by another (the session server runs two)."""
    database = support.database(demo_server)
    crossed = 0
    for _ in range(60):  # bounded: stop as soon as a cross-worker use has been seen a few times
        token = _client_token(demo_server)
        response = _service_status(demo_server, token)
        assert response.status_code == 200
        with database.session() as db:
            issuer = db.get(Token, token_key(token)).issued_by_pid
            server_pid = db.execute(
                select(RequestLog.worker_pid).where(RequestLog.path == f"{RESOURCE}/ReadServiceStatus")
                .order_by(RequestLog.id.desc()).limit(1)
            ).scalar_one()
        crossed += issuer != server_pid
        if crossed >= 3:
            break
    assert crossed >= 3, "no request was ever served by a worker other than the token's issuer"


def test_restart_keeps_tokens_clock_and_credentials(tmp_path: Path) -> None:
    server = testing.start(tmp_path / "data")
    try:
        token = _client_token(server)
        support.database(server).write_clock_state(ClockState(offset_s=600.0))  # within the token's hour
        credentials = server.credentials
    finally:
        server.stop()
    again = testing.start(tmp_path / "data")
    try:
        assert _service_status(again, token).status_code == 200
        assert again.credentials["third_parties"] == credentials["third_parties"]
        assert support.database(again).read_clock_state().offset_s == pytest.approx(600.0)
    finally:
        again.stop()


def test_credentials_json_lists_every_third_party(demo_server: testing.RunningServer) -> None:
    out = subprocess.run([sys.executable, "-m", "mock_custodian", "credentials", "--json", "--data-dir",
                          str(demo_server.data_dir)], check=True, capture_output=True, text=True)
    creds = json.loads(out.stdout)
    assert creds["api_base_url"] == demo_server.api_base_url
    assert creds["portal_base_url"] == demo_server.portal_base_url
    assert Path(creds["ca_bundle"]).is_file()
    by_id = {tp["client_id"]: tp for tp in creds["third_parties"]}
    assert set(by_id) == {"00101", "00102", "00103", "00104"}
    assert by_id["00101"]["user_type"] == "Standard User"
    assert by_id["00101"]["registration_status"] == "Approved"
    assert by_id["00102"]["user_type"] == "Self-Access User"
    assert by_id["00103"]["user_type"] == "Community Choice Aggregator"
    assert by_id["00104"]["registration_status"] == "Accepted"
    for client_id, tp in by_id.items():
        assert len(client_id) == 5 and client_id.isdigit()
        assert tp["bulk_id"] == client_id
        assert tp["client_secret"] and tp["registration_access_token"]
        assert tp["notification_uri"].startswith("https://")
        for key in ("certificate", "key", "certificate_chain"):
            assert Path(tp[key]).is_file(), key
    assert by_id["00101"]["redirect_uri"] and by_id["00101"]["third_party_portal_uri"]
    assert by_id["00103"]["redirect_uri"] is None
