"""Registration and the offline rehearsal of PG&E's registration tests (spec 5; checklist 17, 66-84).

A scripted third party (real HTTPS both ways, its own site for the portal and redirect URIs) registers
through the portal's JSON API, passes every test to Approved, and then commits each mistake the
rehearsal must diagnose; every run checks the exact reason the mock gives for that step.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import support
from lxml import etree
from support import assert_valid_espi, inprocess
from support.cert_factory import leaf, pem, self_signed, sha1_leaf
from support.scripted_third_party import RESOURCE, TEST_AUTHORIZE, TEST_TOKEN, Mistakes, ScriptedThirdParty

from mock_custodian import pki as pkimod
from mock_custodian import testing
from mock_custodian.clock import ClockState

ESPI = "{http://naesb.org/espi}"
APPINFO_ORDER = [
    "dataCustodianId", "dataCustodianApplicationStatus", "thirdPartyApplicationDescription",
    "thirdPartyApplicationType", "thirdPartyPhone", "authorizationServerUri", "thirdPartyNotifyUri",
    "authorizationServerAuthorizationEndpoint", "authorizationServerTokenEndpoint", "dataCustodianBulkRequestURI",
    "dataCustodianResourceEndpoint", "thirdPartyScopeSelectionScreenURI", "thirdPartyUserPortalScreenURI",
    "client_secret", "client_name", "redirect_uri", "client_id", "software_id", "software_version",
    "client_id_issued_at", "client_secret_expires_at", "contacts", "token_endpoint_auth_method", "scope",
    "grant_types", "grant_types", "grant_types", "response_types", "registration_client_uri",
    "registration_access_token", "dataCustodianScopeSelectionScreenURI",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """This module registers third parties and moves the clock: its own server."""
    running = inprocess.start(tmp_path_factory.mktemp("registration"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def third_party(server: testing.RunningServer, request: pytest.FixtureRequest) -> Iterator[ScriptedThirdParty]:
    scripted = ScriptedThirdParty(server, f"TP {request.node.name[5:40]}")
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def accepted(third_party: ScriptedThirdParty) -> ScriptedThirdParty:
    third_party.register_and_confirm()
    assert third_party.credentials["status"] == "accepted"
    return third_party


def _outbox(server: testing.RunningServer, to: str) -> list[dict]:
    response = requests.get(f"{server.portal_base_url}/portal/api/outbox", params={"to": to},
                            verify=server.ca_bundle, timeout=10)
    return response.json()["emails"]


def _move_clock(server: testing.RunningServer, seconds: float) -> ClockState:
    database = support.database(server)
    before = database.read_clock_state()
    database.write_clock_state(ClockState(offset_s=before.offset_s + seconds, frozen_at=before.frozen_at))
    database.dispose()
    return before


# ------------------------------------------------------------------------------------------------ the form
def test_each_failing_field_gets_its_message_and_nothing_is_stored(third_party: ScriptedThirdParty) -> None:
    response = third_party.submit(tax_id="12-3456789", display_name="Bad: name", redirect_uri="",
                                  third_party_portal_uri=None, notification_uri="http://insecure.example/n",
                                  business_contact={"name": "B", "email": "not-an-email", "phone": "1"})
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields == {
        "display_name": "must not contain '=' or ':'",
        "tax_id": "must be exactly 9 digits (a U.S. Employer Identification Number, no dash)",
        "business_contact_email": "is not a valid e-mail address",
        "third_party_portal_uri": "is required for Standard and Energy Efficiency Finance users",
        "redirect_uri": "is required for Standard and Energy Efficiency Finance users",
        "notification_uri": "must be an https:// URL",
    }
    assert response.json()["error"] == "invalid_request"
    # Nothing stored: the same registration, corrected, goes through and is the only e-mail sent.
    assert third_party.submit().status_code == 201
    assert len(_outbox(third_party.server, f"{third_party.username}@biz.example")) == 1


def test_notification_uri_is_required_for_every_user_type_but_oauth_uris_only_for_standard_and_eef(
    third_party: ScriptedThirdParty,
) -> None:
    response = third_party.submit(user_type="Community Choice Aggregator", notification_uri="",
                                  redirect_uri=None, third_party_portal_uri=None)
    assert response.status_code == 400
    assert response.json()["fields"] == {"notification_uri": "is required"}
    response = third_party.submit(user_type="Energy Efficiency Finance", redirect_uri=None)
    assert response.json()["fields"] == {
        "redirect_uri": "is required for Standard and Energy Efficiency Finance users"}


def test_display_name_is_unique_but_a_tax_id_may_hold_several_registrations(server: testing.RunningServer) -> None:
    first = ScriptedThirdParty(server, "Unique Name Co")
    twin = ScriptedThirdParty(server, "Unique Name Co")
    try:
        assert first.submit().status_code == 201
        refused = twin.submit(portal_username="twin-user")
        assert refused.status_code == 400
        assert refused.json()["fields"]["display_name"] == (
            "'Unique Name Co' is already the display name of another registration; display names are unique")
        accepted = twin.submit(portal_username="twin-user", display_name="Unique Name Co Two")
        assert accepted.status_code == 201, accepted.text
    finally:
        first.stop()
        twin.stop()


@pytest.mark.parametrize("flaw", ["self_signed", "rsa_1024", "sha1"])
def test_flawed_certificates_are_refused_at_registration(third_party: ScriptedThirdParty, flaw: str) -> None:
    dev = third_party.dev
    certificate = {"self_signed": lambda: self_signed(),
                   "rsa_1024": lambda: leaf(dev, key=pkimod.new_key(1024)),
                   "sha1": lambda: sha1_leaf(dev)}[flaw]()
    response = third_party.submit(certificate=pem(certificate))
    assert response.status_code == 400
    expected = {
        "self_signed": "self-signed certificates are refused; use a certificate issued by a CA",
        "rsa_1024": "the certificate's RSA key is 1024 bits; PG&E requires at least 2048 bits",
        "sha1": "the certificate is signed with SHA1; PG&E requires a SHA-2 signature (SHA-256 or stronger)",
    }[flaw]
    assert response.json()["fields"]["certificate"].startswith(expected)


def test_a_csr_can_stand_in_for_the_certificate(third_party: ScriptedThirdParty) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = pkimod.new_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-client")])).sign(key, hashes.SHA256()))
    response = third_party.submit(certificate=None, csr=csr.public_bytes(serialization.Encoding.PEM).decode())
    assert response.status_code == 201, response.text
    chain = x509.load_pem_x509_certificates(response.json()["issued_certificate_chain"].encode())
    assert chain[0].public_key().public_numbers() == key.public_key().public_numbers()
    assert chain[1].subject.rfc4514_string().startswith(f"CN={pkimod.INTERMEDIATE_NAME}")


# ------------------------------------------------------------------------------------------------ lifecycle
def test_confirmation_link_goes_to_the_business_contact_and_acceptance_shows_the_credentials(
    third_party: ScriptedThirdParty,
) -> None:
    assert third_party.submit().status_code == 201
    before = third_party.portal("GET", "/portal/api/registration").json()
    assert before["status"] == "submitted"
    assert "client_secret" not in before and "client_id" not in before
    download = third_party.portal("GET", "/portal/api/registration/pge-certificate")
    assert download.status_code == 409  # only after acceptance
    emails = _outbox(third_party.server, f"{third_party.username}@biz.example")
    assert [e["subject"] for e in emails] == ["Share My Data: confirm your Third Party registration"]
    assert _outbox(third_party.server, f"tech-{third_party.username}@biz.example") == []

    assert requests.get(third_party.confirmation_link(), verify=third_party.server.ca_bundle).status_code == 200
    view = third_party.refresh_credentials()
    assert view["status"] == "accepted"  # auto_accept
    assert len(view["client_id"]) == 5 and view["client_id"].isdigit()
    assert view["client_secret"] and view["registration_access_token"]
    rows = {row["milestone"]: row["completed_at"] for row in view["milestones"]}
    assert rows["Accepted"] is not None and rows["API Connectivity Test: Completed"] is None
    assert "Share My Data: registration accepted, testing may begin" in [
        e["subject"] for e in _outbox(third_party.server, f"{third_party.username}@biz.example")]
    pge_chain = third_party.portal("GET", "/portal/api/registration/pge-certificate")
    assert pge_chain.status_code == 200
    server_chain = Path(third_party.server.data_dir / "certs" / "server" / "chain.pem").read_text()
    assert pge_chain.text.startswith(server_chain)
    # Using the link again is harmless.
    assert requests.get(third_party.confirmation_link(), verify=third_party.server.ca_bundle).status_code == 200


def test_portal_api_needs_the_registrations_own_sign_in(accepted: ScriptedThirdParty) -> None:
    assert accepted.portal("GET", "/portal/api/registration", auth=None).status_code == 401
    assert accepted.portal("GET", "/portal/api/registration", auth=(accepted.username, "wrong")).status_code == 401


def test_edits_are_validated_and_applied(accepted: ScriptedThirdParty) -> None:
    refused = accepted.portal("PATCH", "/portal/api/registration", json={"notification_uri": "http://plain.example"})
    assert refused.status_code == 400
    assert refused.json()["fields"] == {"notification_uri": "must be an https:// URL"}
    refused = accepted.portal("PATCH", "/portal/api/registration", json={"tax_id": "111111111"})
    assert refused.json()["fields"] == {"tax_id": "cannot be edited"}
    changed = accepted.portal("PATCH", "/portal/api/registration", json={
        "notification_uri": f"{accepted.base}/notify2", "notify_daily": True, "history_months": 48,
        "data_groups": ["Usage", "ProgramEnrollment"], "visibility": False})
    assert changed.status_code == 200, changed.text
    view = changed.json()
    assert (view["notification_uri"], view["notify_daily"], view["history_months"], view["data_groups"],
            view["visibility"]) == (f"{accepted.base}/notify2", True, 48, ["Usage", "ProgramEnrollment"], False)


# ------------------------------------------------------------------------------------------------ the tests
def test_scripted_third_party_passes_every_test_to_approved(accepted: ScriptedThirdParty) -> None:
    tp = accepted
    # Before approval the production token endpoint refuses the registration (spec 4.8).
    production = tp.api("POST", "/datacustodian/oauth/v2/token", params={"grant_type": "client_credentials"},
                        auth=(tp.client_id, tp.credentials["client_secret"]))
    assert production.status_code == 400
    assert production.json()["error"] == "unauthorized_client"

    tp.connectivity_test()
    status = {r["milestone"]: r["completed_at"] for r in tp.refresh_credentials()["milestones"]}
    assert status["API Connectivity Test: Completed"] is not None
    token = tp.client_token()
    bulk = tp.bearer(f"Batch/Bulk/{tp.client_id}", token)
    assert bulk.status_code == 403  # production data waits for approval
    # The ApplicationInformationID is found in R/Authorization (spec 5.6 step 1).
    listing = tp.bearer("Authorization", token)
    assert listing.status_code == 200
    assert f"/ApplicationInformation/{tp.credentials['application_information_id']}<" in listing.text

    appinfo = tp.application_information()
    assert appinfo.status_code == 200, appinfo.text
    content = etree.fromstring(appinfo.content).find("{http://www.w3.org/2005/Atom}content")
    info = content[0]
    assert [etree.QName(child).localname for child in info] == APPINFO_ORDER
    values = {etree.QName(child).localname: child.text for child in info}
    assert values["dataCustodianApplicationStatus"] == "1"
    api, portal = tp.server.api_base_url, tp.server.portal_base_url
    assert values["authorizationServerUri"] == api
    assert values["authorizationServerTokenEndpoint"] == f"{api}/datacustodian/oauth/v2/token"
    assert values["authorizationServerAuthorizationEndpoint"] == f"{portal}/myAuthorization"
    assert values["dataCustodianScopeSelectionScreenURI"] == f"{portal}/myAuthorization/?clientId={tp.client_id}"
    assert values["dataCustodianBulkRequestURI"] == f"{api}{RESOURCE}/Batch/Bulk/{tp.client_id}"
    assert values["registration_client_uri"] == (
        f"{api}{RESOURCE}/ApplicationInformation/{tp.credentials['application_information_id']}")
    assert values["client_id"] == tp.client_id and values["client_secret"] == tp.credentials["client_secret"]
    assert values["registration_access_token"] == tp.credentials["registration_access_token"]
    assert values["contacts"] == f"{tp.username}@biz.example"
    assert values["scope"].endswith(f";BR={tp.client_id};dataCustodianId=PGE")
    assert len(values["client_id_issued_at"]) == 13  # milliseconds (appinfo_issued_at_unit)
    assert tp.refresh_credentials()["status"] == "accepted"  # the OAuth Test is still missing

    landing = tp.oauth_test_without_browser()
    assert landing.status_code == 200 and landing.text == "exchange answered 200"
    start_query = tp.starts[-1]
    assert start_query == {"scope": ["xxx"], "ThirdPartyID": ["PGE"]}
    assert set(tp.callbacks[-1]) == {"authorization_code", "code", "state"}  # redirect_code_param=both
    exchange = tp.exchanges[-1].json()
    assert exchange["resourceURI"].endswith("/Batch/Subscription/test")

    view = tp.refresh_credentials()
    assert view["status"] == "approved"
    assert all(row["completed_at"] for row in view["milestones"])
    again = tp.application_information()
    values = {etree.QName(c).localname: c.text
              for c in etree.fromstring(again.content).find("{http://www.w3.org/2005/Atom}content")[0]}
    assert values["dataCustodianApplicationStatus"] == "2"
    # Approved: the production endpoint now serves it.
    assert tp.client_token("/datacustodian/oauth/v2/token")
    assert "Share My Data: testing complete, registration approved" in [
        e["subject"] for e in _outbox(tp.server, f"{tp.username}@biz.example")]

    report = tp.rehearsal()
    assert {t["name"]: t["status"] for t in report["tests"]} == {
        "API Connectivity Test": "completed", "OAuth Test": "completed", "Application Information": "completed"}
    steps = {s["key"]: s["status"] for t in report["tests"] for s in t["steps"]}
    assert steps == {"test_token": "passed", "read_service_status": "passed", "download_sample_data": "passed",
                     "start": "passed", "authorize": "passed", "code_exchange": "passed", "find_id": "passed",
                     "application_information": "passed"}
    listed = report["other_requests"]
    assert any(a["path"] == "/datacustodian/oauth/v2/token" and a["status"] == 400 for a in listed)


def test_application_information_and_the_sample_feed_validate(accepted: ScriptedThirdParty, tmp_path: Path) -> None:
    token = accepted.client_token()
    sample = accepted.bearer("DownloadSampleData", token)
    again = accepted.bearer("DownloadSampleData", token)
    assert sample.headers["Content-Type"].startswith("application/atom+xml")
    assert sample.content == again.content  # a fixed file
    appinfo = accepted.application_information()
    assert_valid_espi(sample.content, appinfo.content)


def test_application_information_refusals(accepted: ScriptedThirdParty, server: testing.RunningServer) -> None:
    tp = accepted
    own_id = tp.credentials["application_information_id"]
    basic = tp.api("GET", f"{RESOURCE}/ApplicationInformation/{own_id}",
                   auth=(tp.client_id, tp.credentials["client_secret"]))
    assert basic.status_code == 401
    assert basic.json()["error"] == "invalid_token"
    with_cat = tp.application_information(tp.client_token())
    assert with_cat.status_code == 403
    step = tp.step("Application Information", "application_information")
    assert step["status"] == "failed"
    assert "not the client access token" in step["last_attempt"]["reason"]
    other = server.third_party("00101")["application_information_id"]
    foreign = tp.bearer(f"ApplicationInformation/{other}", tp.credentials["registration_access_token"])
    assert foreign.status_code == 403
    assert tp.step("Application Information", "application_information")["last_attempt"]["reason"] == (
        f"ApplicationInformation {other} belongs to another client; yours is {own_id}")
    unknown = tp.bearer("ApplicationInformation/999999", tp.credentials["registration_access_token"])
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "not_found"}


# ------------------------------------------------------------------------------------------------ mistakes
def _token_reason(tp: ScriptedThirdParty) -> str:
    step = tp.step("API Connectivity Test", "test_token")
    assert step["status"] == "failed"
    return step["last_attempt"]["reason"]


def test_mistake_no_client_certificate(accepted: ScriptedThirdParty) -> None:
    response = accepted.api("POST", TEST_TOKEN, cert=None, params={"grant_type": "client_credentials"},
                            auth=(accepted.client_id, accepted.credentials["client_secret"]))
    assert response.status_code == 400 and response.text == "Invalid Certificate"
    step = accepted.step("API Connectivity Test", "test_token")
    assert step["last_attempt"]["certificate"] == "no client certificate"
    assert _token_reason(accepted).startswith("no client certificate was presented; configure your HTTP client")


def test_mistake_a_certificate_that_is_not_the_registered_one(accepted: ScriptedThirdParty, tmp_path: Path) -> None:
    other = accepted.dev.issue(f"{accepted.name} other")
    response = accepted.api("POST", TEST_TOKEN, cert=(str(other.chain), str(other.key)),
                            params={"grant_type": "client_credentials"},
                            auth=(accepted.client_id, accepted.credentials["client_secret"]))
    assert response.status_code == 400
    reason = _token_reason(accepted)
    assert "chains to a trusted CA but is not registered to any client" in reason
    assert "matching is by SHA-256 fingerprint" in reason
    # The same mistake on a bearer call is attributed through the token.
    token = accepted.client_token()
    assert accepted.bearer("ReadServiceStatus", token, cert=(str(other.chain), str(other.key))).status_code == 400
    step = accepted.step("API Connectivity Test", "read_service_status")
    assert "not registered to any client" in step["last_failure"]["reason"]


def test_mistake_the_chain_misses_its_intermediate(accepted: ScriptedThirdParty) -> None:
    files = accepted.client_files
    response = accepted.api("POST", TEST_TOKEN, cert=(str(files.certificate), str(files.key)),
                            params={"grant_type": "client_credentials"},
                            auth=(accepted.client_id, accepted.credentials["client_secret"]))
    assert response.status_code == 400
    step = accepted.step("API Connectivity Test", "test_token")
    assert step["last_attempt"]["certificate"].startswith("your registered certificate")
    assert _token_reason(accepted).startswith(
        f"the certificate was sent without its intermediate: its issuer CN={pkimod.INTERMEDIATE_NAME}")


def test_mistake_malformed_or_wrong_basic_header(accepted: ScriptedThirdParty) -> None:
    url_params = {"grant_type": "client_credentials"}
    response = accepted.api("POST", TEST_TOKEN, params=url_params, headers={"Authorization": "Basic !!not-base64!!"})
    assert response.status_code == 401 and response.json() == {"error": "invalid_client"}
    assert _token_reason(accepted) == (
        "the Basic value is not valid base64; encode client_id:client_secret with standard base64")
    accepted.api("POST", TEST_TOKEN, params=url_params, headers={"Authorization": f"Bearer {accepted.client_id}"})
    assert _token_reason(accepted).startswith("the Authorization header uses the 'Bearer' scheme")
    accepted.api("POST", TEST_TOKEN, params=url_params, auth=(accepted.client_id, "not-the-secret"))
    assert _token_reason(accepted) == (
        f"the Basic header's client_secret is not client {accepted.client_id}'s client_secret")


def test_mistake_grant_type_missing_or_where_pge_does_not_read_it(accepted: ScriptedThirdParty) -> None:
    auth = (accepted.client_id, accepted.credentials["client_secret"])
    response = accepted.api("POST", TEST_TOKEN, auth=auth)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "Missing grant_type"}
    assert _token_reason(accepted).startswith("grant_type is missing: send grant_type=client_credentials")
    response = accepted.api("POST", TEST_TOKEN, auth=auth, files={"grant_type": (None, "client_credentials")})
    assert response.status_code == 400
    assert _token_reason(accepted).startswith(
        "grant_type was sent in a multipart/form-data body, which PG&E does not read")


def test_mistake_client_credentials_in_the_body(accepted: ScriptedThirdParty) -> None:
    secret = accepted.credentials["client_secret"]
    response = accepted.api("POST", TEST_TOKEN, data={"grant_type": "client_credentials",
                                                      "client_id": accepted.client_id, "client_secret": secret})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert _token_reason(accepted) == (
        "no Authorization header; client_id in the form body, client_secret in the form body, but PG&E reads "
        "client credentials only from an HTTP Basic header: Authorization: Basic base64(client_id:client_secret)")
    attempt = accepted.step("API Connectivity Test", "test_token")["last_attempt"]
    assert attempt["parameters"]["form"]["client_secret"] == secret[:8] + "..."  # never logged whole
    response = accepted.api("POST", TEST_TOKEN, auth=(accepted.client_id, secret),
                            data={"grant_type": "client_credentials", "client_secret": secret})
    assert response.status_code == 401
    assert _token_reason(accepted).startswith("client_secret was sent in the form body; PG&E takes client credentials "
                                              "only in the HTTP Basic header")


def test_mistake_wrong_redirect_uri(accepted: ScriptedThirdParty) -> None:
    accepted.mistakes = Mistakes(authorize_redirect_uri=accepted.redirect_uri.upper())
    answer = accepted.oauth_test_without_browser()
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_request", "error_description": "redirect_uri is invalid"}
    step = accepted.step("OAuth Test", "authorize")
    assert step["status"] == "failed"
    assert step["last_attempt"]["reason"] == (
        f"redirect_uri {accepted.redirect_uri.upper()!r} does not equal the registered Redirect URI "
        f"{accepted.redirect_uri!r} (exact, case-sensitive comparison after percent-decoding)")
    assert accepted.step("OAuth Test", "start")["status"] == "passed"


def test_test_authorize_parameter_errors_are_json_400s(accepted: ScriptedThirdParty) -> None:
    api = accepted.server.api_base_url
    base = {"client_id": accepted.client_id, "redirect_uri": accepted.redirect_uri, "response_type": "code"}
    cases = [({**base, "client_id": ""}, "client_id is empty"),
             ({**base, "client_id": "99999"}, "client_id is invalid"),
             ({**base, "redirect_uri": ""}, "redirect_uri is empty"),
             ({**base, "response_type": "token"}, "response_type is invalid")]
    for params, description in cases:
        response = requests.get(f"{api}{TEST_AUTHORIZE}", params=params, verify=accepted.server.ca_bundle,
                                allow_redirects=False, timeout=10)  # no client certificate: a browser's request
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_request", "error_description": description}
    ok = requests.get(f"{api}{TEST_AUTHORIZE}", params=base, verify=accepted.server.ca_bundle,
                      allow_redirects=False, timeout=10)
    assert ok.status_code == 302
    assert ok.headers["Location"].startswith(f"{accepted.redirect_uri}?authorization_code=")
    assert "state=" not in ok.headers["Location"] and "scope=" not in ok.headers["Location"]


def test_mistake_code_exchanged_twice(accepted: ScriptedThirdParty) -> None:
    accepted.mistakes = Mistakes(exchange_twice=True)
    accepted.oauth_test_without_browser()
    assert [r.status_code for r in accepted.exchanges] == [200, 400]
    step = accepted.step("OAuth Test", "code_exchange")
    assert step["status"] == "passed"  # the first exchange passed the test
    assert step["last_attempt"]["reason"] == "The authorization code has already been used"


def test_mistake_code_exchanged_after_600_seconds(accepted: ScriptedThirdParty, server: testing.RunningServer) -> None:
    start = accepted.portal("GET", "/portal/oauth-test/start", allow_redirects=False)
    hop = requests.get(start.headers["Location"], verify=server.ca_bundle, allow_redirects=False)
    authorize = requests.get(hop.headers["Location"], verify=server.ca_bundle, allow_redirects=False)
    code = authorize.headers["Location"].split("authorization_code=")[1].split("&")[0]
    before = _move_clock(server, 601)
    try:
        late = accepted.exchange(code)
    finally:
        support.database(server).write_clock_state(before)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    step = accepted.step("OAuth Test", "code_exchange")
    assert (step["status"], step["last_attempt"]["reason"]) == ("failed", "The authorization code has expired")


def test_mistake_bearer_token_of_the_wrong_class(accepted: ScriptedThirdParty) -> None:
    rat = accepted.credentials["registration_access_token"]
    assert accepted.bearer("ReadServiceStatus", rat).status_code == 403
    step = accepted.step("API Connectivity Test", "read_service_status")
    assert step["last_attempt"]["reason"] == (
        "A registration access token cannot be used here; this resource takes a client access token")
    assert step["last_attempt"]["claimed_client_id"] == accepted.client_id
    accepted.mistakes = Mistakes()
    accepted.oauth_test_without_browser()
    harness_token = accepted.exchanges[-1].json()["access_token"]
    assert accepted.bearer("DownloadSampleData", harness_token).status_code == 403
    step = accepted.step("API Connectivity Test", "download_sample_data")
    assert step["last_attempt"]["reason"] == (
        "A customer access token cannot be used here; this resource takes a client access token")


def test_rehearsal_page_shows_the_steps_and_reasons(accepted: ScriptedThirdParty) -> None:
    accepted.api("POST", TEST_TOKEN, auth=(accepted.client_id, accepted.credentials["client_secret"]))
    session = requests.Session()  # a browser-like session: sign in, then the cookie
    ca = accepted.server.ca_bundle
    form = session.get(f"{accepted.server.portal_base_url}/portal", verify=ca)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    signed_in = session.post(f"{accepted.server.portal_base_url}/portal/login", verify=ca,
                             data={"username": accepted.username, "password": accepted.password, "csrf_token": token})
    assert signed_in.status_code == 200 and "Manage Registration" in signed_in.text
    page = session.get(f"{accepted.server.portal_base_url}/portal/registration/tests", verify=ca)
    assert page.status_code == 200
    assert "grant_type is missing: send grant_type=client_credentials" in page.text
    assert 'data-step="test_token" data-status="failed"' in page.text
    assert 'data-step="application_information" data-status="not_tried"' in page.text


def test_cli_registers_updates_and_reads_the_outbox(server: testing.RunningServer, tmp_path: Path) -> None:
    dev = pkimod.DevPKI(server.data_dir / "certs")
    files = dev.issue("cli self access")
    spec = {"user_type": "Self-Access User", "legal_name": "Cli Self", "display_name": "Cli Self Access",
            "tax_id": "987654321", "business_contact": {"name": "Cy", "email": "cy@self.example", "phone": "1"},
            "technical_contact": {"name": "Cy", "email": "cy@self.example", "phone": "1"},
            "portal_username": "cli-self", "portal_password": "cli-self-pw", "security_question": "q",
            "security_answer": "a", "description": "own data", "phone": "1", "history_months": 24,
            "notification_uri": "https://127.0.0.1:9/self/notify"}
    spec_file = tmp_path / "registration.yaml"
    spec_file.write_text(json.dumps(spec))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mock_custodian", *args, "--data-dir", str(server.data_dir)],
                              capture_output=True, text=True, env=server.env, timeout=60)

    done = cli("third-party", "register", "--from-file", str(spec_file), "--certificate", str(files.certificate),
               "--accept-terms", "--confirm", "--json")
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["status"] == "accepted" and view["required_tests"] == ["API Connectivity Test"]
    refused = cli("third-party", "update", "cli-self", "--notification-uri", "http://nope")
    assert refused.returncode == 2
    assert "Notification URI: must be an https:// URL" in refused.stderr
    updated = cli("third-party", "update", view["client_id"], "--notification-uri", "https://127.0.0.1:9/self/n2",
                  "--json")
    assert updated.returncode == 0, updated.stderr
    # The running server sees the change at once (state lives in the database).
    over_http = requests.get(f"{server.portal_base_url}/portal/api/registration", auth=("cli-self", "cli-self-pw"),
                             verify=server.ca_bundle).json()
    assert over_http["notification_uri"] == "https://127.0.0.1:9/self/n2"
    outbox = cli("outbox", "--to", "cy@self.example", "--json")
    assert [e["subject"] for e in json.loads(outbox.stdout)] == [
        "Share My Data: registration accepted, testing may begin",
        "Share My Data: confirm your Third Party registration"]
    # A Self-Access registration is approved after the connectivity test alone (checklist 83).
    cert = (str(files.chain), str(files.key))
    token = requests.post(f"{server.api_base_url}{TEST_TOKEN}", params={"grant_type": "client_credentials"},
                          auth=(view["client_id"], view["client_secret"]), cert=cert, verify=server.ca_bundle)
    cat = token.json()["client_access_token"]
    sample = requests.get(f"{server.api_base_url}{RESOURCE}/DownloadSampleData", cert=cert, verify=server.ca_bundle,
                          headers={"Authorization": f"Bearer {cat}"})
    assert sample.status_code == 200
    shown = cli("third-party", "show", "cli-self", "--json")
    assert json.loads(shown.stdout)["status"] == "approved"


def test_another_registrations_requests_are_not_shown(accepted: ScriptedThirdParty, server: testing.RunningServer,
                                                      tmp_path: Path) -> None:
    demo = server.third_party("00101")
    requests.post(f"{server.api_base_url}{TEST_TOKEN}", auth=("00101", demo["client_secret"]),
                  cert=server.cert("00101"), verify=server.ca_bundle)  # a request without grant_type, by 00101
    report = accepted.rehearsal()
    seen = [a for t in report["tests"] for s in t["steps"] for a in s["attempts"]] + report["other_requests"]
    assert all(a["claimed_client_id"] in (None, accepted.client_id) for a in seen)


def test_an_authorize_request_without_client_id_after_start_is_shown_to_who_pressed_start(
    accepted: ScriptedThirdParty,
) -> None:
    start = accepted.portal("GET", "/portal/oauth-test/start", allow_redirects=False)
    assert start.status_code == 302
    anonymous = requests.get(f"{accepted.server.api_base_url}{TEST_AUTHORIZE}",
                             params={"redirect_uri": accepted.redirect_uri, "response_type": "code", "scope": "xxx"},
                             verify=accepted.server.ca_bundle, allow_redirects=False, timeout=10)
    assert anonymous.json() == {"error": "invalid_request", "error_description": "client_id is empty"}
    step = accepted.step("OAuth Test", "authorize")
    assert step["status"] == "failed"
    assert step["last_attempt"]["reason"] == "client_id is empty: add client_id={your client_id} to the URL"
    assert "after you pressed Start" in step["last_attempt"]["note"]
