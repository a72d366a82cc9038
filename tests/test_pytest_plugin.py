"""The pytest plugin (entry point pytest11), run the way a third party runs it: pytest in its own
project, the fixtures coming from the installed package; with and without pytest-xdist."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mock_custodian.control_cli import STARTER_SCENARIO

SUITE = textwrap.dedent('''
    import json, os
    import pytest, requests

    STATUS = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"

    def token(pge, client_id="00101"):
        tp = pge.third_party(client_id)
        return requests.post(pge.api_base_url + "/datacustodian/oauth/v2/token",
                             params={"grant_type": "client_credentials"}, auth=(client_id, tp["client_secret"]),
                             cert=pge.cert(client_id), verify=pge.ca_bundle, timeout=10).json()

    def test_changes_everything(pge):
        pge.clock.advance(days=2)
        pge.fault("maintenance", path=STATUS)
        t = token(pge)["client_access_token"]
        r = requests.get(pge.api_base_url + STATUS, headers={"Authorization": "Bearer " + t},
                         cert=pge.cert("00101"), verify=pge.ca_bundle, timeout=10)
        assert r.status_code == 503

    def test_next_test_starts_clean(pge, pge_session):
        assert pge is pge_session
        assert abs(pge.clock.state()["offset_s"]) < 60
        assert pge.faults() == [] and pge.requests() == []

    @pytest.mark.mock_custodian(settings={"client_token_ttl": 300})
    def test_marked_test_gets_its_own_server(pge, pge_session):
        assert pge.data_dir != pge_session.data_dir
        assert token(pge)["expires_in"] == 300
        assert token(pge_session)["expires_in"] == 3600

    def test_factory_starts_more_servers(pge_factory, tmp_path):
        scenario = tmp_path / "starter.yaml"
        scenario.write_text(os.environ["STARTER"])
        other = pge_factory(scenario=scenario)
        assert [tp["client_id"] for tp in other.credentials["third_parties"]] == ["00201"]
        assert token(other, "00201")["token_type"] == "Bearer"
''')

RECORDING_SUITE = textwrap.dedent('''
    import json, os

    def record(pge):
        with open(os.environ["PLUGIN_OUT"], "a") as out:
            out.write(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER"), "data_dir": str(pge.data_dir),
                                  "api": pge.api_base_url,
                                  "clients": [tp["client_id"] for tp in pge.credentials["third_parties"]]}) + "\\n")

    def test_a(pge): record(pge)
    def test_b(pge): record(pge)
    def test_c(pge): record(pge)
    def test_d(pge): record(pge)
''')


def run_pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MOCK_CUSTODIAN_"))}
    child_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=project,
                          capture_output=True, text=True, timeout=300, env=child_env)


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    points = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    assert points.get("mock_custodian") == "mock_custodian.pytest_plugin"


def test_fixtures_reset_between_tests_markers_and_factory(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    result = run_pytest(tmp_path, env={"STARTER": STARTER_SCENARIO})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_each_xdist_worker_gets_its_own_server_and_the_scenario_option_applies(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "test_recording.py").write_text(RECORDING_SUITE)
    (tmp_path / "starter.yaml").write_text(STARTER_SCENARIO)
    out = tmp_path / "out.jsonl"
    result = run_pytest(tmp_path, "-n", "2", "--mock-custodian-scenario", "starter.yaml",
                        env={"PLUGIN_OUT": str(out)})
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    by_worker: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        by_worker.setdefault(row["worker"], set()).add((row["data_dir"], row["api"]))
        assert row["clients"] == ["00201"]
    assert set(by_worker) == {"gw0", "gw1"}
    assert all(len(servers) == 1 for servers in by_worker.values()), "one server per worker, kept for the session"
    assert by_worker["gw0"] != by_worker["gw1"]


def test_settings_are_validated(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(pge):\n    pass\n")
    result = run_pytest(tmp_path, "--mock-custodian-setting", "no-equals-sign")
    assert result.returncode != 0
    assert "is not NAME=VALUE" in result.stdout + result.stderr
