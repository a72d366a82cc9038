"""PG&E's token endpoints (spec 4.8-4.12, 5.5; checklist 47-65) and who may use what, the app in-process
(the client certificate checked as the TLS layer hands it over; under concurrency across real workers:
tests/e2e/test_customer_workers.py).

Clock-dependent tests freeze the simulated clock in the server's database and put it back afterwards.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
import requests
from lxml import etree
from sqlalchemy import select
from support import database
from support.customer_flow import (
    RESOURCE,
    TEST_TOKEN,
    TOKEN,
    Browser,
    exchange,
    frozen_now,
    resource,
    set_clock,
    start_app,
    token,
)

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.store.hashed import token_key
from mock_custodian.store.models import Authorization, AuthorizationCode, ThirdParty

CUSTOMER_KEYS = ["access_token", "token_type", "expires_in", "refresh_token", "scope", "resourceURI",
                 "authorizationURI", "customerResourceURI"]
T0 = dt.datetime(2026, 6, 1, 10, 0, tzinfo=PACIFIC)


@pytest.fixture(scope="module")
def server(customer_app: testing.RunningServer) -> testing.RunningServer:
    return customer_app


@pytest.fixture(scope="module")
def quirks(quirks_app: testing.RunningServer) -> testing.RunningServer:
    return quirks_app


@pytest.fixture(autouse=True)
def real_time_afterwards(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("server", "quirks", "xml"):
        if name in request.fixturenames:
            set_clock(request.getfixturevalue(name), None)


def _code(server: testing.RunningServer, client_id: str = "00101", username: str = "rivera", **consent) -> str:
    return Browser(server).authorize(client_id, username, **consent)["authorization_code"]


def _pair(server: testing.RunningServer, client_id: str = "00101", username: str = "rivera") -> dict:
    response = exchange(server, client_id, _code(server, client_id, username))
    assert response.status_code == 200, response.text
    return response.json()


def _cat(server: testing.RunningServer, client_id: str = "00101") -> str:
    return token(server, client_id, grant_type="client_credentials").json()["client_access_token"]


def _subscription(pair: dict) -> str:
    return "/Subscription/" + pair["resourceURI"].rsplit("/", 1)[1] + "/UsagePoint"


# --- rules common to every grant (checklist 47-50, 63) --------------------------------------------


def test_get_is_not_permitted_on_either_endpoint(server: testing.RunningServer) -> None:
    for path in (TOKEN, TEST_TOKEN):
        response = requests.get(server.api_base_url + path, params={"grant_type": "client_credentials"},
                                cert=server.cert("00101"), verify=server.ca_bundle, timeout=10)
        assert response.status_code == 405
        assert response.json() == {"error": "invalid_request", "error_description": "GET not permitted"}


def test_missing_and_unknown_grant_type(server: testing.RunningServer) -> None:
    missing = token(server, "00101")
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_request", "error_description": "Missing grant_type"}
    unknown = token(server, "00101", grant_type="password")
    assert unknown.status_code == 400 and unknown.json()["error"] == "unsupported_grant_type"


def test_missing_or_wrong_basic_credentials(server: testing.RunningServer) -> None:
    url = server.api_base_url + TOKEN + "?grant_type=client_credentials"
    for auth in (None, ("00101", "wrong-secret"), ("00111", server.third_party("00101")["client_secret"])):
        response = requests.post(url, auth=auth, cert=server.cert("00101"), verify=server.ca_bundle, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_parameters_in_the_query_a_form_body_or_a_json_body(server: testing.RunningServer) -> None:
    tp = server.third_party("00101")
    common = {"auth": (tp["client_id"], tp["client_secret"]), "cert": server.cert("00101"),
              "verify": server.ca_bundle, "timeout": 10}
    by_form = requests.post(server.api_base_url + TOKEN, data={"grant_type": "client_credentials"}, **common)
    by_json = requests.post(server.api_base_url + TOKEN, json={"grant_type": "client_credentials"}, **common)
    assert by_form.status_code == 200 and by_json.status_code == 200
    conflict = requests.post(server.api_base_url + TOKEN + "?grant_type=client_credentials",
                             data={"grant_type": "refresh_token"}, **common)
    assert conflict.status_code == 400 and conflict.json()["error"] == "invalid_request"
    code = _code(server)
    by_form = requests.post(server.api_base_url + TOKEN, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": tp["redirect_uri"]}, **common)
    assert by_form.status_code == 200 and "access_token" in by_form.json()


def test_production_refuses_a_registration_in_testing_and_the_test_endpoint_serves_it(
    server: testing.RunningServer,
) -> None:
    production = token(server, "00104", grant_type="client_credentials")
    assert production.status_code == 400 and production.json()["error"] == "unauthorized_client"
    test = token(server, "00104", TEST_TOKEN, grant_type="client_credentials")
    assert test.status_code == 200 and test.json()["expires_in"] == 3600


# --- client credentials (checklist 51-53) ---------------------------------------------------------------


def test_client_credentials_keys_in_pges_order(server: testing.RunningServer) -> None:
    response = token(server, "00101", grant_type="client_credentials")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert list(body) == ["client_access_token", "expires_in", "scope", "token_type", "refresh_token"]
    assert "access_token" not in body
    assert body["expires_in"] == 3600 and isinstance(body["expires_in"], int)
    assert body["scope"] == "3" and body["token_type"] == "Bearer"
    assert str(uuid.UUID(body["client_access_token"], version=4)) == body["client_access_token"]


def test_client_access_token_lives_3600_seconds(server: testing.RunningServer) -> None:
    set_clock(server, T0)
    cat = _cat(server)
    set_clock(server, T0.timestamp() + 3599)
    assert resource(server, "00101", "/ReadServiceStatus", cat).status_code == 200
    set_clock(server, T0.timestamp() + 3600)
    expired = resource(server, "00101", "/ReadServiceStatus", cat)
    assert expired.status_code == 403 and expired.json()["error"] == "invalid_token"


def test_client_refresh_token_mirrors_client_credentials_and_rotates(server: testing.RunningServer) -> None:
    first = token(server, "00101", grant_type="client_credentials").json()
    refreshed = token(server, "00101", grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert list(body) == ["client_access_token", "expires_in", "scope", "token_type", "refresh_token"]
    assert body["refresh_token"] != first["refresh_token"]
    assert resource(server, "00101", "/ReadServiceStatus", body["client_access_token"]).status_code == 200
    again = token(server, "00101", grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


# --- authorization code (checklist 54-57, 65) ------------------------------------------------------------


def test_code_exchange_keys_in_pges_order(server: testing.RunningServer) -> None:
    response = exchange(server, "00101", _code(server))
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == CUSTOMER_KEYS
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"].startswith("scope=FB=")
    ids = {body[k].rsplit("/", 1)[1] for k in ("resourceURI", "authorizationURI", "customerResourceURI")}
    assert len(ids) == 1
    number = ids.pop()
    assert body["resourceURI"] == f"{server.api_base_url}{RESOURCE}/Subscription/{number}"
    assert body["authorizationURI"] == f"{server.api_base_url}{RESOURCE}/Authorization/{number}"
    assert body["customerResourceURI"] == f"{server.api_base_url}{RESOURCE}/Batch/RetailCustomer/{number}"
    assert response.headers["Cache-Control"] == "no-store"


def test_missing_code_or_redirect_uri_is_invalid_request(server: testing.RunningServer) -> None:
    code = _code(server)
    assert token(server, "00101", grant_type="authorization_code",
                 redirect_uri=server.third_party("00101")["redirect_uri"]).json()["error"] == "invalid_request"
    missing_redirect = token(server, "00101", grant_type="authorization_code", code=code)
    assert missing_redirect.status_code == 400 and missing_redirect.json()["error"] == "invalid_request"
    assert exchange(server, "00101", code).status_code == 200  # the failed calls did not use it up


def test_code_lives_600_seconds(server: testing.RunningServer) -> None:
    set_clock(server, T0)
    fresh, stale = _code(server), _code(server, username="harbor")
    set_clock(server, T0.timestamp() + 599)
    assert exchange(server, "00101", fresh).status_code == 200
    set_clock(server, T0.timestamp() + 600)
    expired = exchange(server, "00101", stale)
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_code_is_single_use_and_earlier_tokens_survive(server: testing.RunningServer) -> None:
    code = _code(server)
    first = exchange(server, "00101", code)
    assert first.status_code == 200
    second = exchange(server, "00101", code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert resource(server, "00101", _subscription(first.json()), first.json()["access_token"]).status_code == 200


def test_code_is_bound_to_redirect_uri_and_client(server: testing.RunningServer) -> None:
    code = _code(server)
    wrong_redirect = exchange(server, "00101", code, redirect_uri="https://localhost:9443/pge/other")
    assert wrong_redirect.status_code == 400 and wrong_redirect.json()["error"] == "invalid_grant"
    # Third party B (Acme) presents A's code with its own credentials and redirect URI, and with A's.
    assert exchange(server, "00111", code).json()["error"] == "invalid_grant"
    assert exchange(server, "00111", code, server.third_party("00101")["redirect_uri"]).json()[
        "error"] == "invalid_grant"
    assert exchange(server, "00101", code).status_code == 200  # still A's to use


def test_codes_belong_to_their_endpoint(server: testing.RunningServer) -> None:
    code = _code(server)
    at_test = exchange(server, "00101", code, path=TEST_TOKEN)
    assert at_test.status_code == 400 and at_test.json()["error"] == "invalid_grant"
    assert exchange(server, "00101", code).status_code == 200


# --- refresh (checklist 58-61) -----------------------------------------------------------------------------


def test_refresh_rotates_and_omits_customer_resource_uri(server: testing.RunningServer) -> None:
    pair = _pair(server)
    refreshed = token(server, "00101", grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert list(body) == CUSTOMER_KEYS[:-1]
    assert body["access_token"] != pair["access_token"] and body["refresh_token"] != pair["refresh_token"]
    assert body["resourceURI"] == pair["resourceURI"] and body["scope"] == pair["scope"]
    used = token(server, "00101", grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert used.status_code == 400 and used.json()["error"] == "invalid_grant"
    # The previous access token keeps working until it expires; the new pair works too.
    assert resource(server, "00101", _subscription(pair), pair["access_token"]).status_code == 200
    assert resource(server, "00101", _subscription(pair), body["access_token"]).status_code == 200
    assert token(server, "00101", grant_type="refresh_token", refresh_token=body["refresh_token"]).status_code == 200


def test_refresh_is_refused_after_revocation_and_after_expiry(server: testing.RunningServer) -> None:
    pair = _pair(server, username="okafor")
    authorization_id = pair["authorizationURI"].rsplit("/", 1)[1]
    deleted = resource(server, "00101", f"/Authorization/{authorization_id}", _cat(server), method="DELETE")
    assert deleted.status_code == 200
    revoked = token(server, "00101", grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"
    assert resource(server, "00101", _subscription(pair), pair["access_token"]).status_code == 403

    set_clock(server, T0)
    end = (T0 + dt.timedelta(days=10)).date().isoformat()
    code = _code(server, username="harbor", duration="end_date", end_date=end)
    fixed = exchange(server, "00101", code).json()
    set_clock(server, dt.datetime.fromisoformat(end).replace(tzinfo=PACIFIC) + dt.timedelta(hours=23, minutes=59))
    still = token(server, "00101", grant_type="refresh_token", refresh_token=fixed["refresh_token"])
    assert still.status_code == 200
    set_clock(server, dt.datetime.fromisoformat(end).replace(tzinfo=PACIFIC) + dt.timedelta(days=1))
    expired = token(server, "00101", grant_type="refresh_token", refresh_token=still.json()["refresh_token"])
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_customer_refresh_token_lives_one_year(server: testing.RunningServer) -> None:
    set_clock(server, T0)
    pair = _pair(server, username="harbor")
    set_clock(server, T0.timestamp() + 31536000 - 1)
    assert token(server, "00101", grant_type="refresh_token", refresh_token=pair["refresh_token"]).status_code == 200
    set_clock(server, T0)
    other = _pair(server, username="harbor")
    set_clock(server, T0.timestamp() + 31536000)
    old = token(server, "00101", grant_type="refresh_token", refresh_token=other["refresh_token"])
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"


# --- customer access tokens on resources (checklist 62; spec 2.3, 6.8) -----------------------------------------


def test_customer_access_token_lives_3600_seconds(server: testing.RunningServer) -> None:
    set_clock(server, T0)
    pair = _pair(server, username="harbor")
    set_clock(server, T0.timestamp() + 3599)
    assert resource(server, "00101", _subscription(pair), pair["access_token"]).status_code == 200
    set_clock(server, T0.timestamp() + 3600)
    expired = resource(server, "00101", _subscription(pair), pair["access_token"])
    assert expired.status_code == 403 and expired.json()["error"] == "invalid_token"


def test_token_classes_are_not_interchangeable(server: testing.RunningServer) -> None:
    pair = _pair(server)
    cat = _cat(server)
    rat = server.third_party("00101")["registration_access_token"]
    assert resource(server, "00101", _subscription(pair), cat).status_code == 403  # CAT on the subscription tree
    assert resource(server, "00101", "/ReadServiceStatus", pair["access_token"]).status_code == 403  # AT on a CAT one
    assert resource(server, "00101", "/ReadServiceStatus", rat).status_code == 403  # RAT on a CAT one
    refresh_as_bearer = resource(server, "00101", _subscription(pair), pair["refresh_token"])
    assert refresh_as_bearer.status_code == 403
    missing = requests.get(server.api_base_url + RESOURCE + _subscription(pair), cert=server.cert("00101"),
                           verify=server.ca_bundle, timeout=10)
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_token"


def test_third_party_a_never_uses_third_party_bs_tokens(server: testing.RunningServer) -> None:
    sunny = _pair(server, "00101", "rivera")
    acme = _pair(server, "00111", "harbor")
    # B's token over A's certificate, and A's token on B's subscription.
    assert resource(server, "00101", _subscription(acme), acme["access_token"]).status_code == 403
    assert resource(server, "00111", _subscription(sunny), acme["access_token"]).status_code == 403
    assert resource(server, "00111", _subscription(acme), acme["access_token"]).status_code == 200
    # B cannot refresh A's refresh token, not even over A's certificate.
    assert token(server, "00111", grant_type="refresh_token",
                 refresh_token=sunny["refresh_token"]).json()["error"] == "invalid_grant"
    assert token(server, "00101", grant_type="refresh_token", refresh_token=acme["refresh_token"],
                 cert_of="00101").json()["error"] == "invalid_grant"
    # A's token refreshed with A's credentials over B's certificate: the certificate check says no.
    assert token(server, "00101", grant_type="refresh_token", refresh_token=sunny["refresh_token"],
                 cert_of="00111").status_code == 401
    assert token(server, "00101", grant_type="refresh_token", refresh_token=sunny["refresh_token"]).status_code == 200


# --- the OAuth Test harness's code at the test endpoint (spec 5.5) -------------------------------------------


def _harness_code(server: testing.RunningServer, client_id: str, redirect_uri: str) -> str:
    """What the test authorize endpoint leaves behind (its contract): a test code with no authorization."""
    code = str(uuid.uuid4())
    with database(server).session() as db:
        tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one()
        db.add(AuthorizationCode(code=token_key(code), third_party_id=tp.id, authorization_id=None,
                                 redirect_uri=redirect_uri,
                                 endpoint="test", issued_at=frozen_now(server) if _frozen(server) else
                                 dt.datetime.now(dt.UTC).timestamp()))
    return code


def _frozen(server: testing.RunningServer) -> bool:
    return database(server).read_clock_state().frozen_at is not None


def test_harness_code_gives_the_test_response_and_the_oauth_test_milestone(server: testing.RunningServer) -> None:
    redirect = server.third_party("00104")["redirect_uri"]
    code = _harness_code(server, "00104", redirect)
    at_production = exchange(server, "00101", _harness_code(server, "00101", server.third_party("00101")[
        "redirect_uri"]))
    assert at_production.status_code == 400 and at_production.json()["error"] == "invalid_grant"
    response = exchange(server, "00104", code, redirect, path=TEST_TOKEN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == CUSTOMER_KEYS[:-1]
    assert body["resourceURI"] == f"{server.api_base_url}{RESOURCE}/Batch/Subscription/test"
    assert body["authorizationURI"] == f"{server.api_base_url}{RESOURCE}/Authorization/test"
    assert body["expires_in"] == 3600 and body["scope"].startswith("scope=FB=")
    with database(server).session() as db:
        tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == "00104")).scalar_one()
        assert "OAuth Test" in tp.milestones
    again = exchange(server, "00104", code, redirect, path=TEST_TOKEN)
    assert again.json()["error"] == "invalid_grant"
    # Harness tokens are refused on data resources; the harness refresh token works at the test endpoint only.
    assert resource(server, "00104", "/Subscription/4095250/UsagePoint", body["access_token"]).status_code == 403
    assert token(server, "00104", grant_type="refresh_token", refresh_token=body["refresh_token"],
                 ).json()["error"] == "unauthorized_client"
    refreshed = token(server, "00104", TEST_TOKEN, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert refreshed.status_code == 200 and refreshed.json()["resourceURI"].endswith("/Batch/Subscription/test")


# --- quirk settings (checklist 53, 59, 64, 65) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def xml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    running = start_app(tmp_path_factory.mktemp("token-xml"), {"token_format": "xml"})
    try:
        yield running
    finally:
        running.stop()


def _xml(response: requests.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    assert root.tag == "{https://api.pge.com/datacustodian/oauth/v2/token}Response"
    return [(etree.QName(child).localname, child.text) for child in root]


def test_xml_token_format(xml: testing.RunningServer) -> None:
    client = _xml(token(xml, "00101", grant_type="client_credentials"))
    assert [k for k, _ in client] == ["client_access_token", "expires_in", "scope", "token_type", "refresh_token"]
    pair = _xml(exchange(xml, "00101", _code(xml)))
    assert [k for k, _ in pair] == CUSTOMER_KEYS
    refreshed = _xml(token(xml, "00101", grant_type="refresh_token", refresh_token=dict(pair)["refresh_token"]))
    assert [k for k, _ in refreshed] == CUSTOMER_KEYS[:-1]
    # A client that parses XML gets its errors in XML too (issue 20), on either spelling of the path.
    for path in ("/datacustodian/oauth/v2/token", "/datacustodian/oauth/v2/token/"):
        tp = xml.third_party("00101")
        refused = requests.post(f"{xml.api_base_url}{path}", params={"grant_type": "password"},
                                auth=(tp["client_id"], tp["client_secret"]), cert=xml.cert("00101"),
                                verify=xml.ca_bundle, timeout=10)
        assert refused.status_code == 400
        assert refused.headers["Content-Type"].startswith("application/xml")
        root = etree.fromstring(refused.content)
        assert root.tag == "{https://api.pge.com/datacustodian/oauth/v2/token}Response"
        assert [(etree.QName(c).localname, c.text) for c in root][0] == ("error", "unsupported_grant_type")


def test_quirk_settings(quirks: testing.RunningServer) -> None:
    client = token(quirks, "00101", grant_type="client_credentials").json()
    assert client["expires_in"] == 300
    pair = exchange(quirks, "00101", _code(quirks)).json()
    assert list(pair) == CUSTOMER_KEYS
    assert pair["scope"].startswith("FB=1_3_8")  # token_scope_prefix=false
    assert pair["resourceURI"].endswith("/Batch/Subscription/" + pair["authorizationURI"].rsplit("/", 1)[1])
    refreshed = token(quirks, "00101", grant_type="refresh_token", refresh_token=pair["refresh_token"]).json()
    assert list(refreshed) == CUSTOMER_KEYS  # customerResourceURI included on request
    # client_token_ttl=300 is enforced, not only reported.
    set_clock(quirks, T0)
    cat = token(quirks, "00101", grant_type="client_credentials").json()["client_access_token"]
    set_clock(quirks, T0.timestamp() + 299)
    assert resource(quirks, "00101", "/ReadServiceStatus", cat).status_code == 200
    set_clock(quirks, T0.timestamp() + 300)
    assert resource(quirks, "00101", "/ReadServiceStatus", cat).status_code == 403


def test_authorization_rows_back_the_token_uris(server: testing.RunningServer) -> None:
    pair = _pair(server, username="okafor")
    with database(server).session() as db:
        row = db.get(Authorization, int(pair["authorizationURI"].rsplit("/", 1)[1]))
        assert row.kind == "customer" and row.third_party.client_id == "00101"
        assert row.customer.username == "okafor"
