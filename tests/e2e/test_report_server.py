"""The report over real TLS and gunicorn: the chain a client really sent, wall-clock times from the
workers, and the pytest plugin's ``demo_server.report()`` and the ``mock-custodian report`` command."""

from __future__ import annotations

import json

import pytest
import requests

from mock_custodian import cli, testing

STATUS = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"
CLIENT = "00102"


def _last_id(demo_server: testing.RunningServer) -> int:
    rows = demo_server.requests()
    return rows[-1]["id"] if rows else 0


def test_a_leaf_sent_without_its_intermediate_is_reported_and_the_full_chain_is_not(
        demo_server: testing.RunningServer, capsys: pytest.CaptureFixture) -> None:
    start = _last_id(demo_server)
    tp = demo_server.third_party(CLIENT)
    token = requests.post(f"{demo_server.api_base_url}/datacustodian/oauth/v2/token",
                          data={"grant_type": "client_credentials"},
                          auth=(CLIENT, tp["client_secret"]), cert=demo_server.cert(CLIENT),
                          verify=demo_server.ca_bundle,
                          timeout=10).json()["client_access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ok = requests.get(demo_server.api_base_url + STATUS, headers=headers, cert=demo_server.cert(CLIENT),
                      verify=demo_server.ca_bundle,
                      timeout=10)
    assert ok.status_code == 200
    clean = demo_server.report(since_id=start)
    assert "tls.leaf_without_chain" not in {f["rule"] for f in clean["findings"]}
    assert clean["requests_examined"] == 2 and clean["errors"] == 0

    leaf_only = requests.get(demo_server.api_base_url + STATUS, headers=headers, cert=(tp["certificate"], tp["key"]),
                             verify=demo_server.ca_bundle, timeout=10)
    assert leaf_only.status_code >= 400  # the dev CA's root is trusted, its intermediate is not sent
    report = demo_server.report(since_id=start)
    finding = next(f for f in report["findings"] if f["rule"] == "tls.leaf_without_chain")
    assert finding["client_id"] == CLIENT and finding["count"] == 1
    assert finding["first"]["request_id"] == _last_id(demo_server)

    # The command reads the same data dir; --fail-on gates on severity.
    assert cli.main(["report", "--data-dir", str(demo_server.data_dir), "--since-id", str(start), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["findings"] == report["findings"]
    assert cli.main(["report", "--data-dir", str(demo_server.data_dir), "--since-id", str(start),
                     "--fail-on", "warning"]) == 1
    assert "tls.leaf_without_chain" in capsys.readouterr().out
    assert cli.main(["report", "--data-dir", str(demo_server.data_dir), "--since", "yesterday"]) == 2
