"""Secrets at rest after `mock-custodian serve` (issue 12.1): private file modes after a real start and a
restart, and no live secret in the database's bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from support.at_rest import assert_private, database_bytes

from mock_custodian import testing

TOKEN = "/datacustodian/oauth/v2/token"
STATUS = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"


def test_modes_after_start_and_restart_and_no_live_secret_in_the_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)  # an existing, too open directory is closed too
    server = testing.start(data_dir)
    try:
        assert_private(data_dir)
        tp = server.third_party("00101")
        common: dict[str, Any] = {"cert": server.cert("00101"), "verify": server.ca_bundle, "timeout": 30}
        # Secrets sent in the query string (as some clients do) as well as in headers and forms.
        client = requests.post(server.api_base_url + TOKEN, auth=(tp["client_id"], tp["client_secret"]),
                               params={"grant_type": "client_credentials"}, **common).json()
        consent = server.authorize("rivera", "00101")
        refreshed = requests.post(server.api_base_url + TOKEN, params={
            "grant_type": "refresh_token", "refresh_token": consent["token"]["refresh_token"]},
            auth=(tp["client_id"], tp["client_secret"]), **common).json()
        requests.post(server.api_base_url + TOKEN, params={"grant_type": "client_credentials", "client_id": "00101",
                                                           "client_secret": tp["client_secret"]}, **common)
        requests.get(server.api_base_url + STATUS, params={"access_token": refreshed["access_token"]}, **common)
        secrets = {
            "client access token": client["client_access_token"], "client refresh": client["refresh_token"],
            "code": consent["code"], "access token": consent["token"]["access_token"],
            "spent refresh token": consent["token"]["refresh_token"], "refresh token": refreshed["refresh_token"],
            "new access token": refreshed["access_token"],
        }
        # Redaction: the request log shows none of them in full, wherever it is read.
        logged = requests.get(f"{server.portal_base_url}/__sim/requests", headers={"X-Control-Token":
                              server.control_token}, verify=server.ca_bundle, timeout=30).text
        for name, value in secrets.items():
            assert value not in logged, name
        for sent_in_a_query in ("code", "spent refresh token", "new access token"):
            assert secrets[sent_in_a_query][:8] + "..." in logged, sent_in_a_query
        assert tp["client_secret"] not in logged
        on_disk = database_bytes(data_dir)
        for name, value in secrets.items():
            assert value.encode() not in on_disk, f"the {name} is stored in plain text"
        assert_private(data_dir)
    finally:
        server.stop()
    server = testing.start(data_dir)  # a restart keeps everything private
    try:
        assert_private(data_dir)
    finally:
        server.stop()


