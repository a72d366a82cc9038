"""The Third Party Portal in a real browser (Playwright + Chromium): register a Standard third party,
upload its certificate, confirm the e-mail, then pass every test to Approved with the OAuth Test
running through the browser and the scripted third party's own HTTPS site.
"""

from __future__ import annotations

import pytest
from support.browser import chromium_page
from support.scripted_third_party import ScriptedThirdParty

from mock_custodian import testing


@pytest.fixture
def server(fresh_demo_server: testing.RunningServer) -> testing.RunningServer:
    """The session's demo server, reset afterwards (the test registers a third party)."""
    return fresh_demo_server


def test_register_confirm_and_pass_the_tests_in_a_browser(server: testing.RunningServer) -> None:
    tp = ScriptedThirdParty(server, "Browser Solar")
    portal = server.portal_base_url
    try:
        with chromium_page(ignore_https_errors=True) as page:
            page.goto(f"{portal}/portal/register")
            page.fill("#legal_name", "Browser Solar Inc")
            page.fill("#display_name", "Browser: Solar")  # ':' is refused in free text
            page.fill("#tax_id", "12345678")
            page.click("text=Submit registration")
            summary = page.locator("#error-summary")
            assert "must not contain '=' or ':'" in summary.inner_text()
            assert "must be exactly 9 digits" in summary.inner_text()
            assert page.get_attribute("#tax_id", "aria-invalid") == "true"

            page.check("#user_type")  # Standard User
            values = {
                "#legal_name": "Browser Solar Inc", "#display_name": "Browser Solar", "#tax_id": "123456789",
                "#description": "Rooftop solar savings", "#phone": "415-555-0110",
                "#business_contact_name": "Bea Business", "#business_contact_email": f"{tp.username}@biz.example",
                "#business_contact_phone": "415-555-0111", "#technical_contact_name": "Tim Tech",
                "#technical_contact_email": "tim@biz.example", "#technical_contact_phone": "415-555-0112",
                "#portal_username": tp.username, "#portal_password": tp.password,
                "#security_question": "First car", "#security_answer": "Civic",
                "#third_party_portal_uri": f"{tp.base}/start", "#redirect_uri": tp.redirect_uri,
                "#notification_uri": f"{tp.base}/notify",
            }
            for selector, value in values.items():
                page.fill(selector, value)
            page.check("#data_groups")  # Basic
            page.check("#data_groups_Usage")
            page.set_input_files("#certificate_file", str(tp.client_files.certificate))
            page.check("#terms_accepted")
            page.click("text=Submit registration")
            page.wait_for_selector("text=Registration submitted")
            assert f"{tp.username}@biz.example" in page.inner_text("main")

            page.click("text=outbox")
            page.click("a[href*='/portal/confirm?token=']")
            page.wait_for_selector("text=Your e-mail address is confirmed")
            assert page.inner_text("#registration-status") == "Accepted (testing)"

            page.goto(f"{portal}/portal")
            page.fill("#username", tp.username)
            page.fill("#password", tp.password)
            page.click("button:has-text('Sign in')")
            page.wait_for_selector("#milestones")
            tp.credentials = {key: page.inner_text(f"#{key}") for key in
                              ("client_id", "client_secret", "registration_access_token", "application_information_id")}
            assert len(tp.credentials["client_id"]) == 5

            tp.connectivity_test()
            assert tp.application_information().status_code == 200

            with page.expect_popup() as opened:
                page.click("text=OAuth Test: Go>")
            harness = opened.value
            harness.wait_for_selector("#start")
            harness.click("#start")  # PG&E -> our portal URI -> test authorize -> our redirect URI
            harness.wait_for_selector("text=exchange answered 200")
            assert tp.starts[-1] == {"scope": ["xxx"], "ThirdPartyID": ["PGE"]}

            page.reload()
            assert page.inner_text("#registration-status") == "Approved"
            completed = page.locator("#milestones tbody tr td:nth-child(2)").all_inner_texts()
            assert len(completed) == 7 and "—" not in completed

            page.goto(f"{portal}/portal/registration/tests")
            assert page.locator("li.step[data-status='passed']").count() == 7
    finally:
        tp.stop()
