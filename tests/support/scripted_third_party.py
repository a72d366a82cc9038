"""A third party's own software, scripted: an HTTPS site for its portal and redirect URIs, and its API calls.

It talks to the mock only over real HTTPS (client certificate from the dev CA, its own server
certificate from the dev CA too) and through PG&E-shaped URLs, the portal's JSON API and the outbox,
never through mock_custodian internals. Flags make it commit one of the mistakes the rehearsal must
diagnose.
"""

from __future__ import annotations

import re
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from mock_custodian import pki as pkimod
from mock_custodian import testing

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
TEST_TOKEN = "/datacustodian/test/oauth/v2/token"
TEST_AUTHORIZE = "/datacustodian/test/oauth/v2/authorize"


@dataclass
class Mistakes:
    """What the scripted third party gets wrong on purpose in its browser-facing steps."""

    authorize_redirect_uri: str | None = None  # send this instead of the registered Redirect URI
    exchange_twice: bool = False


@dataclass
class ScriptedThirdParty:
    server: testing.RunningServer
    name: str
    user_type: str = "Standard User"
    mistakes: Mistakes = field(default_factory=Mistakes)
    exchanges: list[requests.Response] = field(default_factory=list)
    callbacks: list[dict[str, list[str]]] = field(default_factory=list)
    starts: list[dict[str, list[str]]] = field(default_factory=list)
    credentials: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dev = pkimod.DevPKI(self.server.data_dir / "certs")
        self.client_files = self.dev.issue(f"{self.name} client")
        self.web_files = self.dev.issue(f"{self.name} web", server_names=["127.0.0.1"])
        self.username = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        self.password = "pw-" + secrets.token_hex(6)
        self.state = secrets.token_hex(4)
        self._start_site()

    # ----------------------------------------------------------------------------------- own HTTPS site
    def _start_site(self) -> None:
        scripted = self

        class Site(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/start":
                    scripted.starts.append(query)
                    location = scripted.authorize_url(scope=query.get("scope", [""])[0])
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.end_headers()
                elif parts.path == "/callback":
                    scripted.callbacks.append(query)
                    code = query.get("authorization_code", [""])[0]
                    result = scripted.exchange(code)
                    if scripted.mistakes.exchange_twice:
                        result = scripted.exchange(code)
                    body = f"exchange answered {result.status_code}".encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_response(404)
                    self.end_headers()

        self.site = ThreadingHTTPServer(("127.0.0.1", 0), Site)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.web_files.chain), str(self.web_files.key))
        self.site.socket = context.wrap_socket(self.site.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.site.server_address[1]}"
        threading.Thread(target=self.site.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.site.shutdown()
        self.site.server_close()

    @property
    def redirect_uri(self) -> str:
        return f"{self.base}/callback"

    @property
    def cert(self) -> tuple[str, str]:
        return str(self.client_files.chain), str(self.client_files.key)

    # ----------------------------------------------------------------------------------- portal
    def registration(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_type": self.user_type, "legal_name": f"{self.name} LLC", "display_name": self.name,
            "tax_id": "931234567",
            "business_contact": {"name": "Bea Business", "email": f"{self.username}@biz.example",
                                 "phone": "415-555-0100"},
            "technical_contact": {"name": "Tim Tech", "email": f"tech-{self.username}@biz.example",
                                  "phone": "415-555-0101"},
            "portal_username": self.username, "portal_password": self.password,
            "security_question": "First car", "security_answer": "Civic",
            "description": "Energy insights", "phone": "415-555-0102",
            "third_party_portal_uri": f"{self.base}/start", "redirect_uri": self.redirect_uri,
            "notification_uri": f"{self.base}/notify", "data_groups": ["Basic", "Usage", "Billing"],
            "history_months": 36, "visibility": True, "notify_daily": False,
            "certificate": self.client_files.certificate.read_text(), "terms_accepted": True,
        }
        body.update(overrides)
        return body

    def portal(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", (self.username, self.password))
        return requests.request(method, f"{self.server.portal_base_url}{path}", verify=self.server.ca_bundle,
                                timeout=20, **kwargs)

    def submit(self, **overrides: Any) -> requests.Response:
        return requests.post(f"{self.server.portal_base_url}/portal/api/registrations",
                             json=self.registration(**overrides), verify=self.server.ca_bundle, timeout=20)

    def confirmation_link(self) -> str:
        emails = self.portal("GET", "/portal/api/outbox", auth=None,
                             params={"to": f"{self.username}@biz.example"}).json()["emails"]
        for email in emails:
            match = re.search(r"https://\S+/portal/confirm\?token=\S+", email["body"])
            if match:
                return match.group(0)
        raise AssertionError(f"no confirmation e-mail for {self.username}: {emails}")

    def register_and_confirm(self) -> dict[str, Any]:
        response = self.submit()
        assert response.status_code == 201, response.text
        confirmed = requests.get(self.confirmation_link(), verify=self.server.ca_bundle, timeout=20)
        assert confirmed.status_code == 200, confirmed.text
        return self.refresh_credentials()

    def refresh_credentials(self) -> dict[str, Any]:
        view = self.portal("GET", "/portal/api/registration").json()
        self.credentials = view
        return view

    def rehearsal(self) -> dict[str, Any]:
        response = self.portal("GET", "/portal/api/registration/tests")
        assert response.status_code == 200, response.text
        return response.json()

    def step(self, test: str, key: str) -> dict[str, Any]:
        report = self.rehearsal()
        found = next(t for t in report["tests"] if t["name"] == test)
        return next(s for s in found["steps"] if s["key"] == key)

    # ----------------------------------------------------------------------------------- API calls
    @property
    def client_id(self) -> str:
        return self.credentials["client_id"]

    def api(self, method: str, path: str, cert: Any = "registered", **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.server.api_base_url}{path}", verify=self.server.ca_bundle,
                                cert=self.cert if cert == "registered" else cert, timeout=20, **kwargs)

    def client_token(self, endpoint: str = TEST_TOKEN) -> str:
        response = self.api("POST", endpoint, params={"grant_type": "client_credentials"},
                            auth=(self.client_id, self.credentials["client_secret"]))
        assert response.status_code == 200, response.text
        return response.json()["client_access_token"]

    def bearer(self, resource: str, token: str, cert: Any = "registered") -> requests.Response:
        return self.api("GET", f"{RESOURCE}/{resource}", cert=cert, headers={"Authorization": f"Bearer {token}"})

    def connectivity_test(self) -> None:
        token = self.client_token()
        assert self.bearer("ReadServiceStatus", token).status_code == 200
        sample = self.bearer("DownloadSampleData", token)
        assert sample.status_code == 200, sample.text

    def authorize_url(self, scope: str = "xxx") -> str:
        redirect = self.mistakes.authorize_redirect_uri or self.redirect_uri
        query = urlencode({"client_id": self.client_id, "redirect_uri": redirect, "scope": scope,
                           "response_type": "code", "state": self.state})
        return f"{self.server.api_base_url}{TEST_AUTHORIZE}?{query}"

    def exchange(self, code: str, redirect_uri: str | None = None) -> requests.Response:
        response = self.api("POST", TEST_TOKEN, auth=(self.client_id, self.credentials["client_secret"]),
                            params={"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": redirect_uri or self.redirect_uri})
        self.exchanges.append(response)
        return response

    def oauth_test_without_browser(self) -> requests.Response:
        """Walk the harness's redirects the way a browser would, without following them blindly."""
        start = self.portal("GET", "/portal/oauth-test/start", allow_redirects=False)
        assert start.status_code == 302, start.text
        hop = requests.get(start.headers["Location"], verify=self.server.ca_bundle, allow_redirects=False, timeout=20)
        assert hop.status_code == 302, hop.text  # our site sends the browser on to the test authorize endpoint
        authorize = requests.get(hop.headers["Location"], verify=self.server.ca_bundle, allow_redirects=False,
                                 timeout=20)
        if authorize.status_code != 302:
            return authorize
        return requests.get(authorize.headers["Location"], verify=self.server.ca_bundle, timeout=20)

    def application_information(self, token: str | None = None) -> requests.Response:
        return self.bearer(f"ApplicationInformation/{self.credentials['application_information_id']}",
                           token or self.credentials["registration_access_token"])
