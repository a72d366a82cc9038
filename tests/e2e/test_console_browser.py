"""The simulator console in real Chromium against the real server (gunicorn, TLS): each page renders,
the usage chart shows data for a known SA, and the console's clock and fault forms change what the API
answers next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from support.browser import chromium_page

from mock_custodian import testing

R = "/GreenButtonConnect/espi/1_1/resource"
TP = "00101"
PAGES = {"third-parties": "Third parties", "world": "World", "world/rivera-electric": "SA ",
         "authorizations": "Authorizations", "requests": "Request log", "jobs": "Jobs & notifications",
         "faults": "Faults", "report": "Integration report"}


@pytest.fixture
def server(fresh_demo_server: testing.RunningServer) -> testing.RunningServer:
    """The session's demo server, reset before and after each test."""
    return fresh_demo_server


@pytest.fixture
def page(server: testing.RunningServer) -> Iterator:
    """A Chromium page signed in to the console (through the sign-in form, as a person would)."""
    server.reset()
    with chromium_page(ignore_https_errors=True) as page:
        page.goto(f"{server.portal_base_url}/__sim/console/")
        assert "/__sim/console/signin" in page.url
        page.fill("#control_token", server.control_token)
        page.click("button[type=submit]")
        page.wait_for_selector("h1:has-text('Overview')")
        yield page


def _api_get(server: testing.RunningServer, path: str, token: str) -> requests.Response:
    return requests.get(server.api_base_url + path, headers={"Authorization": f"Bearer {token}"},
                        cert=server.cert(TP), verify=server.ca_bundle, timeout=10)


def _client_token(server: testing.RunningServer) -> str:
    tp = server.third_party(TP)
    return requests.post(f"{server.api_base_url}/datacustodian/oauth/v2/token",
                         data={"grant_type": "client_credentials"}, auth=(TP, tp["client_secret"]),
                         cert=server.cert(TP), verify=server.ca_bundle, timeout=10).json()["client_access_token"]


def test_each_console_page_renders_in_chromium(page, server: testing.RunningServer) -> None:
    assert page.locator("text=Simulated clock").count() == 1
    assert page.locator(f"text={server.api_base_url}").count() >= 1
    for path, heading in PAGES.items():
        page.click(f"nav.pages a[href='/__sim/console/{path.split('/')[0]}']")
        if "/" in path:
            page.click(f"a[href='/__sim/console/{path}']")
        page.wait_for_selector(f"h1:has-text('{heading.strip()}')")
        assert page.locator("main .card").count() >= 1, path
        assert page.locator("table, svg.chart, .tree, #verdict").count() >= 1 or "No " in page.inner_text("main"), path


def test_the_usage_chart_shows_data_for_a_known_sa(page, server: testing.RunningServer) -> None:
    page.goto(f"{server.portal_base_url}/__sim/console/world/rivera-electric")
    bars = page.locator("svg.chart rect.bar")
    assert bars.count() == 21
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert min(heights) > 10  # every published day has usage drawn
    assert page.locator("svg.chart rect[data-mark=corrected]").count() == 1
    box = page.locator("svg.chart").bounding_box()
    assert box["width"] > 400 and box["height"] > 150  # drawn, not collapsed


def test_advancing_the_clock_from_the_console_changes_what_the_api_returns(
        page, server: testing.RunningServer) -> None:
    token = server.authorize("rivera", TP, via="control")["token"]
    usage_points = f"{R}/Subscription/{token['resourceURI'].rsplit('/', 1)[1]}/UsagePoint"
    assert _api_get(server, usage_points, token["access_token"]).status_code == 200
    page.fill("#by", "2h")
    page.click("button:has-text('Advance')")
    page.wait_for_selector("text=Clock advanced by 2h")
    assert _api_get(server, usage_points, token["access_token"]).status_code == 403  # the 1-hour token expired


def test_adding_a_fault_from_the_console_fails_the_next_api_call_as_set(page, server: testing.RunningServer) -> None:
    page.click("nav.pages a[href='/__sim/console/faults']")
    page.select_option("#fault-kind", "maintenance")
    page.fill("input[name=path]", "*/ReadServiceStatus")
    page.fill("input[name=times]", "1")
    page.click("button:has-text('Add fault')")
    page.wait_for_selector("text=(maintenance) added")
    assert page.locator("#faults td code:has-text('maintenance')").count() == 1
    token = _client_token(server)
    assert _api_get(server, f"{R}/ReadServiceStatus", token).status_code == 503
    assert _api_get(server, f"{R}/ReadServiceStatus", token).status_code == 200  # times: 1
    page.reload()
    assert page.locator("#faults td.num:has-text('1 / 1')").count() == 1


def test_the_entrance_page_leads_to_the_console_and_the_portal(server: testing.RunningServer) -> None:
    with chromium_page(ignore_https_errors=True) as page:
        page.goto(f"{server.portal_base_url}/")
        assert page.locator(f"text={server.api_base_url}").count() == 1
        assert page.locator("a[href='/portal']").count() == 1
        page.click("a:has-text('Authorize')")
        page.wait_for_selector("text=Sign in")
        page.goto(f"{server.portal_base_url}/")
        page.click("a:has-text('Open the console')")
        page.wait_for_selector("#control_token")
