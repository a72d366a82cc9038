"""CLI of the test-double controls (issue 8): clock, reset, scenario new/load, faults, requests (--tail),
notifications, export-credentials. They act on the data dir's database, with or without a server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from support import database

from mock_custodian import cli
from mock_custodian.cli.common import open_data_dir
from mock_custodian.scenario.parse import BUILTIN_SCENARIOS, STARTER_FILE, parse_scenario
from mock_custodian.settings import load_settings
from mock_custodian.store.models import Notification, RequestLog, SinkPost, ThirdParty


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    open_data_dir(load_settings({"data_dir": folder}, environ={}), create=True)
    return folder


def run(data_dir: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--data-dir", str(data_dir)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_scenario_new_writes_a_commented_file_that_validates(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "mine.yaml"
    assert cli.main(["scenario", "new", str(target)]) == 0
    text = target.read_text()
    assert text == STARTER_FILE.read_text(encoding="utf-8") and text.count("#") > 10
    scenario = parse_scenario(text, str(target))
    assert [tp.client_id for tp in scenario.third_parties] == ["00201"] and len(scenario.authorizations) == 1
    assert cli.main(["scenario", "validate", str(target)]) == 0
    assert cli.main(["scenario", "new", str(target)]) == 2
    assert "exists" in capsys.readouterr().err
    assert cli.main(["scenario", "new"]) == 0
    assert capsys.readouterr().out == STARTER_FILE.read_text(encoding="utf-8")


def test_clock_commands_move_the_shared_clock(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(data_dir, capsys, "clock", "freeze", "2026-07-04T16:00:00Z")
    assert code == 0 and out.startswith("2026-07-04T16:00:00.000Z  (2026-07-04T09:00:00-07:00 Pacific; frozen)")
    assert run(data_dir, capsys, "clock", "advance", "90m")[1].startswith("2026-07-04T17:30:00.000Z")
    assert run(data_dir, capsys, "clock", "advance", "P1DT1H")[1].startswith("2026-07-05T18:30:00.000Z")
    assert run(data_dir, capsys, "clock", "set", "1783296000")[1].startswith("2026-07-06T00:00:00.000Z")
    assert database(data_dir).clock().now().isoformat() == "2026-07-06T00:00:00+00:00"
    code, out, _ = run(data_dir, capsys, "clock", "thaw")
    assert code == 0 and "running, -" in out
    code, _, err = run(data_dir, capsys, "clock", "advance", "later")
    assert code == 2 and "not a duration: 'later'" in err
    code, _, err = run(data_dir, capsys, "clock", "set", "2026-01-01T00:00")
    assert code == 2 and "no time zone" in err
    run(data_dir, capsys, "reset")
    assert abs(database(data_dir).read_clock_state().offset_s) < 1


def test_faults_add_list_and_clear(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(data_dir, capsys, "faults", "add", "http_error", "--path", "*/token", "--times", "2",
                       "--param", "status=502", "--param", "body_format=html")
    assert code == 0 and "fault #" in out
    lines = out.splitlines()
    assert lines[1].split()[:5] == ["ID", "KIND", "SCOPE", "HOW", "OFTEN"]
    assert "http_error" in lines[3] and "*/token" in lines[3] and "first 2" in lines[3]
    assert '{"status":502,"body_format":"html"}' in lines[3] and lines[3].rstrip().endswith("active")
    code, _, err = run(data_dir, capsys, "faults", "add", "latency", "--param", "status=500")
    assert code == 2 and "unknown parameter 'status' for kind latency" in err
    assert run(data_dir, capsys, "faults", "clear")[1].strip() == "1 fault(s) removed"
    assert run(data_dir, capsys, "faults")[1].strip() == "(none)"


def _log(data_dir: Path, *rows: dict) -> None:
    db = database(data_dir)
    with db.session() as session:
        for row in rows:
            session.add(RequestLog(**{"at": 1795305600.0, "surface": "api", "method": "GET", "query": "",
                                      "headers": {"Authorization": "Bearer [redacted]"}, "worker_pid": 1, **row}))
    db.dispose()


def test_requests_prints_a_readable_table_and_json(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    run(data_dir, capsys, "reset")
    _log(data_dir, {"path": "/datacustodian/oauth/v2/token", "method": "POST", "query": "grant_type=x", "status": 400,
                    "claimed_client_id": "00101", "error": "unsupported_grant_type", "reason": "Unsupported"},
         {"path": "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus", "status": 0, "client_id": "00101",
          "error": "injected_fault", "reason": "injected fault #1 (drop)"})
    code, out, _ = run(data_dir, capsys, "requests")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "AT", "(simulated)", "METHOD", "PATH", "STATUS", "CLIENT",
                                              "CERTIFICATE", "ERROR", "/", "REASON"]
    assert "/datacustodian/oauth/v2/token?grant_type=x" in lines[2] and "00101?" in lines[2]
    assert "dropped" in lines[3] and "injected fault #1 (drop)" in lines[3]
    assert lines[-1].startswith("CLIENT: 00101 = authenticated") and "00101? = only claimed" in lines[-1]
    code, out, _ = run(data_dir, capsys, "requests", "--jsonl", "--status", "400")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["error"] == "unsupported_grant_type" and row["headers"]["Authorization"] == "Bearer [redacted]"
    code, out, _ = run(data_dir, capsys, "requests", "--json")
    rows = json.loads(out)  # one JSON array
    assert code == 0 and [r["status"] for r in rows] == [400, 0]
    code, _, err = run(data_dir, capsys, "requests", "--json", "--tail")
    assert code == 2 and "--jsonl" in err


def test_requests_legend_only_when_a_client_is_merely_claimed(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    run(data_dir, capsys, "reset")
    _log(data_dir, {"path": "/x", "status": 200, "client_id": "00101"})
    out = run(data_dir, capsys, "requests")[1]
    assert "00101?" not in out and "only claimed" not in out


def test_requests_tail_follows_new_entries(data_dir: Path) -> None:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_CUSTODIAN_")}
    process = subprocess.Popen([sys.executable, "-m", "mock_custodian", "requests", "--tail", "--jsonl",
                                "--data-dir", str(data_dir), "--path", "/tail/*"],
                               stdout=subprocess.PIPE, text=True, env=run_env)
    try:
        time.sleep(1.5)  # the first listing (empty for this path)
        _log(data_dir, {"path": "/tail/one", "status": 200}, {"path": "/tail/two", "status": 404})
        seen = [json.loads(process.stdout.readline())["path"] for _ in range(2)]
        assert seen == ["/tail/one", "/tail/two"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def test_notifications_lists_deliveries_and_sink_posts(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    run(data_dir, capsys, "reset")
    db = database(data_dir)
    with db.session() as session:
        tp = session.query(ThirdParty).filter_by(client_id="00101").one()
        session.add(Notification(third_party_id=tp.id, uri="https://127.0.0.1:9/notify", body="<BatchList/>",
                                 status="pending", created_at=0, next_attempt_at=60,
                                 attempts=[{"at": 0, "status": 503, "error": None}]))
        session.add(SinkPost(sink="mine", received_at=0, surface="portal", query="", headers={},
                             content_type="application/xml", body="<ns0:BatchList/>"))
    db.dispose()
    code, out, _ = run(data_dir, capsys, "notifications")
    assert code == 0
    assert "https://127.0.0.1:9/notify" in out and "pending" in out and "503" in out
    assert "mine" in out and "<ns0:BatchList/>" in out
    payload = json.loads(run(data_dir, capsys, "notifications", "--json")[1])
    assert payload["notifications"][0]["attempts"][0]["status"] == 503 and payload["sink"][0]["sink"] == "mine"


def test_export_credentials_writes_pem_and_pkcs12(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
                                                  ) -> None:
    out = tmp_path / "creds"
    code, text, _ = run(data_dir, capsys, "export-credentials", str(out), "--p12", "--p12-password", "pw")
    assert code == 0 and "4 third parties" in text
    creds = json.loads((out / "credentials.json").read_text())
    sunny = next(tp for tp in creds["third_parties"] if tp["client_id"] == "00101")
    assert sunny["certificate_chain"] == str(out / "00101" / "chain.pem")
    assert (out / "00101" / "chain.pem").read_text().count("BEGIN CERTIFICATE") == 2
    assert (out / "00101" / "key.pem").stat().st_mode & 0o077 == 0
    assert creds["ca_bundle"] == str(out / "ca.pem") and (out / "ca.pem").exists()
    key, cert, chain = pkcs12.load_key_and_certificates((out / "00101" / "bundle.p12").read_bytes(), b"pw")
    assert key is not None and cert is not None and len(chain) == 1


def test_scenario_load_and_reset_follow_the_file(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = tmp_path / "starter.yaml"
    scenario.write_text(STARTER_FILE.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    assert run(data_dir, capsys, "scenario", "load", "starter.yaml")[0] == 0
    monkeypatch.chdir(data_dir)
    code, out, _ = run(data_dir, capsys, "reset")  # from another folder: the stored path is absolute
    assert code == 0 and str(scenario) in out
    db = database(data_dir)
    with db.session() as session:
        assert [tp.client_id for tp in session.query(ThirdParty)] == ["00201"]
    db.dispose()
    cli.main(["scenario", "load", str(BUILTIN_SCENARIOS["demo"]),
              "--data-dir", str(data_dir)])


def test_commands_refuse_a_folder_without_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for args in (["clock"], ["requests"], ["faults"], ["reset"]):
        code, _, err = run(tmp_path / "empty", capsys, *args)
        assert code == 2 and "no mock-custodian data" in err
    assert not (tmp_path / "empty").exists()
