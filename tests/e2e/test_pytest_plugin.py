"""The pytest plugin (entry point pytest11), run the way a third party runs it: pytest in its own
project, the fixtures coming from the installed package, under pytest-xdist."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mock_custodian.scenario.parse import DEFAULT_DEMO as DEMO
from mock_custodian.scenario.parse import STARTER_FILE

SUITE = textwrap.dedent('''
    import json, os
    import pytest, requests

    STATUS = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"
    CLIENT = "00201"  # the starter scenario's only third party

    def token(pge):
        tp = pge.third_party(CLIENT)
        return requests.post(pge.api_base_url + "/datacustodian/oauth/v2/token",
                             params={"grant_type": "client_credentials"}, auth=(CLIENT, tp["client_secret"]),
                             cert=pge.cert(CLIENT), verify=pge.ca_bundle, timeout=10).json()

    def record(pge, name):
        with open(os.environ["PLUGIN_OUT"], "a") as out:
            out.write(json.dumps({"test": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                                  "data_dir": str(pge.data_dir), "api": pge.api_base_url,
                                  "clients": [tp["client_id"] for tp in pge.credentials["third_parties"]]}) + "\\n")

    @pytest.mark.parametrize("round", range(3))
    def test_each_test_starts_clean_then_changes_everything(pge, pge_session, round):
        record(pge, "changes")
        assert pge is pge_session
        clock = pge.clock.state()  # running from 12:00 Pacific today (a minute of slack for slow machines)
        assert not clock["frozen"] and clock["local"][11:16] in ("12:00", "12:01")
        assert pge.faults() == [] and pge.requests() == []
        pge.clock.advance(days=2)
        pge.fault("maintenance", path=STATUS)
        t = token(pge)["client_access_token"]
        r = requests.get(pge.api_base_url + STATUS, headers={"Authorization": "Bearer " + t},
                         cert=pge.cert(CLIENT), verify=pge.ca_bundle, timeout=10)
        assert r.status_code == 503
        pge.load_scenario(os.environ["OTHER_SCENARIO"])  # the next test must still get starter.yaml
        assert [tp["client_id"] for tp in pge.credentials["third_parties"]] == ["00101", "00102", "00103", "00104"]

    @pytest.mark.mock_custodian(settings={"client_token_ttl": 300})
    def test_marked_test_gets_its_own_server(pge, pge_session):
        record(pge, "marked")
        pge_session.restore()  # an earlier test on this worker may have left another scenario loaded
        assert pge.data_dir != pge_session.data_dir
        assert token(pge)["expires_in"] == 300
        assert token(pge_session)["expires_in"] == 3600
''')


def run_pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MOCK_CUSTODIAN_"))}
    child_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=project,
                          capture_output=True, text=True, timeout=300, env=child_env)


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    points = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    assert points.get("mock_custodian") == "mock_custodian.pytest_plugin"


def test_per_worker_servers_reset_per_test_markers_and_the_scenario_option(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "starter.yaml").write_text(STARTER_FILE.read_text(encoding="utf-8"))
    out = tmp_path / "out.jsonl"
    result = run_pytest(tmp_path, "-n", "2", "--mock-custodian-scenario", "starter.yaml",
                        env={"PLUGIN_OUT": str(out), "OTHER_SCENARIO": str(DEMO)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(row["clients"] == ["00201"] for row in rows)
    session_servers: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        if row["test"] == "changes":
            assert row["worker"] in ("gw0", "gw1")
            session_servers.setdefault(row["worker"], set()).add((row["data_dir"], row["api"]))
    assert set(session_servers) == {"gw0", "gw1"}, "xdist hands each worker at least two of the four tests"
    assert all(len(servers) == 1 for servers in session_servers.values()), "one server per worker, kept"
    every = set().union(*session_servers.values())
    assert len(every) == len(session_servers), "no two workers share a server"
    [marked] = [row for row in rows if row["test"] == "marked"]
    assert marked["data_dir"] not in {data_dir for data_dir, _ in every}


YESTERDAY = textwrap.dedent('''
    import datetime as dt
    import pytest, requests
    from lxml import etree

    NS = {"a": "http://www.w3.org/2005/Atom", "e": "http://naesb.org/espi"}

    def yesterday(pge):
        """A third party's 'fetch yesterday': the default (T-1) window of rivera's hourly meter."""
        token = pge.authorize("rivera", "00101", service_agreements=["rivera-electric"], via="control")["token"]
        get = lambda url: requests.get(url, headers={"Authorization": "Bearer " + token["access_token"]},
                                       cert=pge.cert("00101"), verify=pge.ca_bundle, timeout=30)
        points = etree.fromstring(get(token["resourceURI"] + "/UsagePoint").content)
        up = points.xpath("//a:entry/a:link[@rel='self']/@href", namespaces=NS)[0]
        readings = etree.fromstring(get(up + "/MeterReading").content)
        mr = readings.xpath("//a:entry/a:link[@rel='self']/@href", namespaces=NS)[0]
        return get(mr + "/IntervalBlock")

    def test_fetch_yesterday_passes_at_any_hour(pge):
        response = yesterday(pge)
        assert response.status_code == 200, response.text
        doc = etree.fromstring(response.content)
        assert len(doc.xpath("//e:IntervalReading", namespaces=NS)) in (23, 24, 25)

    @pytest.mark.mock_custodian(start="03:00")
    def test_the_marker_moves_the_start_before_publication(pge, pge_session):
        assert pge is pge_session  # start alone needs no server of its own
        assert pge.clock.state()["local"][11:16] in ("03:00", "03:01")
        assert yesterday(pge).status_code == 204  # published at 06:00, as at PG&E

    def test_the_next_test_is_back_at_noon(pge):
        assert pge.clock.state()["local"][11:16] in ("12:00", "12:01")
''')


def test_clock_runs_from_noon_pacific_so_fetch_yesterday_passes_at_any_hour(tmp_path: Path) -> None:
    (tmp_path / "test_yesterday.py").write_text(YESTERDAY)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    (tmp_path / "test_real.py").write_text(
        "def test_real(pge):\n    assert abs(pge.clock.state()['offset_s']) < 60\n")
    real = run_pytest(tmp_path, "test_real.py", "--mock-custodian-start", "real")
    assert real.returncode == 0, real.stdout + real.stderr
    bad = run_pytest(tmp_path, "test_real.py", "--mock-custodian-start", "lunchtime")
    assert bad.returncode != 0 and "clock start 'lunchtime'" in bad.stdout + bad.stderr


def test_settings_are_validated(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(pge):\n    pass\n")
    result = run_pytest(tmp_path, "--mock-custodian-setting", "no-equals-sign")
    assert result.returncode != 0
    assert "is not NAME=VALUE" in result.stdout + result.stderr
