"""The consent pages in a real headless browser (Playwright driving Debian's Chromium).

The third party's redirect URI is not reachable here: the browser's navigation to it is intercepted
with ``page.route`` and its parameters read from the captured URL.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from sqlalchemy import select
from support import database
from support.browser import chromium_page
from support.customer_flow import Browser, exchange

from mock_custodian import testing
from mock_custodian.scenario.parse import account_check_digit
from mock_custodian.store.models import Customer

CALLBACK_HOST = "https://localhost:9443/**"  # the demo third party's redirect URI host


@pytest.fixture
def server(fresh_demo_server: testing.RunningServer) -> testing.RunningServer:
    """The session's demo server (two workers), reset before and after each test."""
    return fresh_demo_server


def _request_url(server: testing.RunningServer, **extra: str) -> str:
    query = {"client_id": "00101", "redirect_uri": server.third_party("00101")["redirect_uri"],
             "response_type": "code", **extra}
    return f"{server.portal_base_url}/myAuthorization?{urlencode(query)}"


def _capture(page) -> list[str]:  # noqa: ANN001
    """Answer the third party's redirect URI locally and remember what the browser asked for."""
    seen: list[str] = []

    def handle(route) -> None:  # noqa: ANN001
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Back at the third party</h1>")

    page.route(CALLBACK_HOST, handle)
    return seen


def _params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_sign_in_consent_and_redirect(server: testing.RunningServer) -> None:
    with chromium_page(ignore_https_errors=True) as page:
        seen = _capture(page)
        page.goto(_request_url(server, state="browser-1"))
        assert page.get_by_role("heading", name="Sign in to Share My Data").is_visible()
        assert page.locator("#tab-myenergy").get_attribute("aria-current") == "page"
        page.get_by_label("User name").fill("rivera")
        page.get_by_label("Password").fill("demo")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/myAuthorization?**")
        assert page.get_by_role("heading", name="Share your energy data with Sunny Solar").is_visible()
        # Groups are labelled checkboxes; the keyboard works (focus and Space).
        page.get_by_label("Usage information").check()
        page.get_by_label("Basic information").focus()
        page.keyboard.press("Space")
        assert page.get_by_label("Basic information").is_checked()
        # Select All ticks every listed service agreement (client side) and the server honours it too.
        page.get_by_label("Select All").check()
        agreements = page.locator("input.sa")
        assert agreements.count() == 2
        assert all(agreements.nth(i).is_checked() for i in range(agreements.count()))
        page.get_by_role("button", name="Submit").click()
        page.wait_for_url(CALLBACK_HOST)
        assert page.get_by_role("heading", name="Back at the third party").is_visible()
    params = _params(seen[-1])
    assert [k for k, _ in params] == ["authorization_code", "code", "scope", "state"]
    values = dict(params)
    assert values["state"] == "browser-1"
    assert "AdditionalScope=Usage_Basic;" in values["scope"] and "AccountCollection=2" in values["scope"]
    assert exchange(server, "00101", values["authorization_code"]).status_code == 200


def test_guest_access_requires_an_email_before_submitting(server: testing.RunningServer) -> None:
    with database(server).session() as db:
        rivera = db.execute(select(Customer).where(Customer.username == "rivera")).scalar_one()
        account, phone = rivera.accounts[0].account_number, rivera.phone
    with chromium_page(ignore_https_errors=True) as page:
        seen = _capture(page)
        page.goto(_request_url(server, state="guest-1", login="guest"))
        assert page.locator("#tab-guest").get_attribute("aria-current") == "page"
        page.get_by_label("Account number (11 digits)").fill(account + account_check_digit(account))
        page.get_by_label("Phone number on your account").fill(phone)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/myAuthorization?**")
        assert "(Guest)" in page.locator("header").inner_text()
        page.get_by_label("Usage information").check()
        page.get_by_label("Select All").check()
        page.get_by_role("button", name="Submit").click()
        alert = page.get_by_role("alert")
        assert "Enter your email address." in alert.inner_text()
        assert not seen
        page.get_by_label("Email address for your confirmation").fill("guest@example.org")
        page.get_by_role("button", name="Submit").click()
        page.wait_for_url(CALLBACK_HOST)
    assert dict(_params(seen[-1]))["state"] == "guest-1"


def test_cancel_on_sign_in_and_on_consent_and_the_fragment_entry(server: testing.RunningServer) -> None:
    with chromium_page(ignore_https_errors=True) as page:
        seen = _capture(page)
        page.goto(_request_url(server, state="no thanks"))
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_url(CALLBACK_HOST)
        assert _params(seen[-1]) == [("error", "access_denied"), ("state", "no thanks")]

        # PG&E's fragment form reaches the server as "/" and is routed to /myAuthorization in the page.
        fragment = _request_url(server, state="frag").replace("/myAuthorization?", "/#MyAuthorization/?")
        page.goto(fragment)
        page.wait_for_url("**/myAuthorization?**")
        page.get_by_label("User name").fill("harbor")
        page.get_by_label("Password").fill("demo")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/myAuthorization?**")
        assert page.get_by_role("heading", name="Share your energy data with Sunny Solar").is_visible()
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_url(CALLBACK_HOST)
        assert _params(seen[-1]) == [("error", "access_denied"), ("state", "frag")]


def test_cancel_an_authorization_from_my_authorizations(server: testing.RunningServer) -> None:
    params = Browser(server).authorize("00101", "okafor")
    authorization_id = exchange(server, "00101", params["authorization_code"]).json()["authorizationURI"].rsplit(
        "/", 1)[1]
    with chromium_page(ignore_https_errors=True) as page:
        page.goto(f"{server.portal_base_url}/customer/authorizations")
        page.wait_for_url("**/customer/signin?**")
        page.get_by_label("User name").fill("okafor")
        page.get_by_label("Password").fill("demo")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/customer/authorizations")
        row = page.locator(f"#authorization-{authorization_id}")
        assert "Sunny Solar" in row.inner_text()
        row.get_by_role("link", name="Cancel authorization for Sunny Solar").click()
        page.get_by_role("button", name="Cancel authorization").click()
        page.wait_for_url("**/customer/authorizations?done=cancelled")
        assert "keeps access until midnight tonight" in page.get_by_role("status").inner_text()
        assert "access ends at midnight tonight" in page.locator(f"#authorization-{authorization_id}").inner_text()
