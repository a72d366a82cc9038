"""The customer side of Share My Data (spec 4.2-4.7, 4.14; checklist 21-46), the app in-process.

One world for the module (``customer_app``); each test uses its own browser session. Tests that need a
quirk setting use the ``quirks`` world. Across two real workers: tests/e2e/test_consent_workers.py.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import select
from support import database
from support.customer_flow import (
    Browser,
    checkbox_values,
    exchange,
    hidden,
    redirect_params,
    resource,
    token,
)

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.domain.scope import parse_scope
from mock_custodian.scenario.parse import account_check_digit
from mock_custodian.store.models import Account, Authorization, Customer, Notification, OutboxEmail, ServiceAgreement


@pytest.fixture(scope="module")
def server(customer_app: testing.RunningServer) -> testing.RunningServer:
    return customer_app


@pytest.fixture(scope="module")
def quirks(quirks_app: testing.RunningServer) -> testing.RunningServer:
    return quirks_app


def _customer(server: testing.RunningServer, username: str) -> dict:
    with database(server).session() as db:
        customer = db.execute(select(Customer).where(Customer.username == username)).scalar_one()
        return {
            "id": customer.id, "email": customer.email, "phone": customer.phone,
            "accounts": [a.account_number for a in customer.accounts],
            "sas": [sa.sa_number for a in customer.accounts for sa in a.service_agreements],
        }


def _authorization(server: testing.RunningServer, authorization_id: int) -> Authorization:
    with database(server).session() as db:
        row = db.get(Authorization, authorization_id)
        _ = list(row.service_agreements)
        return row


def _authorization_id(params: dict[str, str], server: testing.RunningServer, client_id: str = "00101") -> int:
    response = exchange(server, client_id, params["authorization_code"])
    assert response.status_code == 200, response.text
    return int(response.json()["authorizationURI"].rsplit("/", 1)[1])


def _is_problem_page(response, text: str) -> None:  # noqa: ANN001
    assert response.status_code == 400, response.text[:500]
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert text in response.text


# --- request validation (checklist 21-24, 32, 36) ------------------------------------------------


def test_missing_or_unknown_client_id_gets_a_400_page_without_redirect(server: testing.RunningServer) -> None:
    browser = Browser(server)
    redirect = server.third_party("00101")["redirect_uri"]
    _is_problem_page(browser.get("/myAuthorization", {"redirect_uri": redirect, "response_type": "code"}),
                     "has no client_id")
    _is_problem_page(browser.start("00101", client_id="99999"), "No company is registered with client_id 99999")


@pytest.mark.parametrize(("client_id", "why"), [
    ("00102", "Self-Access registration"), ("00103", "Community Choice Aggregator registration"),
    ("00104", "not Approved yet"), ("00112", "has been terminated"),
])
def test_ineligible_registrations_get_a_400_page(server: testing.RunningServer, client_id: str, why: str) -> None:
    browser = Browser(server)
    response = browser.get("/myAuthorization", {"client_id": client_id, "redirect_uri": "https://x.example/cb",
                                                "response_type": "code", "state": "s"})
    _is_problem_page(response, why)


def test_redirect_uri_must_match_exactly(server: testing.RunningServer) -> None:
    browser = Browser(server)
    registered = server.third_party("00101")["redirect_uri"]
    _is_problem_page(browser.start("00101", redirect_uri=None), "has no redirect_uri")
    for wrong in (registered.upper(), registered + "/", registered.replace("callback", "callbacK"),
                  registered + "?x=1"):
        _is_problem_page(browser.start("00101", redirect_uri=wrong, state="s"), "does not match")
    # Percent-encoding is undone before comparing: an encoded but equal URI is accepted.
    encoded = browser.session.get(f"{server.portal_base_url}/myAuthorization?client_id=00101&response_type=code"
                                  f"&redirect_uri={quote(registered, safe='')}", allow_redirects=False, timeout=15)
    assert encoded.status_code == 200


def test_bad_response_type_redirects_with_invalid_request_and_state(server: testing.RunningServer) -> None:
    browser = Browser(server)
    redirect = server.third_party("00101")["redirect_uri"]
    for response_type in (None, "token", "CODE"):
        response = browser.start("00101", response_type=response_type, state="pge12advertisement")
        assert redirect_params(response) == [("error", "invalid_request"), ("state", "pge12advertisement")]
        assert response.headers["Location"].startswith(redirect + "?")
    # No state sent: none comes back.
    assert redirect_params(browser.start("00101", response_type="token")) == [("error", "invalid_request")]


def test_client_id_is_checked_before_response_type(server: testing.RunningServer) -> None:
    response = Browser(server).start("00101", client_id="00103", response_type="token")
    _is_problem_page(response, "Community Choice Aggregator")


def test_non_integer_min_auth_end_date_redirects_with_invalid_request(server: testing.RunningServer) -> None:
    response = Browser(server).start("00101", scope="MinAuthEndDate=next-year", state="st")
    assert redirect_params(response) == [("error", "invalid_request"), ("state", "st")]


def test_end_date_hints_can_be_ignored(quirks: testing.RunningServer) -> None:
    page = Browser(quirks).start("00101", scope="MinAuthEndDate=next-year")
    assert page.status_code == 200 and "Sign in to Share My Data" in page.text


# --- sign-in and sessions (checklist 25-27, 33) -------------------------------------------------------


def test_cancel_on_the_sign_in_page_redirects_with_access_denied(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.start("00101", state="a b&c=d/é")
    assert page.status_code == 200 and "Sign in to Share My Data" in page.text
    fields = [(k, v) for k, v in _hidden(page) if k != "action"] + [("action", "cancel")]
    response = browser.post("/myAuthorization/signin", fields)
    assert redirect_params(response) == [("error", "access_denied"), ("state", "a b&c=d/é")]


def _hidden(page) -> list[tuple[str, str]]:  # noqa: ANN001
    from support.customer_flow import hidden

    return hidden(page.text, "/myAuthorization/signin")


def test_wrong_password_and_forbidden_characters_are_refused_with_a_message(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.start("00101")
    refused = browser.sign_in(page, "rivera", "wrong")
    assert refused.status_code == 400 and "The user name or password is incorrect." in refused.text
    refused = browser.sign_in(page, "riv=era", "demo")
    assert refused.status_code == 400 and "cannot contain the characters = or :" in refused.text
    assert browser.session.cookies.get("smd_session") is None


def test_guest_access_tab_then_consent_requires_an_email(server: testing.RunningServer) -> None:
    rivera = _customer(server, "rivera")
    browser = Browser(server)
    page = browser.start("00101", login="guest", state="g")
    assert 'id="account_number"' in page.text and 'id="password"' not in page.text
    assert 'href="/myAuthorization?client_id=00101' in page.text  # the My Energy tab stays available
    account = rivera["accounts"][0]
    wrong = browser.guest_sign_in(page, account + str((int(account_check_digit(account)) + 1) % 10), "4155550000")
    assert wrong.status_code == 400 and "do not match our records" in wrong.text
    short = browser.guest_sign_in(page, account, rivera["phone"])
    assert short.status_code == 400 and "11-digit account number" in short.text
    consent = browser.guest_sign_in(page, account + account_check_digit(account), rivera["phone"])
    assert consent.status_code == 200 and 'id="email"' in consent.text
    missing = browser.consent(consent)
    assert missing.status_code == 400 and "Enter your email address." in missing.text
    bad = browser.consent(consent, email="me:x@example.com")
    assert bad.status_code == 400 and "cannot contain the characters = or :" in bad.text
    params = dict(redirect_params(browser.consent(consent, email="guest.rivera@example.net")))
    assert params["state"] == "g" and params["authorization_code"]
    with database(server).session() as db:
        sent = db.execute(select(OutboxEmail).where(OutboxEmail.to == "guest.rivera@example.net")).scalars().all()
        assert len(sent) == 1 and "Sunny Solar" in sent[0].subject


# --- the consent page (checklist 28-31, 37-41) -----------------------------------------------------


def test_only_the_groups_the_third_party_enabled_are_offered_in_page_order(server: testing.RunningServer) -> None:
    browser = Browser(server)
    sunny = browser.sign_in(browser.start("00101"))
    assert checkbox_values(sunny.text, "/myAuthorization/consent", "data_groups") == [
        "Basic", "Account", "Billing", "Usage", "ProgramEnrollment"]
    for label in ("Basic information", "Account information", "Billing information", "Usage information",
                  "Program enrollment"):
        assert label in sunny.text
    acme = browser.start("00111")
    assert checkbox_values(acme.text, "/myAuthorization/consent", "data_groups") == ["Billing", "Usage"]
    refused = browser.consent(acme, groups=["Billing", "Basic"])
    assert refused.status_code == 400 and "Only the information this company asked for" in refused.text


def test_zero_groups_or_zero_service_agreements_are_refused(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.sign_in(browser.start("00101"))
    none_groups = browser.consent(page, groups=[])
    assert none_groups.status_code == 400 and "Select at least one type of information" in none_groups.text
    none_sas = browser.consent(page, sas=[], select_all=False)
    assert none_sas.status_code == 400 and "Select at least one service agreement" in none_sas.text


def test_select_all_and_only_the_customers_active_linked_sas(server: testing.RunningServer) -> None:
    harbor = _customer(server, "harbor")
    rivera = _customer(server, "rivera")
    with database(server).session() as db:
        closed = db.execute(select(ServiceAgreement).where(ServiceAgreement.sa_number == harbor["sas"][2])).scalar_one()
        closed.status = "Closed"
    browser = Browser(server)
    page = browser.sign_in(browser.start("00101"), "harbor")
    listed = checkbox_values(page.text, "/myAuthorization/consent", "service_agreements")
    assert listed == harbor["sas"][:2]  # the closed SA is not offered
    refused = browser.consent(page, sas=[rivera["sas"][0]], select_all=False)  # someone else's SA
    assert refused.status_code == 400 and "Choose service agreements from the list." in refused.text
    refused = browser.consent(page, sas=[harbor["sas"][2]], select_all=False)  # the closed one, tampered in
    assert refused.status_code == 400
    params = dict(redirect_params(browser.consent(page)))  # Select All
    assert parse_scope(params["scope"])["AccountCollection"] == "2"
    with database(server).session() as db:
        db.execute(select(ServiceAgreement).where(ServiceAgreement.sa_number == harbor["sas"][2])).scalar_one(
        ).status = "Active"


def test_duration_indefinite_or_a_future_end_date(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.sign_in(browser.start("00101"), "okafor")
    assert 'value="indefinite" checked' in page.text  # Indefinite is preselected without hints
    today = dt.datetime.now(PACIFIC).date()
    refused = browser.consent(page, duration="end_date", end_date=(today - dt.timedelta(days=1)).isoformat())
    assert refused.status_code == 400 and "The end date must be in the future." in refused.text
    refused = browser.consent(page, duration="end_date", end_date="2027:01:01")
    assert refused.status_code == 400 and "cannot contain the characters = or :" in refused.text
    end = today + dt.timedelta(days=30)
    params = dict(redirect_params(browser.consent(page, duration="end_date", end_date=end.isoformat())))
    authorization = _authorization(server, _authorization_id(params, server))
    local_end = dt.datetime.fromtimestamp(authorization.ends_at, PACIFIC)
    assert (local_end.date(), local_end.time()) == (end + dt.timedelta(days=1), dt.time(0, 0))


def test_min_auth_end_date_limits_and_preferred_end_date_preselects(server: testing.RunningServer) -> None:
    minimum = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)
    preferred = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    browser = Browser(server)
    scope = f"MinAuthEndDate={int(minimum.timestamp())};PreferredAuthEndDate={int(preferred.timestamp())}"
    page = browser.sign_in(browser.start("00101", scope=scope), "okafor")
    assert page.status_code == 200
    assert 'id="min-end-date"' in page.text
    assert f'value="{preferred.astimezone(PACIFIC).date()}"' in page.text
    too_early = (minimum.date() - dt.timedelta(days=10)).isoformat()
    refused = browser.consent(page, duration="end_date", end_date=too_early)
    assert refused.status_code == 400 and "cannot be earlier than" in refused.text
    params = dict(redirect_params(browser.consent(page, duration="indefinite")))
    assert params["authorization_code"]


def test_successful_submit_redirect_and_scope(server: testing.RunningServer) -> None:
    rivera = _customer(server, "rivera")
    browser = Browser(server)
    page = browser.sign_in(browser.start("00101", state="xyz=1&2"))
    response = browser.consent(page, groups=["ProgramEnrollment", "Usage", "Basic"])
    params = redirect_params(response)
    # Default redirect_code_param=both (issue 20): PG&E's authorization_code, then RFC 6749's code.
    assert [name for name, _ in params] == ["authorization_code", "code", "scope", "state"]
    values = dict(params)
    assert values["code"] == values["authorization_code"]
    assert values["state"] == "xyz=1&2"
    assert len(values["authorization_code"]) == 36 and values["authorization_code"].count("-") == 4
    # Reserved characters of the scope are percent-encoded by default.
    assert "scope=FB%3D1_3_8" in response.headers["Location"]
    scope = parse_scope(values["scope"])
    assert scope["AdditionalScope"] == "Usage_Basic_ProgramEnrollment"
    assert scope["AccountCollection"] == "2" and scope["BR"] == "00101"
    assert scope["FB"] == "1_3_8_13_14_18_19_31_32_35_37_38_39_40_4_5_10_15_46_47"
    assert values["scope"].endswith("dataCustodianId=PGE")
    assert "IntervalDuration=900_3600;BlockDuration=Daily" in values["scope"]
    with database(server).session() as db:
        mails = db.execute(select(OutboxEmail).where(OutboxEmail.to == rivera["email"])).scalars().all()
        assert any("Sunny Solar" in m.subject for m in mails)


def test_fb_without_electric_interval_usage_or_customer_groups(server: testing.RunningServer) -> None:
    rivera = _customer(server, "rivera")
    browser = Browser(server)
    page = browser.sign_in(browser.start("00101"))
    params = dict(redirect_params(browser.consent(page, groups=["Usage"], sas=[rivera["sas"][1]], select_all=False)))
    fb = parse_scope(params["scope"])["FB"]
    assert fb == "1_3_8_13_14_18_19_31_32_35_37_38_39_40_10_15"  # gas only: no 4_5; no customer group: no 46_47


def test_redirect_uri_with_a_query_gets_parameters_appended(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.sign_in(browser.start("00111"), "okafor")
    response = browser.consent(page)
    location = response.headers["Location"]
    assert location.startswith("https://acme.example/oauth/callback?tenant=7&authorization_code=")
    assert [k for k, _ in redirect_params(response)][:2] == ["tenant", "authorization_code"]


def test_cancel_on_the_consent_page(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.sign_in(browser.start("00101", state="c"))
    assert redirect_params(browser.consent(page, action="cancel", groups=[])) == [
        ("error", "access_denied"), ("state", "c")]
    page = browser.start("00101")
    assert redirect_params(browser.consent(page, action="cancel")) == [("error", "access_denied")]


def test_redirect_quirks(quirks: testing.RunningServer) -> None:
    browser = Browser(quirks)
    page = browser.sign_in(browser.start("00101", state="q"))
    response = browser.consent(page, groups=["Usage"])
    params = redirect_params(response)
    assert [k for k, _ in params] == ["authorization_code", "scope", "state"]  # the documents' reading
    assert ";BlockDuration=daily;" in response.headers["Location"]  # raw scope, alternative spelling
    assert response.headers["Location"].split("&scope=")[1].startswith("FB=1_3_8")
    assert dict(params)["scope"].endswith(";DataCustodianID=PGE")


# --- entry-point aliases (checklist 42-43) --------------------------------------------------------------


def test_legacy_client_id_form_uses_the_registered_redirect_uri(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.get("/myAuthorization/", {"clientId": "00101"})
    assert page.status_code == 200 and "Sign in to Share My Data" in page.text
    consent = browser.sign_in(page, "okafor")
    response = browser.consent(consent)
    assert response.headers["Location"].startswith(server.third_party("00101")["redirect_uri"] + "?authorization_code=")


def test_aliases_can_be_switched_off(quirks: testing.RunningServer) -> None:
    browser = Browser(quirks)
    _is_problem_page(browser.get("/myAuthorization/", {"clientId": "00101"}), "has no client_id")
    assert "#MyAuthorization" not in browser.get("/").text


def test_home_page_routes_the_fragment_form_client_side(server: testing.RunningServer) -> None:
    home = Browser(server).get("/")
    assert home.status_code == 200
    assert "MyAuthorization" in home.text and "/myAuthorization" in home.text


# --- PG&E-initiated flow and self-access (checklist 44-45) -----------------------------------------------


def _signed_in_home(server: testing.RunningServer, username: str) -> tuple[Browser, str]:
    browser = Browser(server)
    first = browser.get("/customer/authorizations")
    assert first.status_code == 303 and first.headers["Location"].startswith("/customer/signin")
    page = browser.get("/customer/signin", {"next": "/customer/authorizations"})
    data = [*hidden(page.text, "/customer/signin"), ("username", username), ("password", "demo"),
            ("action", "signin")]
    response = browser.post("/customer/signin", data)
    assert response.status_code == 303, page.text[:300]
    home = browser.follow(response)
    assert home.status_code == 200
    return browser, home.text


def _csrf(html: str) -> str:
    from support.customer_flow import form

    fields = form(html, "/customer/signout")["fields"]
    return next(f["value"] for f in fields if f["name"] == "csrf_token")


def test_company_dropdown_lists_only_approved_visible_consent_registrations(server: testing.RunningServer) -> None:
    _, rivera_home = _signed_in_home(server, "rivera")
    assert '<option value="00101">Sunny Solar</option>' in rivera_home
    for hidden_tp in ("00102", "00103", "00104", "00111", "00112"):
        assert f'<option value="{hidden_tp}"' not in rivera_home
    _, lee_home = _signed_in_home(server, "jlee")
    assert '<option value="00102">Jordan Lee Self Access (your Self-Access registration)</option>' in lee_home


def test_invisible_registration_still_runs_its_own_flow(server: testing.RunningServer) -> None:
    browser = Browser(server)
    page = browser.sign_in(browser.start("00111"), "harbor")
    assert page.status_code == 200 and "Acme Efficiency" in page.text


def test_next_sends_the_customer_to_the_third_party_portal_uri_then_consent_skips_sign_in(
    server: testing.RunningServer,
) -> None:
    browser, home = _signed_in_home(server, "rivera")
    response = browser.post("/customer/authorizations/new", [("csrf_token", _csrf(home)), ("client_id", "00101")])
    assert response.status_code == 302
    assert response.headers["Location"] == server.third_party("00101")["third_party_portal_uri"]
    # The third party sends the customer on to /myAuthorization: already signed in, straight to consent.
    page = browser.start("00101")
    assert "Share your energy data with Sunny Solar" in page.text
    tampered = browser.post("/customer/authorizations/new", [("csrf_token", _csrf(home)), ("client_id", "00111")])
    assert tampered.status_code == 400


def test_self_access_user_authorizes_itself_and_sees_it_in_its_authorization_list(
    server: testing.RunningServer,
) -> None:
    browser, home = _signed_in_home(server, "jlee")
    response = browser.post("/customer/authorizations/new", [("csrf_token", _csrf(home)), ("client_id", "00102")])
    assert response.status_code == 303
    page = browser.follow(response)
    assert page.status_code == 200 and 'id="data-groups"' not in page.text
    action = urlsplit(response.headers["Location"]).path
    data = [("csrf_token", _csrf(home)), ("select_all", "1"), ("duration", "indefinite"), ("action", "submit")]
    done = browser.post(action, data)
    assert done.status_code == 303 and done.headers["Location"].endswith("done=created")
    listing = browser.follow(done)
    assert "Jordan Lee Self Access" in listing.text
    with database(server).session() as db:
        newest = db.execute(select(Authorization).order_by(Authorization.id.desc())).scalars().first()
        assert newest.third_party.client_id == "00102" and newest.kind == "customer"
        newest_id = newest.id
    cat = token(server, "00102", grant_type="client_credentials").json()["client_access_token"]
    feed = resource(server, "00102", "/Authorization", cat)
    assert feed.status_code == 200
    assert f"/Authorization/{newest_id}<" in feed.text or f"/Authorization/{newest_id}\"" in feed.text


# --- re-authorization (checklist 46) ----------------------------------------------------------------------


def test_reauthorization_replaces_the_old_one(server: testing.RunningServer) -> None:
    browser = Browser(server)
    first = browser.authorize("00111", "harbor", groups=["Usage"])
    old_tokens = exchange(server, "00111", first["authorization_code"]).json()
    old_id = int(old_tokens["authorizationURI"].rsplit("/", 1)[1])
    old_usage_points = f"/Subscription/{old_id}/UsagePoint"
    assert resource(server, "00111", old_usage_points, old_tokens["access_token"]).status_code == 200
    page = browser.start("00111")
    assert 'id="replaces-note"' in page.text  # the consent page, not a management page
    second = dict(redirect_params(browser.consent(page, groups=["Billing"])))
    new_tokens = exchange(server, "00111", second["authorization_code"]).json()
    new_id = int(new_tokens["authorizationURI"].rsplit("/", 1)[1])
    assert new_id > old_id
    assert resource(server, "00111", old_usage_points, old_tokens["access_token"]).status_code == 403
    assert token(server, "00111", grant_type="refresh_token",
                 refresh_token=old_tokens["refresh_token"]).json()["error"] == "invalid_grant"
    new_usage_points = f"/Subscription/{new_id}/UsagePoint"
    assert resource(server, "00111", new_usage_points, new_tokens["access_token"]).status_code == 200
    old = _authorization(server, old_id)
    assert old.replaced_by == new_id and old.revoked_at is not None
    with database(server).session() as db:
        bodies = [n.body for n in db.execute(select(Notification)).scalars()]
    assert any(f"/Authorization/{old_id}</ns0:resources>" in body for body in bodies)
    assert not any(f"/Authorization/{new_id}</ns0:resources>" in body for body in bodies)
    # Only one active authorization per customer and third party.
    with database(server).session() as db:
        harbor_id = db.execute(select(Customer.id).where(Customer.username == "harbor")).scalar_one()
        live = db.execute(select(Authorization).where(Authorization.customer_id == harbor_id,
                                                      Authorization.revoked_at.is_(None),
                                                      Authorization.third_party.has(client_id="00111"))).scalars().all()
        assert [a.id for a in live] == [new_id]


def test_unlinked_account_sas_are_not_offered(server: testing.RunningServer) -> None:
    with database(server).session() as db:
        okafor = db.execute(select(Customer).where(Customer.username == "okafor")).scalar_one()
        account = db.get(Account, okafor.accounts[0].id)
        account.linked = False
    try:
        browser = Browser(server)
        page = browser.sign_in(browser.start("00101"), "okafor")
        assert 'id="no-agreements"' in page.text and 'id="consent-submit"' not in page.text
        assert 'id="consent-cancel"' in page.text
    finally:
        with database(server).session() as db:
            okafor = db.execute(select(Customer).where(Customer.username == "okafor")).scalar_one()
            db.get(Account, okafor.accounts[0].id).linked = True


def test_portal_pages_answer_on_the_portal_host_only(server: testing.RunningServer) -> None:
    import requests

    response = requests.get(f"{server.api_base_url}/myAuthorization", params={"client_id": "00101"},
                            cert=server.cert("00101"), verify=server.ca_bundle, timeout=10)
    assert response.status_code == 404
    assert response.text.startswith("No listener for endpoint")
