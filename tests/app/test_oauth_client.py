"""A standard OAuth 2.0 client (authlib's requests client) against the app in-process (mutual TLS as the TLS
layer hands it over).

The done-when of customer authorization: sign-in, consent, code, token, a data call and refresh, with
a stock client on the default ``redirect_code_param=both``, and, on the documents' reading
(``redirect_code_param=authorization_code``), the client told where PG&E puts the code.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.requests_client import OAuth2Session
from support.customer_flow import TOKEN, Browser, hidden, token

from mock_custodian import testing


@pytest.fixture(scope="module")
def server(customer_app: testing.RunningServer) -> testing.RunningServer:
    return customer_app


def _client(server: testing.RunningServer, client_id: str = "00101") -> OAuth2Session:
    tp = server.third_party(client_id)
    client = OAuth2Session(client_id=tp["client_id"], client_secret=tp["client_secret"],
                           token_endpoint_auth_method="client_secret_basic", redirect_uri=tp["redirect_uri"])
    client.trust_env = False
    client.verify = server.ca_bundle
    client.cert = server.cert(client_id)  # mutual TLS: PG&E requires the registered certificate
    return client


def _customer_consents(server: testing.RunningServer, authorization_url: str) -> str:
    """The customer's browser from the client's authorization URL to the redirect back; returns the Location."""
    browser = Browser(server)
    page = browser.session.get(authorization_url, allow_redirects=False, timeout=15)
    assert page.status_code == 200 and "Sign in to Share My Data" in page.text
    consent = browser.sign_in(page, "rivera")
    response = browser.consent(consent, groups=["Usage", "Billing", "Basic"])
    assert response.status_code == 302
    assert hidden(consent.text, "/myAuthorization/consent")  # the request travelled through the forms
    return response.headers["Location"]


def test_authlib_client_completes_sign_in_consent_code_token_refresh(server: testing.RunningServer) -> None:
    client = _client(server)
    url, state = client.create_authorization_url(f"{server.portal_base_url}/myAuthorization")
    location = _customer_consents(server, url)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    assert query["code"] == query["authorization_code"]  # default redirect_code_param=both
    issued = client.fetch_token(f"{server.api_base_url}{TOKEN}", authorization_response=location)
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600 and "expires_at" in issued
    assert issued["scope"].startswith("scope=FB=")

    usage_points = client.get(issued["resourceURI"] + "/UsagePoint", timeout=30)
    assert usage_points.status_code == 200, usage_points.text
    assert "UsagePoint" in usage_points.text

    first_refresh = issued["refresh_token"]
    refreshed = client.refresh_token(f"{server.api_base_url}{TOKEN}")
    assert refreshed["access_token"] != issued["access_token"]
    assert refreshed["refresh_token"] != first_refresh
    assert client.get(issued["resourceURI"] + "/UsagePoint", timeout=30).status_code == 200
    # Rotation: the refresh token the client just used is dead.
    reused = token(server, "00101", grant_type="refresh_token", refresh_token=first_refresh)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_on_the_documents_reading_the_client_is_told_where_the_code_is(
    quirks_app: testing.RunningServer,  # redirect_code_param=authorization_code there
) -> None:
    client = _client(quirks_app)
    url, _ = client.create_authorization_url(f"{quirks_app.portal_base_url}/myAuthorization")
    location = _customer_consents(quirks_app, url)
    query = parse_qs(urlsplit(location).query)
    assert "code" not in query  # PG&E's documented name for it is authorization_code ...
    issued = client.fetch_token(f"{quirks_app.api_base_url}{TOKEN}", grant_type="authorization_code",
                                code=query["authorization_code"][0])  # ... so the client is told where it is
    assert issued["access_token"] and issued["resourceURI"].startswith(quirks_app.api_base_url)
