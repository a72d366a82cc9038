"""Injected faults (issue 8), the app in-process: each kind's answer as a client sees it, scoping, counting,
reproducible probability, validation, and the notification-fault claim the sender uses. What only a real
connection shows (drop, cut, latency, concurrency across workers): tests/e2e/test_faults_connections.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support import StatusClient, inprocess

from mock_custodian import testing
from mock_custodian.domain import faults
from mock_custodian.errors import ControlError
from mock_custodian.store.db import Database

STATUS_PATH = "/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    server = inprocess.start(tmp_path_factory.mktemp("faults"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_server(sim: testing.RunningServer) -> testing.RunningServer:
    sim.reset()
    return sim


def test_http_error_bodies_json_html_and_plain(fresh_server: testing.RunningServer) -> None:
    client = StatusClient(fresh_server)
    fresh_server.fault("http_error", path=STATUS_PATH, times=1)
    fresh_server.fault("http_error", path=STATUS_PATH, times=1, status=502, body_format="html")
    fresh_server.fault("http_error", path=STATUS_PATH, times=1, params={"status": 504, "body_format": "plain"})
    fresh_server.fault("http_error", path=STATUS_PATH, times=1, status=500, body="oops", body_format="plain",
                       retry_after=9)
    first, second, third, fourth, after = (client.status() for _ in range(5))
    assert (first.status_code, first.headers["Content-Type"]) == (500, "application/json;charset=UTF-8")
    assert first.json() == {"error": "server_error", "error_description": "Internal Server Error"}
    assert second.status_code == 502 and second.headers["Content-Type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in second.text
    assert (third.status_code, third.text) == (504, "504 Gateway Timeout")
    assert (fourth.status_code, fourth.text, fourth.headers["Retry-After"]) == (500, "oops", "9")
    assert after.status_code == 200 and "<currentStatus>1</currentStatus>" in after.text


def test_rate_limit_maintenance_and_empty_204(fresh_server: testing.RunningServer) -> None:
    client = StatusClient(fresh_server)
    fresh_server.fault("rate_limit", path=STATUS_PATH, times=1, retry_after=30)
    fresh_server.fault("maintenance", path=STATUS_PATH, times=1)
    fresh_server.fault("empty_204", path=STATUS_PATH, times=1)
    limited, maintenance, empty, ok = (client.status() for _ in range(4))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
    assert limited.json()["error"] == "rate_limit_exceeded"
    assert maintenance.status_code == 503 and maintenance.json() == {"error": "service_unavailable"}
    assert "Retry-After" not in maintenance.headers
    assert empty.status_code == 204 and empty.content == b"" and "Content-Type" not in empty.headers
    assert ok.status_code == 200


def test_token_expired_early_refuses_the_presented_token_until_a_new_one_is_fetched(
        fresh_server: testing.RunningServer) -> None:
    client = StatusClient(fresh_server)
    fresh_server.fault("token_expired", path=STATUS_PATH, times=1)
    refused = client.status()
    assert refused.status_code == 403
    assert refused.json() == {"error": "invalid_token", "error_description": "Access token expired"}
    assert client.status().status_code == 403, "the token stays expired"
    client.token = client.fetch_token().json()["client_access_token"]
    assert client.status().status_code == 200
    [fault] = fresh_server.faults()
    assert (fault["fired"], fault["active"]) == (1, False)


def test_scoping_by_client_method_path_and_surface(fresh_server: testing.RunningServer) -> None:
    sunny, lee = StatusClient(fresh_server, "00101"), StatusClient(fresh_server, "00102")
    fresh_server.fault("maintenance", client_id="00102")
    assert sunny.status().status_code == 200
    assert lee.status().status_code == 503
    assert lee.fetch_token().status_code == 503, "a client-scoped fault covers every path of that client"
    fresh_server.clear_faults()
    fresh_server.fault("http_error", method="POST", path="/datacustodian/oauth/v2/token", status=500)
    assert sunny.fetch_token().status_code == 500
    assert sunny.status().status_code == 200
    fresh_server.clear_faults()
    fresh_server.fault("http_error", surface="portal", status=503, body_format="html")
    page = requests.get(f"{fresh_server.portal_base_url}/myAuthorization", params={"client_id": "00101"},
                        verify=fresh_server.ca_bundle, timeout=10)
    assert page.status_code == 503 and "<h1>503 Service Unavailable</h1>" in page.text
    assert sunny.status().status_code == 200
    fresh_server.clear_faults()
    fresh_server.fault("maintenance", path="*/myAuthorization", client_id="00104")  # the query's client_id counts
    assert requests.get(f"{fresh_server.portal_base_url}/myAuthorization", params={"client_id": "00104"},
                        verify=fresh_server.ca_bundle, timeout=10).status_code == 503
    assert requests.get(f"{fresh_server.portal_base_url}/myAuthorization", params={"client_id": "00101"},
                        verify=fresh_server.ca_bundle, timeout=10).status_code != 503


def test_probability_draws_are_reproducible(fresh_server: testing.RunningServer) -> None:
    client = StatusClient(fresh_server)

    def pattern() -> list[int]:
        fresh_server.clear_faults()
        fresh_server.fault("maintenance", path=STATUS_PATH, probability=0.5, seed=7)
        return [client.status().status_code for _ in range(16)]

    first, second = pattern(), pattern()
    assert first == second
    assert 200 in first and 503 in first
    fresh_server.clear_faults()
    fresh_server.fault("maintenance", path=STATUS_PATH, probability=0.5, seed=8)
    assert [client.status().status_code for _ in range(16)] != first


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "explode"}, "kind must be one of"),
    ({}, "kind must be one of"),
    ({"kind": "http_error", "status": 302}, "status must be an HTTP error status"),
    ({"kind": "http_error", "body_format": "xml"}, "body_format must be one of"),
    ({"kind": "latency", "delay_ms": 999999}, "delay_ms must be between"),
    ({"kind": "latency", "status": 500}, "unknown field 'status' for kind latency"),
    ({"kind": "drop", "params": {"bytes": 3}}, "unknown parameter 'bytes'"),
    ({"kind": "drop", "times": 0}, "times must be a positive integer"),
    ({"kind": "drop", "probability": 0}, "probability must be a number in (0, 1]"),
    ({"kind": "drop", "probability": "half"}, "probability must be a number"),
    ({"kind": "drop", "surface": "mars"}, "surface must be api or portal"),
    ({"kind": "drop", "method": "BREW"}, "method must be one of"),
    ({"kind": "drop", "path": ""}, "path must be a non-empty string"),
    ({"kind": "cut", "after_bytes": -1}, "after_bytes must not be negative"),
    ({"kind": "rate_limit", "retry_after": "soon"}, "retry_after must be int"),
    ({"kind": "notification_lost", "method": "POST"}, "notification faults match on client_id and path"),
    ({"kind": "notification_duplicated", "copies": 1}, "copies must be between 2 and 10"),
])
def test_bad_fault_specs_are_400_and_nothing_is_stored(fresh_server: testing.RunningServer, spec: dict,
                                                       message: str) -> None:
    response = requests.post(f"{fresh_server.portal_base_url}/__sim/faults", json=spec, verify=fresh_server.ca_bundle,
                             timeout=10,
                             headers={"X-Control-Token": fresh_server.control_token})
    assert response.status_code == 400
    assert message in response.json()["error_description"]
    assert fresh_server.faults() == []


def test_faults_are_listed_fetched_and_deleted(fresh_server: testing.RunningServer) -> None:
    a = fresh_server.fault("maintenance", path=STATUS_PATH)
    b = fresh_server.fault("notification_delayed", client_id="00101", delay_s=120)
    assert b["params"] == {"delay_s": 120} and b["times"] is None and b["active"] is True
    listing = fresh_server.control("GET", "/faults")
    assert [f["id"] for f in listing["faults"]] == [a["id"], b["id"]]
    assert set(listing["kinds"]) == set(faults.KINDS)
    assert fresh_server.control("GET", f"/faults/{a['id']}")["kind"] == "maintenance"
    assert fresh_server.control("DELETE", f"/faults/{a['id']}") == {"deleted": 1}
    with pytest.raises(testing.ControlAPIError) as missing:
        fresh_server.control("GET", f"/faults/{a['id']}")
    assert missing.value.status == 404
    assert StatusClient(fresh_server).status().status_code == 200
    fresh_server.clear_faults()
    assert fresh_server.faults() == []


# --- the notification sender's side (store level) ------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'faults.db'}")
    db.create_schema()
    try:
        yield db
    finally:
        db.dispose()


def test_notification_faults_are_claimed_by_client_and_uri_and_counted(database: Database) -> None:
    with database.session() as db:
        faults.add_fault(db, {"kind": "maintenance"}, 0)  # a request fault: never a notification's
        faults.add_fault(db, {"kind": "notification_lost", "client_id": "00102", "times": 1}, 0)
        faults.add_fault(db, {"kind": "notification_duplicated", "path": "*/cca/*", "copies": 3}, 0)
        faults.add_fault(db, {"kind": "notification_delayed", "times": 2}, 0)
    claim = faults.claim_notification_fault

    with database.session() as db:
        lost = claim(db, client_id="00102", uri="https://tp.example/self/notify", now=10)
        again = claim(db, client_id="00102", uri="https://tp.example/self/notify", now=11)
        dup = claim(db, client_id="00103", uri="https://tp.example/cca/notify", now=12)
        delayed = [claim(db, client_id="00101", uri="https://tp.example/fresh_server/notify", now=13) for _ in range(3)]
    assert lost is not None and lost.kind == "notification_lost"
    assert again is not None and again.kind == "notification_delayed", "the lost fault was spent after one"
    assert dup is not None and (dup.kind, dup.copies) == ("notification_duplicated", 3)
    assert [d.kind if d else None for d in delayed] == ["notification_delayed", None, None]
    with database.session() as db:
        assert faults.claim_request_fault(db, method="GET", path="/x", surface="api", client_ids={"00101"},
                                          has_bearer=False, now=14).kind == "maintenance"
        counts = {f.kind: (f.fired, f.last_fired_at) for f in faults.list_faults(db)}
    assert counts["notification_delayed"] == (2, 13) and counts["notification_lost"] == (1, 10)
    with database.session() as db:
        first = faults.add_fault(db, {"kind": "notification_delayed"}, 0)
        assert first.params == {"delay_s": 300}
    with pytest.raises(ControlError):
        with database.session() as db:
            faults.add_fault(db, {"kind": "notification_early", "delay_s": 5}, 0)
