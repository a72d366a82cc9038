"""Registration edits shape later authorizations only (spec 5.7; checklist 85, 86)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from support import inprocess

from mock_custodian import testing


@pytest.fixture
def server(tmp_path: Path):  # noqa: ANN201
    srv = inprocess.start(tmp_path / "d")
    yield srv
    srv.stop()


def _edit(server: testing.RunningServer, **fields: object) -> dict:
    response = requests.patch(f"{server.portal_base_url}/portal/api/registration", json=fields,
                              auth=("sunny", "demo"), verify=server.ca_bundle, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_history_length_and_program_enrollment_apply_to_new_authorizations_only(
        server: testing.RunningServer) -> None:
    _edit(server, data_groups=["Basic", "Account", "Billing", "Usage"], history_months=36)
    before = server.authorize("rivera", "00101", via="control")
    assert "HistoryLength=94608000" in before["scope"]
    assert "ProgramEnrollment" not in before["scope"]
    _edit(server, data_groups=["Basic", "Account", "Billing", "Usage", "ProgramEnrollment"], history_months=48)
    after = server.authorize("harbor", "00101", via="control")
    assert "HistoryLength=126144000" in after["scope"]
    assert "AdditionalScope=Usage_Billing_Basic_Account_ProgramEnrollment" in after["scope"]
    # The earlier authorization keeps what it was granted under (its Authorization resource's scope).
    token = requests.post(f"{server.api_base_url}/datacustodian/oauth/v2/token",
                          params={"grant_type": "client_credentials"},
                          auth=("00101", server.third_party("00101")["client_secret"]), cert=server.cert("00101"),
                          verify=server.ca_bundle, timeout=30).json()["client_access_token"]
    entry = requests.get(f"{server.api_base_url}/GreenButtonConnect/espi/1_1/resource/Authorization/"
                         f"{before['authorization_id']}", headers={"Authorization": f"Bearer {token}"},
                         cert=server.cert("00101"), verify=server.ca_bundle, timeout=30).text
    assert "HistoryLength=94608000" in entry and "ProgramEnrollment" not in entry
