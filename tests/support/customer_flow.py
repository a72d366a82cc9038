"""A customer's browser over plain HTTP, plus token calls, for the consent and token tests.

Reads forms the way a browser does (hidden fields, checkboxes by value) so tests exercise the real
pages; no JavaScript is involved (Select All is also honoured by the server).
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import yaml

from mock_custodian import testing
from mock_custodian.clock import ClockState
from support import database

TOKEN = "/datacustodian/oauth/v2/token"
TEST_TOKEN = "/datacustodian/test/oauth/v2/token"
RESOURCE = "/GreenButtonConnect/espi/1_1/resource"

# Registrations added to the demo world for these tests: a second consent-eligible party (EEF, hidden from
# the company list, two groups only) and a terminated Standard one.
EXTRA_THIRD_PARTIES = [
    {
        "key": "acme", "client_id": "00111", "user_type": "eef", "status": "approved",
        "legal_name": "Acme Efficiency Finance LLC", "display_name": "Acme Efficiency", "tax_id": "941111111",
        "business_contact": {"name": "Lee Acme", "email": "lee@acme.example", "phone": "415-555-0111"},
        "redirect_uri": "https://acme.example/oauth/callback?tenant=7", "portal_uri": "https://acme.example/start",
        "notification_uri": "https://127.0.0.1:9/acme/notify", "data_groups": ["Usage", "Billing"],
        "history_months": 24, "visible": False,
    },
    {
        "key": "gone", "client_id": "00112", "user_type": "standard", "status": "terminated",
        "legal_name": "Gone Energy Inc.", "display_name": "Gone Energy", "tax_id": "942222222",
        "business_contact": {"name": "Ex Gone", "email": "ex@gone.example", "phone": "415-555-0112"},
        "redirect_uri": "https://gone.example/cb", "portal_uri": "https://gone.example/start",
        "notification_uri": "https://127.0.0.1:9/gone/notify",
    },
]


def scenario_file(folder: Path) -> Path:
    """The demo world plus EXTRA_THIRD_PARTIES, written to ``folder``."""
    demo = yaml.safe_load(testing_demo().read_text())
    demo["name"] = "customer-authorization"
    demo["third_parties"] = list(demo["third_parties"]) + EXTRA_THIRD_PARTIES
    path = folder / "customer-authorization.yaml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    return path


def testing_demo() -> Path:
    from mock_custodian.scenario.parse import DEFAULT_DEMO

    return DEFAULT_DEMO


def start_app(folder: Path, settings: dict[str, Any] | None = None) -> testing.RunningServer:
    """The demo plus EXTRA_THIRD_PARTIES, the app in-process (support.inprocess: a RunningServer's interface)."""
    from support import inprocess

    return inprocess.start(folder / "data", scenario=scenario_file(folder), settings=settings)


# Every quirk of spec section 9 that these tests switch, on one server (JSON token responses).
QUIRKS = {
    "redirect_code_param": "authorization_code", "raw_scope_in_redirect": True, "honor_auth_end_date_hints": False,
    "authorize_aliases": False, "scope_custodian_key": "DataCustodianID", "scope_block_duration_value": "daily",
    "end_date_edit": "extend_only", "allow_group_edit": True, "token_scope_prefix": False,
    "refresh_includes_customer_uri": True, "resource_uri_style": "batch", "client_token_ttl": 300,
}


def set_clock(server: testing.RunningServer, instant: dt.datetime | float | None) -> None:
    """Freeze simulated time at ``instant`` (None: back to real time)."""
    if instant is None:
        state = ClockState()
    else:
        state = ClockState(frozen_at=instant.timestamp() if isinstance(instant, dt.datetime) else float(instant))
    database(server).write_clock_state(state)


def frozen_now(server: testing.RunningServer) -> float:
    state = database(server).read_clock_state()
    assert state.frozen_at is not None
    return state.frozen_at


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"].append(a)


def form(html: str, action: str) -> dict[str, Any]:
    """The form posting to ``action``: its hidden values and its checkbox/radio inputs."""
    parser = _Forms()
    parser.feed(html)
    for found in parser.forms:
        if found["action"] == action:
            return found
    raise AssertionError(f"no form posting to {action} in page:\n{html[:2000]}")


def hidden(html: str, action: str) -> list[tuple[str, str]]:
    return [(f["name"], f.get("value", "")) for f in form(html, action)["fields"] if f.get("type") == "hidden"]


def checkbox_values(html: str, action: str, name: str) -> list[str]:
    return [f["value"] for f in form(html, action)["fields"] if f.get("type") == "checkbox" and f.get("name") == name]


def redirect_params(response: requests.Response) -> list[tuple[str, str]]:
    """The query parameters of a redirect's Location, in order."""
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return parse_qsl(urlsplit(response.headers["Location"]).query, keep_blank_values=True)


class Browser:
    """One customer's browser: cookies, the portal host, no client certificate."""

    def __init__(self, server: testing.RunningServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False  # the sandbox's REQUESTS_CA_BUNDLE would override verify=
        self.session.verify = server.ca_bundle

    def get(self, path: str, params: Any = None) -> requests.Response:
        return self.session.get(self.server.portal_base_url + path, params=params, allow_redirects=False, timeout=15)

    def post(self, path: str, data: Any) -> requests.Response:
        return self.session.post(self.server.portal_base_url + path, data=data, allow_redirects=False, timeout=15)

    def my_energy_sign_in(self, username: str, password: str = "demo",
                          next_: str | None = "/customer/authorizations") -> requests.Response:
        """GET the Share My Data sign-in page, then post it (its hidden csrf_token included), as a browser does."""
        page = self.get("/customer/signin", {"next": next_} if next_ is not None else None)
        assert page.status_code == 200, page.text[:300]
        fields = [(k, v) for k, v in hidden(page.text, "/customer/signin") if k != "next" or next_ is not None]
        return self.post("/customer/signin", fields + [("username", username), ("password", password)])

    def follow(self, response: requests.Response) -> requests.Response:
        """Follow a redirect within the portal (303 after a form)."""
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        location = response.headers["Location"]
        assert location.startswith("/"), location
        return self.get(location)

    def start(self, registered: str = "00101", **params: str | None) -> requests.Response:
        """The authorization request of client ``registered`` with its redirect URI; ``params`` override
        or (None) drop parameters."""
        query = {"client_id": registered, "redirect_uri": self.server.third_party(registered)["redirect_uri"],
                 "response_type": "code"}
        query.update(params)
        return self.get("/myAuthorization", {k: v for k, v in query.items() if v is not None})

    def sign_in(self, page: requests.Response, username: str = "rivera", password: str = "demo") -> requests.Response:
        """Submit My Energy sign-in from the sign-in page; returns the page the 303 leads to."""
        data = hidden(page.text, "/myAuthorization/signin") + [
            ("username", username), ("password", password), ("action", "signin")]
        response = self.post("/myAuthorization/signin", data)
        return self.follow(response) if response.status_code == 303 else response

    def guest_sign_in(self, page: requests.Response, account_number: str, phone: str) -> requests.Response:
        fields = [(k, v) for k, v in hidden(page.text, "/myAuthorization/signin") if k != "mode"]
        data = fields + [("mode", "guest"), ("account_number", account_number), ("phone", phone),
                         ("action", "signin")]
        response = self.post("/myAuthorization/signin", data)
        return self.follow(response) if response.status_code == 303 else response

    def consent(self, page: requests.Response, groups: list[str] | None = None, sas: list[str] | None = None,
                duration: str = "indefinite", end_date: str | None = None, email: str | None = None,
                action: str = "submit", select_all: bool | None = None) -> requests.Response:
        """Submit the consent page: ``groups`` None ticks every offered group, ``sas`` None uses Select All."""
        action_url = "/myAuthorization/consent"
        if groups is None:
            groups = checkbox_values(page.text, action_url, "data_groups")
        data = hidden(page.text, action_url) + [("data_groups", g) for g in groups]
        if select_all or (select_all is None and sas is None):
            data.append(("select_all", "1"))
        data += [("service_agreements", sa) for sa in sas or []]
        data.append(("duration", duration))
        if end_date is not None:
            data.append(("end_date", end_date))
        if email is not None:
            data.append(("email", email))
        data.append(("action", action))
        return self.post(action_url, data)

    def authorize(self, client_id: str = "00101", username: str = "rivera", state: str | None = "s-1",
                  **consent: Any) -> dict[str, str]:
        """The whole customer side: request, sign-in, consent; returns the redirect's parameters."""
        page = self.start(client_id, state=state)
        if "Sign in to Share My Data" in page.text:
            page = self.sign_in(page, username)
        assert page.status_code == 200, page.text[:1000]
        return dict(redirect_params(self.consent(page, **consent)))


def token(server: testing.RunningServer, client_id: str, path: str = TOKEN, *, cert_of: str | None = None,
          **params: str) -> requests.Response:
    """A token-endpoint call with the client's Basic credentials and certificate, parameters in the query."""
    tp = server.third_party(client_id)
    return requests.post(server.api_base_url + path, params=params, auth=(tp["client_id"], tp["client_secret"]),
                         cert=server.cert(cert_of or client_id), verify=server.ca_bundle, timeout=15)


def exchange(server: testing.RunningServer, client_id: str, code: str, redirect_uri: str | None = None,
             path: str = TOKEN) -> requests.Response:
    return token(server, client_id, path, grant_type="authorization_code", code=code,
                 redirect_uri=redirect_uri or server.third_party(client_id)["redirect_uri"])


def resource(server: testing.RunningServer, client_id: str, path: str, bearer: str,
             method: str = "GET") -> requests.Response:
    return requests.request(method, server.api_base_url + RESOURCE + path,
                            headers={"Authorization": f"Bearer {bearer}"}, cert=server.cert(client_id),
                            verify=server.ca_bundle, timeout=30)
