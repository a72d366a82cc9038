"""The /__sim/ control API (spec 1.4; issue 8): token, clock, reset, scenarios, credentials, request log,
jobs, notifications, sink, direct authorizations, and the OpenAPI document that describes it; the app
in-process. What `serve` adds (server.json, the printed token, workers): tests/e2e/test_control_api_serve.py."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import support
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select
from support import client_token, inprocess

from mock_custodian import testing
from mock_custodian.api.openapi import openapi_path
from mock_custodian.app import create_app
from mock_custodian.scenario.parse import STARTER_FILE
from mock_custodian.settings import load_settings
from mock_custodian.store.models import AsyncJob, Notification, ThirdParty

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """Its own world (in-process): these tests move the clock and replace the world."""
    server = inprocess.start(tmp_path_factory.mktemp("control"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_server(sim: testing.RunningServer) -> testing.RunningServer:
    sim.reset()
    return sim


def service_status(server: testing.RunningServer, token: str, client_id: str = "00101") -> requests.Response:
    return requests.get(f"{server.api_base_url}{RESOURCE}/ReadServiceStatus",
                        headers={"Authorization": f"Bearer {token}"}, cert=server.cert(client_id),
                        verify=server.ca_bundle, timeout=10)


def raw(server: testing.RunningServer, method: str, path: str, token: str | None = None, base: str | None = None,
        **kwargs) -> requests.Response:  # noqa: ANN003
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["X-Control-Token"] = token
    return requests.request(method, f"{base or server.portal_base_url}/__sim{path}", headers=headers,
                            verify=server.ca_bundle, timeout=30, **kwargs)


# --- the control token --------------------------------------------------------------------------


def test_a_refused_control_call_changes_nothing(fresh_server: testing.RunningServer) -> None:
    before = fresh_server.clock.now()
    assert raw(fresh_server, "POST", "/clock/advance", json={"days": 30}).status_code == 401
    assert raw(fresh_server, "POST", "/faults", json={"kind": "drop"}).status_code == 401
    assert abs((fresh_server.clock.now() - before).total_seconds()) < 60
    assert fresh_server.faults() == []


# --- the clock ----------------------------------------------------------------------------------


def test_advancing_the_clock_two_hours_expires_a_client_access_token(fresh_server: testing.RunningServer) -> None:
    token = client_token(fresh_server)
    assert service_status(fresh_server, token).status_code == 200
    fresh_server.clock.advance(hours=2)
    expired = service_status(fresh_server, token)
    assert expired.status_code == 403
    assert expired.json()["error_description"] == "Access token expired"
    assert service_status(fresh_server, client_token(fresh_server)).status_code == 200


def test_freeze_set_advance_and_thaw(fresh_server: testing.RunningServer) -> None:
    frozen = fresh_server.clock.freeze()
    time.sleep(0.05)
    assert fresh_server.clock.now() == frozen
    assert fresh_server.clock.state()["frozen"] is True
    moved = fresh_server.clock.set("2026-03-08T09:59:00Z")  # the morning of a DST change
    assert moved == dt.datetime(2026, 3, 8, 9, 59, tzinfo=dt.UTC)
    assert fresh_server.clock.advance("PT2M") == dt.datetime(2026, 3, 8, 10, 1, tzinfo=dt.UTC)
    assert fresh_server.clock.advance(dt.timedelta(days=1)) == dt.datetime(2026, 3, 9, 10, 1, tzinfo=dt.UTC)
    assert fresh_server.clock.state()["local"] == "2026-03-09T03:01:00-07:00"
    assert fresh_server.control("POST", "/clock/advance", json={"by": "90m"})["now"] == "2026-03-09T11:31:00.000Z"
    fresh_server.clock.thaw()
    state = fresh_server.clock.state()
    assert state["frozen"] is False
    time.sleep(0.05)
    assert fresh_server.clock.now() > dt.datetime(2026, 3, 9, 11, 31, tzinfo=dt.UTC)
    assert fresh_server.clock.now() < dt.datetime(2026, 3, 9, 11, 32, tzinfo=dt.UTC)


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/clock/advance", {"by": "soon"}, "not a duration"),
    ("/clock/advance", {}, "say how far"),
    ("/clock/advance", {"hours": 2, "fortnights": 1}, "unknown field"),
    ("/clock/advance", {"hours": True}, "not a duration"),
    ("/clock/set", {"to": "2026-03-01T00:00:00"}, "no time zone"),
    ("/clock/set", {}, "send {\"to\""),
    ("/clock/freeze", {"at": "yesterday"}, "not an instant"),
])
def test_bad_clock_input_is_a_clear_400_and_moves_nothing(fresh_server: testing.RunningServer, path: str, body: dict,
                                                           message: str) -> None:
    before = fresh_server.clock.state()
    response = raw(fresh_server, "POST", path, token=fresh_server.control_token, json=body)
    assert response.status_code == 400
    assert message in response.json()["error_description"]
    after = fresh_server.clock.state()
    assert after["frozen"] == before["frozen"] and abs(after["offset_s"] - before["offset_s"]) < 5


def test_a_body_that_is_not_a_json_object_is_refused(fresh_server: testing.RunningServer) -> None:
    for data in (b"[1, 2]", b"{not json", b'"text"'):
        response = raw(fresh_server, "POST", "/clock/advance", token=fresh_server.control_token, data=data,
                       headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error_description"] == "the request body must be a JSON object"


# --- reset and scenarios -------------------------------------------------------------------------


def test_reset_restores_the_scenario_and_forgets_tokens_clock_faults_logs_and_sink(
        fresh_server: testing.RunningServer) -> None:
    token = client_token(fresh_server)
    consent = fresh_server.authorize("rivera", "00101", via="control")
    fresh_server.clock.advance(days=3)
    fresh_server.fault("maintenance", path="*/nothing-matches")
    assert requests.post(fresh_server.sink_url("reset-check"), data=b"<x/>", verify=fresh_server.ca_bundle,
                         timeout=10).ok
    assert fresh_server.requests() and fresh_server.sink("reset-check")
    fresh_server.reset()
    assert abs(fresh_server.clock.state()["offset_s"]) < 5 and not fresh_server.clock.state()["frozen"]
    assert fresh_server.faults() == [] and fresh_server.sink("reset-check") == []
    assert fresh_server.requests() == []
    assert service_status(fresh_server, token).status_code == 403
    assert fresh_server.requests()[-1]["reason"] == "Invalid access token"
    fresh = fresh_server.authorize("rivera", "00101", via="control")
    assert fresh["authorization_id"] > 0 and fresh["token"]["access_token"] != consent["token"]["access_token"]


def test_loading_a_scenario_replaces_the_world_and_credentials(fresh_server: testing.RunningServer) -> None:
    try:
        loaded = fresh_server.load_scenario(STARTER_FILE.read_text(encoding="utf-8"))
        assert loaded["name"] == "my-scenario"
        assert [tp["client_id"] for tp in fresh_server.credentials["third_parties"]] == ["00201"]
        assert service_status(fresh_server, client_token(fresh_server, "00201"), "00201").status_code == 200
        fresh_server.reset()  # back to *this* scenario, from the copy kept in the data dir
        assert fresh_server.control("GET", "/scenario")["name"] == "my-scenario"
    finally:
        fresh_server.control("POST", "/scenario", json={"builtin": "demo"})
        fresh_server.refresh_credentials()
    assert "00101" in [tp["client_id"] for tp in fresh_server.credentials["third_parties"]]


def test_a_broken_scenario_is_refused_with_its_line_and_the_world_is_kept(fresh_server: testing.RunningServer) -> None:
    broken = STARTER_FILE.read_text(encoding="utf-8").replace("profile: gas_daily", "profile: wind")
    response = raw(fresh_server, "POST", "/scenario", token=fresh_server.control_token, data=broken.encode(),
                   headers={"Content-Type": "application/yaml"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_scenario"
    line = broken.splitlines().index("            profile: wind") + 1
    assert f":{line}: customers[0].accounts[0].service_agreements[1].profile: 'wind' is not one of" in (
        body["error_description"])
    assert fresh_server.control("GET", "/scenario")["name"] == "demo"
    assert service_status(fresh_server, client_token(fresh_server)).status_code == 200
    for payload in ({"path": "/no/such/file.yaml"}, {"builtin": "other"}, {}):
        response = raw(fresh_server, "POST", "/scenario", token=fresh_server.control_token, json=payload)
        assert response.status_code == 400, payload


# --- credentials ----------------------------------------------------------------------------------


def test_credentials_match_the_cli_and_inline_pem_and_pkcs12_work(fresh_server: testing.RunningServer,
                                                                  tmp_path: Path) -> None:
    creds = fresh_server.control("GET", "/credentials", params={"inline": "pem"})
    sunny = next(tp for tp in creds["third_parties"] if tp["client_id"] == "00101")
    assert sunny["client_secret"] == fresh_server.third_party("00101")["client_secret"]
    assert sunny["certificate_chain_pem"] == Path(sunny["certificate_chain"]).read_text()
    assert creds["ca_bundle_pem"] == Path(fresh_server.ca_bundle).read_text()
    assert creds["sink_base_url"] == f"{fresh_server.portal_base_url}/__sim/sink"
    # A client that only has what the control API gave it (as a container client would).
    (tmp_path / "chain.pem").write_text(sunny["certificate_chain_pem"])
    (tmp_path / "key.pem").write_text(sunny["key_pem"])
    (tmp_path / "ca.pem").write_bytes(fresh_server.control("GET", "/ca.pem", raw=True).content)
    response = requests.post(f"{fresh_server.api_base_url}/datacustodian/oauth/v2/token",
                             params={"grant_type": "client_credentials"}, auth=("00101", sunny["client_secret"]),
                             cert=(str(tmp_path / "chain.pem"), str(tmp_path / "key.pem")),
                             verify=str(tmp_path / "ca.pem"), timeout=10)
    assert response.status_code == 200
    blob = fresh_server.control("GET", "/credentials/00101/bundle.p12", params={"password": "s3cret"}, raw=True)
    assert blob.headers["Content-Type"] == "application/x-pkcs12"
    key, cert, chain = pkcs12.load_key_and_certificates(blob.content, b"s3cret")
    assert cert is not None and key is not None
    assert cert == x509.load_pem_x509_certificate(sunny["certificate_pem"].encode())
    assert [c.subject for c in chain] == [x509.load_pem_x509_certificate(
        Path(fresh_server.data_dir / "certs" / "intermediate.pem").read_bytes()).subject]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(blob.content, b"wrong")
    for path in ("/credentials/99999/chain.pem", "/credentials/00101/secret.txt"):
        assert raw(fresh_server, "GET", path, token=fresh_server.control_token).status_code == 404
    assert raw(fresh_server, "GET", "/credentials", token=fresh_server.control_token,
               params={"inline": "der"}).status_code == 400


# --- the request log ------------------------------------------------------------------------------


def test_request_log_shows_what_was_sent_with_which_certificate_and_what_came_back(
        fresh_server: testing.RunningServer) -> None:
    token = client_token(fresh_server)
    service_status(fresh_server, token)
    requests.get(f"{fresh_server.api_base_url}{RESOURCE}/ReadServiceStatus?x=1",
                 headers={"Authorization": "Bearer nope"},
                 verify=fresh_server.ca_bundle, timeout=10)  # no certificate
    log = fresh_server.requests()
    token_call, ok, no_cert = log[-3:]
    assert (token_call["method"], token_call["path"], token_call["query"]) == (
        "POST", "/datacustodian/oauth/v2/token", "grant_type=client_credentials")
    assert token_call["headers"]["Authorization"] == "Basic [redacted]"
    assert token_call["client_id"] == "00101" and token_call["status"] == 200
    assert token_call["certificate"]["registered_to"] == "00101"
    assert "Sunny Solar (00101)" in token_call["certificate"]["subject"]
    assert ok["headers"]["Authorization"] == "Bearer [redacted]" and ok["status"] == 200
    assert token not in json.dumps(log)
    assert no_cert["status"] == 400 and no_cert["certificate"] is None and no_cert["query"] == "x=1"
    assert no_cert["error"] == "invalid_certificate"
    # Filters.
    assert [r["id"] for r in fresh_server.requests(status=400)] == [no_cert["id"]]
    assert [r["id"] for r in fresh_server.requests(path="*/ReadServiceStatus")] == [ok["id"], no_cert["id"]]
    assert [r["id"] for r in fresh_server.requests(method="post")] == [token_call["id"]]
    assert [r["id"] for r in fresh_server.requests(since_id=ok["id"])] == [no_cert["id"]]
    assert fresh_server.requests(client_id="00102") == []
    assert all(r["surface"] == "api" for r in fresh_server.requests(surface="api"))
    assert raw(fresh_server, "GET", "/requests", token=fresh_server.control_token,
               params={"status": "abc"}).status_code == 400
    fresh_server.clear_requests()
    assert fresh_server.requests() == []


# --- jobs and notifications ---------------------------------------------------------------------


def test_jobs_and_notifications_are_listed_and_release_makes_them_due_now(fresh_server: testing.RunningServer) -> None:
    now = fresh_server.clock.freeze().timestamp()
    database = support.database(fresh_server)
    try:
        with database.session() as db:
            tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == "00101")).scalar_one()
            db.add(AsyncJob(correlation_id="c0ffee00-0000-4000-8000-000000000001", third_party_id=tp.id,
                            request_path="/x", request_query="", status="pending", accepted_at=now, due_at=now + 15))
            db.add(Notification(third_party_id=tp.id, uri="https://127.0.0.1:9/notify", body="<BatchList/>",
                                status="pending", created_at=now, next_attempt_at=now + 300,
                                attempts=[{"at": now, "status": 500, "error": None}]))
    finally:
        database.dispose()
    [job] = fresh_server.jobs()
    assert job["client_id"] == "00101" and job["status"] == "pending"
    assert job["due_at"] == iso_z(now + 15)
    assert fresh_server.jobs(status="built") == []
    [note] = fresh_server.notifications()
    assert note["uri"] == "https://127.0.0.1:9/notify" and note["attempts"][0]["status"] == 500
    assert fresh_server.notifications(client_id="00102") == []
    released = fresh_server.release_jobs()
    assert released == {"jobs": ["c0ffee00-0000-4000-8000-000000000001"], "notifications": [note["id"]]}
    # The server's job worker may act on released work at once: due now, or already taken up.
    job = fresh_server.jobs()[0]
    assert job["due_at"] == iso_z(now) or job["status"] != "pending"
    note = fresh_server.notifications()[0]
    assert note["next_attempt_at"] == iso_z(now) or len(note["attempts"]) > 1 or note["status"] != "pending"
    second = fresh_server.release_jobs()
    assert "c0ffee00-0000-4000-8000-000000000001" not in second["jobs"]


def iso_z(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the sink -----------------------------------------------------------------------------------


def test_the_sink_records_posts_without_a_token_and_lists_them_only_with_one(
        fresh_server: testing.RunningServer) -> None:
    body = ('<?xml version="1.0" encoding="UTF-8"?><ns0:BatchList xmlns:ns0="http://naesb.org/espi">'
            "<ns0:resources>https://x/Batch/Bulk/00101?correlationID=1</ns0:resources></ns0:BatchList>")
    url = fresh_server.sink_url("sunny")
    assert url.startswith(fresh_server.portal_base_url) and url.startswith("https://")
    posted = requests.post(url, data=body.encode(), verify=fresh_server.ca_bundle, timeout=10,
                           headers={"Content-Type": "application/xml; charset=UTF-8", "X-Transaction": "t-1"})
    assert posted.status_code == 200 and posted.text == ""
    # The same sink on the API listener sees the presenting certificate (PG&E presents one, spec 3.7).
    requests.post(f"{fresh_server.api_base_url}/__sim/sink/sunny", data=b"<again/>", cert=fresh_server.cert("00101"),
                  verify=fresh_server.ca_bundle, timeout=10)
    assert raw(fresh_server, "GET", "/sink/sunny").status_code == 401
    first, second = fresh_server.sink("sunny")
    assert first["body"] == body and first["content_type"] == "application/xml; charset=UTF-8"
    assert first["headers"]["X-Transaction"] == "t-1" and first["certificate_sha256"] is None
    assert second["certificate_sha256"] and len(second["certificate_sha256"]) == 64
    assert fresh_server.sink("other") == []
    assert [p["sink"] for p in fresh_server.control("GET", "/sink")["posts"]] == ["sunny", "sunny"]
    assert raw(fresh_server, "POST", "/sink/bad name!").status_code in (400, 404)
    assert raw(fresh_server, "POST", "/sink/" + "x" * 65).status_code == 400
    assert fresh_server.control("DELETE", "/sink/sunny") == {"deleted": 2}
    assert fresh_server.sink("sunny") == []
    assert fresh_server.requests(path="/__sim/*") == [], "scaffolding never appears in the request log"


# --- direct authorizations -------------------------------------------------------------------------


def test_direct_authorization_gives_pge_token_response_and_replaces_the_previous_one(
        fresh_server: testing.RunningServer) -> None:
    first = fresh_server.control("POST", "/authorizations", json={"customer": "rivera", "client_id": "00101"})
    token = first["token"]
    assert list(token) == ["access_token", "token_type", "expires_in", "refresh_token", "scope", "resourceURI",
                           "authorizationURI", "customerResourceURI"]
    assert token["resourceURI"].endswith(f"/Subscription/{first['authorization_id']}")
    assert token["scope"].startswith("scope=FB=") and "AccountCollection=2" in token["scope"]
    assert first["code_exchanged"] is True
    feed = requests.get(token["resourceURI"] + "/UsagePoint",
                        headers={"Authorization": f"Bearer {token['access_token']}"}, cert=fresh_server.cert("00101"),
                        verify=fresh_server.ca_bundle, timeout=30)
    assert feed.status_code == 200
    usage_point = first["service_agreements"][0]["usage_point_id"]
    second = fresh_server.control("POST", "/authorizations", json={
        "customer": "rivera", "client_id": "00101", "service_agreements": [usage_point], "data_groups": ["Usage"]})
    assert second["replaced"] == [first["authorization_id"]]
    assert "AdditionalScope=Usage;" in second["scope"] and "AccountCollection=1" in second["scope"]
    revoked = requests.get(token["resourceURI"] + "/UsagePoint",
                           headers={"Authorization": f"Bearer {token['access_token']}"},
                           cert=fresh_server.cert("00101"),
                           verify=fresh_server.ca_bundle, timeout=30)
    assert revoked.status_code == 403
    code_only = fresh_server.control("POST", "/authorizations", json={"customer": "harbor", "client_id": "00101",
                                                             "exchange": False})
    assert code_only["token"] is None and code_only["authorization_code"]
    exchanged = requests.post(f"{fresh_server.api_base_url}/datacustodian/oauth/v2/token", params={
        "grant_type": "authorization_code", "code": code_only["authorization_code"],
        "redirect_uri": fresh_server.third_party("00101")["redirect_uri"]}, auth=("00101",
                                                                                  fresh_server.third_party("00101")[
            "client_secret"]), cert=fresh_server.cert("00101"), verify=fresh_server.ca_bundle, timeout=10)
    assert exchanged.status_code == 200
    assert exchanged.json()["authorizationURI"].endswith(f"/Authorization/{code_only['authorization_id']}")


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"customer": "rivera", "client_id": "00103"}, 400, "a cca registration"),
    ({"customer": "rivera", "client_id": "00104"}, 400, "not Approved"),
    ({"customer": "nobody", "client_id": "00101"}, 404, "no customer"),
    ({"customer": "rivera", "client_id": "99999"}, 404, "no third party"),
    ({"customer": "rivera", "client_id": "00101", "service_agreements": ["harbor-store"]}, 400, "has no service"),
    ({"customer": "rivera", "client_id": "00101", "data_groups": ["Weather"]}, 400, "unknown data group"),
    ({"customer": "rivera", "client_id": "00104x"}, 404, "no third party"),
    ({"customer": "rivera", "client_id": "00101", "end_date": "2020-01-01"}, 400, "end date must be in the future"),
    ({"customer": "rivera", "client_id": "00101", "end_date": "soon"}, 400, "YYYY-MM-DD"),
    ({"customer": "rivera", "client_id": "00101", "groups": ["Usage"]}, 400, "unknown field"),
    ({"client_id": "00101"}, 400, "required"),
])
def test_direct_authorization_refuses_what_consent_would_and_stores_nothing(
        fresh_server: testing.RunningServer, body: dict, status: int, message: str) -> None:
    def authorizations() -> int:
        listing = requests.get(f"{fresh_server.api_base_url}{RESOURCE}/Authorization",
                               headers={"Authorization": f"Bearer {client_token(fresh_server)}"},
                               cert=fresh_server.cert("00101"),
                               verify=fresh_server.ca_bundle, timeout=30)
        assert listing.status_code == 200
        return listing.text.count("<entry")

    before = authorizations()
    response = raw(fresh_server, "POST", "/authorizations", token=fresh_server.control_token, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error_description"]
    assert authorizations() == before


def test_authorize_drives_the_real_consent_pages(fresh_server: testing.RunningServer) -> None:
    consent = fresh_server.authorize("okafor", "00101", groups=["Usage", "Billing"])
    assert consent["via"] == "consent"
    assert "AdditionalScope=Usage_Billing;" in consent["scope"]
    token = consent["token"]
    assert token["authorizationURI"].endswith(f"/Authorization/{consent['authorization_id']}")
    portal = [(r["method"], r["path"], r["status"]) for r in fresh_server.requests(surface="portal")]
    assert portal == [("GET", "/myAuthorization", 200), ("POST", "/myAuthorization/signin", 303),
                      ("GET", "/myAuthorization", 200), ("POST", "/myAuthorization/consent", 302)]
    exchange = fresh_server.requests(path="/datacustodian/oauth/v2/token")[-1]
    assert exchange["status"] == 200 and "grant_type=authorization_code" in exchange["query"]
    with pytest.raises(testing.ControlAPIError, match="user name or password is incorrect"):
        fresh_server.authorize("okafor", "00101", password="wrong")


# --- the OpenAPI document -----------------------------------------------------------------------


def test_openapi_document_lists_exactly_the_routes_the_server_answers(fresh_server: testing.RunningServer) -> None:
    response = raw(fresh_server, "GET", "/openapi.json")  # open, like health
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": fresh_server.portal_base_url}]
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    app = create_app(load_settings({"data_dir": fresh_server.data_dir}, environ={}))  # every module's /__sim/ routes
    served, own = set(), set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("sim."):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                served.add((openapi_path(rule.rule), method))
                if app.view_functions[rule.endpoint].__module__ == "mock_custodian.api.control":
                    own.add((openapi_path(rule.rule), method))
    assert documented == served
    by_hand = {(path, method.upper()) for path, ops in doc["paths"].items() for method, op in ops.items()
               if not op.get("x-generated")}
    assert own <= by_hand, f"control routes without a hand-written operation: {sorted(own - by_hand)}"
    assert ("/__sim/faults/{fault_id}", "DELETE") in own
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))

    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            open_ = op.get("security") == []
            assert open_ == (path in ("/__sim/health", "/__sim/openapi.json") or (
                path == "/__sim/sink/{name}" and method == "post")), (path, method)
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
    kinds = schemas["FaultSpec"]["properties"]["kind"]["enum"]
    assert "drop" in kinds and "notification_lost" in kinds
