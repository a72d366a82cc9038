"""Registration deadlines and delays by the simulated clock (spec 3.5, 5.2; checklist 18, 69, 71).

The e-mail link works for 5 days, the tests must pass within 90 days of acceptance, acceptance can
wait for a review (``review_delay``, ``auto_accept``) and a replacement certificate for its activation
(``cert_activation_delay``). Time moves by writing the clock state, never by sleeping.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
import support
from support import inprocess
from support.cert_factory import leaf, pem
from support.scripted_third_party import RESOURCE, TEST_TOKEN, ScriptedThirdParty

from mock_custodian import testing
from mock_custodian.clock import ClockState

DAY = 86400


def _set_offset(server: testing.RunningServer, seconds: float) -> None:
    database = support.database(server)
    database.write_clock_state(ClockState(offset_s=seconds))
    database.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    running = inprocess.start(tmp_path_factory.mktemp("deadlines"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """PG&E reviews by hand, certificates take a day to activate, a missing clientAuth EKU is refused."""
    running = inprocess.start(tmp_path_factory.mktemp("reviewed"), settings={
        "auto_accept": False, "cert_activation_delay": DAY, "client_auth_eku_policy": "refuse"})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def review_delay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    running = inprocess.start(tmp_path_factory.mktemp("review-delay"), settings={"review_delay": 3600})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def scripted() -> Iterator[list[ScriptedThirdParty]]:
    made: list[ScriptedThirdParty] = []
    yield made
    for tp in made:
        tp.stop()


def _new(made: list[ScriptedThirdParty], server: testing.RunningServer, name: str) -> ScriptedThirdParty:
    tp = ScriptedThirdParty(server, name)
    made.append(tp)
    return tp


def test_confirmation_link_works_for_five_days_then_the_submission_is_discarded(
    server: testing.RunningServer, scripted: list[ScriptedThirdParty]
) -> None:
    _set_offset(server, 0)
    early, late = _new(scripted, server, "Link Early"), _new(scripted, server, "Link Late")
    assert early.submit().status_code == 201 and late.submit().status_code == 201
    early_link, late_link = early.confirmation_link(), late.confirmation_link()
    _set_offset(server, 4 * DAY)
    assert requests.get(early_link, verify=server.ca_bundle).status_code == 200
    assert early.refresh_credentials()["status"] == "accepted"
    _set_offset(server, 5 * DAY + 60)
    refused = requests.get(late_link, verify=server.ca_bundle)
    assert refused.status_code == 409
    assert "links work for 5 days" in refused.text and "submit the form again" in refused.text
    assert late.portal("GET", "/portal/api/registration").json()["status"] == "discarded"
    # The discarded name can be registered again.
    again = late.submit(portal_username="link-late-2")
    assert again.status_code == 201, again.text
    _set_offset(server, 0)


def test_required_tests_not_done_in_90_days_expire_the_registration(
    server: testing.RunningServer, scripted: list[ScriptedThirdParty]
) -> None:
    _set_offset(server, 0)
    tp = _new(scripted, server, "Slow Tester")
    tp.register_and_confirm()
    token = tp.client_token()
    assert tp.bearer("ReadServiceStatus", token).status_code == 200
    assert tp.credentials["deadlines"]["testing_deadline"] == pytest.approx(
        next(r["completed_at"] for r in tp.credentials["milestones"] if r["milestone"] == "Accepted") + 90 * DAY)
    _set_offset(server, 89 * DAY)
    assert tp.client_token()  # still inside the window
    _set_offset(server, 90 * DAY + 60)
    refused = tp.api("POST", TEST_TOKEN, params={"grant_type": "client_credentials"},
                     auth=(tp.client_id, tp.credentials["client_secret"]))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert tp.bearer("ReadServiceStatus", token).status_code == 403  # tokens stop working too
    view = tp.portal("GET", "/portal/api/registration").json()
    assert view["status"] == "expired"
    assert "client_secret" not in view  # credentials no longer shown
    step = tp.step("API Connectivity Test", "test_token")
    assert step["last_attempt"]["reason"] == (
        f"client {tp.client_id}'s registration is expired; its credentials no longer work")
    subjects = [e["subject"] for e in tp.portal("GET", "/portal/api/outbox", auth=None,
                                                params={"to": f"{tp.username}@biz.example"}).json()["emails"]]
    assert subjects[0] == "Share My Data: registration expired"
    # An Approved registration never expires.
    demo = server.third_party("00101")
    approved = requests.post(f"{server.api_base_url}/datacustodian/oauth/v2/token",
                             params={"grant_type": "client_credentials"}, auth=("00101", demo["client_secret"]),
                             cert=server.cert("00101"), verify=server.ca_bundle)
    assert approved.status_code == 200
    _set_offset(server, 0)


def test_without_auto_accept_the_registration_waits_in_review_until_accepted(
    reviewed: testing.RunningServer, scripted: list[ScriptedThirdParty]
) -> None:
    tp = _new(scripted, reviewed, "Hand Reviewed")
    assert tp.submit().status_code == 201
    assert requests.get(tp.confirmation_link(), verify=reviewed.ca_bundle).status_code == 200
    view = tp.refresh_credentials()
    assert view["status"] == "in_review" and "client_secret" not in view
    accept = subprocess.run([sys.executable, "-m", "mock_custodian", "third-party", "accept", tp.username,
                             "--data-dir", str(reviewed.data_dir)], capture_output=True, text=True, env=reviewed.env)
    assert accept.returncode == 0, accept.stderr
    view = tp.refresh_credentials()
    assert view["status"] == "accepted" and view["client_secret"]
    tp.connectivity_test()
    assert tp.refresh_credentials()["status"] == "accepted"  # Standard: two more tests to go


def test_a_missing_client_auth_eku_is_refused_when_configured(
    reviewed: testing.RunningServer, scripted: list[ScriptedThirdParty]
) -> None:
    tp = _new(scripted, reviewed, "Server Cert Only")
    server_only = leaf(tp.dev, name="public CA style", client_auth=False, server_auth=True)
    response = tp.submit(certificate=pem(server_only))
    assert response.status_code == 400
    assert "lists serverAuth but not clientAuth" in response.json()["fields"]["certificate"]


def test_replacement_certificate_works_only_after_activation(
    reviewed: testing.RunningServer, scripted: list[ScriptedThirdParty]
) -> None:
    _set_offset(reviewed, 0)
    tp = _new(scripted, reviewed, "Cert Rotator")
    assert tp.submit().status_code == 201
    requests.get(tp.confirmation_link(), verify=reviewed.ca_bundle)
    subprocess.run([sys.executable, "-m", "mock_custodian", "third-party", "accept", tp.username, "--data-dir",
                    str(reviewed.data_dir)], check=True, capture_output=True, env=reviewed.env)
    tp.refresh_credentials()
    old_cert = tp.cert
    new_files = tp.dev.issue(f"{tp.name} renewed")
    new_cert = (str(new_files.chain), str(new_files.key))
    uploaded = tp.portal("PUT", "/portal/api/registration/certificate", data=new_files.certificate.read_text(),
                         headers={"Content-Type": "application/x-pem-file"})
    assert uploaded.status_code == 200, uploaded.text
    states = [c["state"] for c in uploaded.json()["certificates"]]
    assert states == ["active", "pending"]

    def token_with(cert: tuple[str, str]) -> requests.Response:
        return tp.api("POST", TEST_TOKEN, cert=cert, params={"grant_type": "client_credentials"},
                      auth=(tp.client_id, tp.credentials["client_secret"]))

    assert token_with(old_cert).status_code == 200
    assert token_with(new_cert).status_code == 400
    reason = tp.step("API Connectivity Test", "test_token")["last_attempt"]["reason"]
    assert f"is client {tp.client_id}'s replacement certificate and is not active until" in reason
    emails = tp.portal("GET", "/portal/api/outbox", auth=None, params={"to": f"{tp.username}@biz.example"}).json()
    assert "Share My Data: SSL certificate update complete" not in [e["subject"] for e in emails["emails"]]

    _set_offset(reviewed, DAY + 60)
    assert token_with(new_cert).status_code == 200
    assert token_with(old_cert).status_code == 400
    reason = tp.step("API Connectivity Test", "test_token")["last_attempt"]["reason"]
    assert f"was replaced for client {tp.client_id}" in reason
    emails = tp.portal("GET", "/portal/api/outbox", auth=None, params={"to": f"{tp.username}@biz.example"}).json()
    assert emails["emails"][0]["subject"] == "Share My Data: SSL certificate update complete"
    assert [c["state"] for c in tp.refresh_credentials()["certificates"]] == ["retired", "active"]
    token = token_with(new_cert).json()["client_access_token"]
    assert requests.get(f"{reviewed.api_base_url}{RESOURCE}/ReadServiceStatus", cert=new_cert,
                        headers={"Authorization": f"Bearer {token}"}, verify=reviewed.ca_bundle).status_code == 200
    _set_offset(reviewed, 0)


def test_review_delay_accepts_when_the_review_is_over(
    review_delay: testing.RunningServer, scripted: list[ScriptedThirdParty]
) -> None:
    _set_offset(review_delay, 0)
    tp = _new(scripted, review_delay, "Patient Applicant")
    assert tp.submit().status_code == 201
    assert requests.get(tp.confirmation_link(), verify=review_delay.ca_bundle).status_code == 200
    view = tp.refresh_credentials()
    assert view["status"] == "in_review"
    confirmed = next(r["completed_at"] for r in view["milestones"] if r["milestone"] == "E-mail Confirmed")
    assert view["deadlines"]["acceptance_due_at"] == pytest.approx(confirmed + 3600)
    _set_offset(review_delay, 3660)
    view = tp.refresh_credentials()
    assert view["status"] == "accepted"
    accepted_at = next(r["completed_at"] for r in view["milestones"] if r["milestone"] == "Accepted")
    assert accepted_at == pytest.approx(confirmed + 3600)  # accepted when the review ended, not when looked at
    assert view["deadlines"]["testing_deadline"] == pytest.approx(accepted_at + 90 * DAY)
    _set_offset(review_delay, 0)
