"""No page can be framed or type-sniffed, and every form carries a CSRF token, also before sign-in (issue 12.5)."""

from __future__ import annotations

import re

import pytest
from support.inprocess import InProcess, build, environ

BASE = "https://localhost"
PORTAL = environ("portal")
CONSENT = "/myAuthorization?client_id=00101&response_type=code&redirect_uri="


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> InProcess:
    return build(tmp_path_factory.mktemp("framing"))


def _redirect_uri(app: InProcess) -> str:
    from mock_custodian.store.models import ThirdParty

    database = app.app.extensions["mock_custodian"].database
    with database.session() as db:
        return db.query(ThirdParty).filter_by(client_id="00101").one().redirect_uri


def _token(html: str, action: str) -> str:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}"(.*?)</form>', html, re.S)
    assert form, f"no form posting to {action}"
    found = re.search(r'name="csrf_token" value="([^"]*)"', form.group(1))
    assert found and found.group(1), f"the {action} form has no csrf_token"
    return found.group(1)


@pytest.mark.parametrize("path", ["/", "/customer/signin", "/portal", "/portal/register", "/portal/reset-password",
                                  "/no/such/page", "/myAuthorization?client_id=nobody"])
def test_every_portal_page_refuses_framing_and_sniffing(app: InProcess, path: str) -> None:
    response = app.client().get(path, base_url=BASE, environ_base=PORTAL)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_api_answers_are_not_sniffed(app: InProcess) -> None:
    response = app.client().get("/<script>", base_url=BASE, environ_base=environ("api", app.cert("00101")))
    assert response.status_code == 404 and response.headers["X-Content-Type-Options"] == "nosniff"


def test_consent_sign_in_needs_the_form_token_of_this_browser(app: InProcess) -> None:
    start = CONSENT + _redirect_uri(app)
    victim = app.client()
    page = victim.get(start, base_url=BASE, environ_base=PORTAL)
    token = _token(page.text, "/myAuthorization/signin")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    credentials = {"username": "rivera", "password": "demo", "action": "signin"}
    # Another site's copy of the form: right fields, but no token or a token of another browser.
    attacker = app.client()
    attacker_token = _token(attacker.get(start, base_url=BASE, environ_base=PORTAL).text, "/myAuthorization/signin")
    for forged in ({k: v for k, v in fields.items() if k != "csrf_token"}, fields | {"csrf_token": attacker_token}):
        response = app.client().post("/myAuthorization/signin", data=forged | credentials, base_url=BASE,
                                     environ_base=PORTAL)
        assert response.status_code == 400 and "expired" in response.text
        assert "smd_session" not in response.headers.get("Set-Cookie", "")
    response = victim.post("/myAuthorization/signin", data=fields | credentials | {"csrf_token": token},
                           base_url=BASE, environ_base=PORTAL)
    assert response.status_code == 303
    assert "smd_session=" in response.headers["Set-Cookie"]


@pytest.mark.parametrize(("page", "action", "fields"), [
    ("/customer/signin", "/customer/signin", {"username": "rivera", "password": "demo"}),
    ("/portal", "/portal/login", {"username": "sunny", "password": "demo"}),
    ("/portal/reset-password", "/portal/reset-password", {"username": "sunny", "security_answer": "x",
                                                          "new_password": "longenough1"}),
    ("/portal/register", "/portal/register", {"legal_name": "Forged"}),
])
def test_forms_before_sign_in_refuse_a_post_without_the_token(app: InProcess, page: str, action: str,
                                                             fields: dict[str, str]) -> None:
    forged = app.client().post(action, data=fields, base_url=BASE, environ_base=PORTAL)
    assert forged.status_code == 400 and "This page has expired" in forged.text
    assert "session=" not in forged.headers.get("Set-Cookie", "")
    browser = app.client()
    token = _token(browser.get(page, base_url=BASE, environ_base=PORTAL).text, action)
    genuine = browser.post(action, data=fields | {"csrf_token": token}, base_url=BASE, environ_base=PORTAL)
    assert "This page has expired" not in genuine.text
    if action in ("/customer/signin", "/portal/login"):
        assert genuine.status_code == 303, genuine.text[:300]


def test_portal_sign_out_needs_the_session_token(app: InProcess) -> None:
    browser = app.client()
    token = _token(browser.get("/portal", base_url=BASE, environ_base=PORTAL).text, "/portal/login")
    assert browser.post("/portal/login", data={"username": "sunny", "password": "demo", "csrf_token": token},
                        base_url=BASE, environ_base=PORTAL).status_code == 303
    manage = browser.get("/portal/registration", base_url=BASE, environ_base=PORTAL)
    session_token = _token(manage.text, "/portal/logout")
    assert app.client().post("/portal/logout", base_url=BASE, environ_base=PORTAL).status_code == 303  # no session
    forged = browser.post("/portal/logout", data={"csrf_token": "nope"}, base_url=BASE, environ_base=PORTAL)
    assert forged.status_code == 403
    assert browser.get("/portal/registration", base_url=BASE, environ_base=PORTAL).status_code == 200
    done = browser.post("/portal/logout", data={"csrf_token": session_token}, base_url=BASE, environ_base=PORTAL)
    assert done.status_code == 303
    assert browser.get("/portal/registration", base_url=BASE, environ_base=PORTAL).status_code == 303
