"""The customer's Share My Data page: edit and cancel with their effects (spec 4.15, 8.3; checklist 109, 148-150).

Cancellation runs to the next Pacific midnight: the tests move the simulated clock across it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from lxml import etree
from sqlalchemy import select
from support import database
from support.customer_flow import Browser, exchange, form, resource, set_clock, token

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.store.models import Authorization, Notification, OutboxEmail

ESPI = "{http://naesb.org/espi}"
# A past afternoon, so that every end and revocation made here is also past once real time returns.
AFTERNOON = dt.datetime(2026, 6, 10, 14, 0, tzinfo=PACIFIC)
MIDNIGHT = dt.datetime(2026, 6, 11, 0, 0, tzinfo=PACIFIC)


@pytest.fixture(scope="module")
def server(customer_app: testing.RunningServer) -> testing.RunningServer:
    return customer_app


@pytest.fixture(scope="module")
def quirks(quirks_app: testing.RunningServer) -> testing.RunningServer:
    return quirks_app


@pytest.fixture(autouse=True)
def frozen_afternoon(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts on the same afternoon and leaves real time behind it."""
    servers = [request.getfixturevalue(n) for n in ("server", "quirks") if n in request.fixturenames]
    for running in servers:
        set_clock(running, AFTERNOON)
    yield
    for running in servers:
        set_clock(running, None)


def _signed_in(server: testing.RunningServer, username: str) -> Browser:
    browser = Browser(server)
    response = browser.my_energy_sign_in(username)
    assert response.status_code == 303
    return browser


def _authorize(server: testing.RunningServer, username: str, client_id: str = "00101", **consent) -> dict:
    params = Browser(server).authorize(client_id, username, **consent)
    pair = exchange(server, client_id, params["authorization_code"]).json()
    pair["id"] = int(pair["authorizationURI"].rsplit("/", 1)[1])
    return pair


def _entry(server: testing.RunningServer, client_id: str, authorization_id: int) -> dict[str, str]:
    cat = token(server, client_id, grant_type="client_credentials").json()["client_access_token"]
    response = resource(server, client_id, f"/Authorization/{authorization_id}", cat)
    assert response.status_code == 200, response.text
    content = etree.fromstring(response.content).find(f".//{ESPI}Authorization")
    return {etree.QName(child).localname: (child.text or "") for child in content}


def _csrf(html: str, action: str) -> str:
    return next(f["value"] for f in form(html, action)["fields"] if f.get("name") == "csrf_token")


def _notifications_for(server: testing.RunningServer, authorization_id: int) -> int:
    with database(server).session() as db:
        bodies = [n.body for n in db.execute(select(Notification)).scalars()]
    return sum(f"/Authorization/{authorization_id}</ns0:resources>" in body for body in bodies)


def test_current_authorizations_list_with_pencil_and_x(server: testing.RunningServer) -> None:
    pair = _authorize(server, "rivera")
    home = _signed_in(server, "rivera").get("/customer/authorizations")
    assert home.status_code == 200
    row = re.search(rf'<tr id="authorization-{pair["id"]}">(.*?)</tr>', home.text, re.S).group(1)
    assert "Sunny Solar" in row and "No end date" in row
    link = f'href="/customer/authorizations/{pair["id"]}'
    assert f'{link}/edit" aria-label="Edit authorization for Sunny Solar"' in row
    assert f'{link}/cancel" aria-label="Cancel authorization for Sunny Solar"' in row
    # Another customer cannot see or touch it.
    other = _signed_in(server, "harbor")
    assert f"authorization-{pair['id']}" not in other.get("/customer/authorizations").text
    assert other.get(f"/customer/authorizations/{pair['id']}/edit").status_code == 404


def test_cancel_is_effective_at_the_next_pacific_midnight(server: testing.RunningServer) -> None:
    pair = _authorize(server, "okafor")
    browser = _signed_in(server, "okafor")
    confirm = browser.get(f"/customer/authorizations/{pair['id']}/cancel")
    assert confirm.status_code == 200 and "keeps access until midnight tonight" in confirm.text
    notifications_before = _notifications_for(server, pair["id"])
    done = browser.post(f"/customer/authorizations/{pair['id']}/cancel",
                        [("csrf_token", _csrf(confirm.text, f"/customer/authorizations/{pair['id']}/cancel"))])
    assert done.status_code == 303 and done.headers["Location"].endswith("done=cancelled")
    assert _notifications_for(server, pair["id"]) == notifications_before + 1  # notified at once
    listing = browser.follow(done)
    assert "access ends at midnight tonight" in listing.text
    subscription = "/Subscription/{}/UsagePoint".format(pair["id"])

    set_clock(server, MIDNIGHT.timestamp() - 1)  # 23:59:59: the rest of the day still belongs to the TP
    entry = _entry(server, "00101", pair["id"])
    assert entry["status"] == "1" and entry["expires_at"] == str(int(MIDNIGHT.timestamp()))
    fresh = token(server, "00101", grant_type="refresh_token", refresh_token=pair["refresh_token"]).json()
    assert resource(server, "00101", subscription, fresh["access_token"]).status_code == 200

    set_clock(server, MIDNIGHT)
    assert _entry(server, "00101", pair["id"])["status"] == "0"
    assert resource(server, "00101", subscription, fresh["access_token"]).status_code == 403
    refused = token(server, "00101", grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert f"authorization-{pair['id']}" not in _signed_in(server, "okafor").get("/customer/authorizations").text


def test_removing_an_sa_and_changing_the_end_date_notify_and_show_in_the_scope(server: testing.RunningServer) -> None:
    pair = _authorize(server, "harbor")
    assert "AccountCollection=3" in _entry(server, "00101", pair["id"])["scope"]
    browser = _signed_in(server, "harbor")
    page = browser.get(f"/customer/authorizations/{pair['id']}/edit")
    action = f"/customer/authorizations/{pair['id']}/edit"
    sas = [f["value"] for f in form(page.text, action)["fields"] if f.get("name") == "service_agreements"]
    assert len(sas) == 3
    before = _notifications_for(server, pair["id"])
    done = browser.post(action, [("csrf_token", _csrf(page.text, action)), ("service_agreements", sas[0]),
                                 ("service_agreements", sas[1]), ("duration", "indefinite")])
    assert done.status_code == 303 and done.headers["Location"].endswith("done=changed")
    assert _notifications_for(server, pair["id"]) == before + 1
    entry = _entry(server, "00101", pair["id"])
    assert "AccountCollection=2" in entry["scope"] and entry["status"] == "1"
    refreshed = token(server, "00101", grant_type="refresh_token", refresh_token=pair["refresh_token"]).json()
    assert "AccountCollection=2" in refreshed["scope"]

    done = browser.post(action, [("csrf_token", _csrf(page.text, action)), ("service_agreements", sas[0]),
                                 ("service_agreements", sas[1]), ("duration", "end_date"), ("end_date", "2027-03-31")])
    assert done.headers["Location"].endswith("done=changed")
    assert _notifications_for(server, pair["id"]) == before + 2
    expected_end = int(dt.datetime(2027, 4, 1, tzinfo=PACIFIC).timestamp())
    assert _entry(server, "00101", pair["id"])["expires_at"] == str(expected_end)
    set_clock(server, expected_end - 1)
    assert _entry(server, "00101", pair["id"])["status"] == "1"
    set_clock(server, expected_end)  # a fixed period ends at local midnight after its end date
    assert _entry(server, "00101", pair["id"])["status"] == "0"
    set_clock(server, AFTERNOON)
    # Saving without a change notifies nobody.
    same = browser.post(action, [("csrf_token", _csrf(page.text, action)), ("service_agreements", sas[0]),
                                 ("service_agreements", sas[1]), ("duration", "end_date"), ("end_date", "2027-03-31")])
    assert same.headers["Location"].endswith("done=unchanged")
    assert _notifications_for(server, pair["id"]) == before + 2


def test_adding_sas_needs_a_new_authorization_and_removing_all_cancels(server: testing.RunningServer) -> None:
    pair = _authorize(server, "rivera", sas=None)
    with database(server).session() as db:
        row = db.get(Authorization, pair["id"])
        kept = row.service_agreements[0].sa_number
        dropped = row.service_agreements[1].sa_number
    browser = _signed_in(server, "rivera")
    action = f"/customer/authorizations/{pair['id']}/edit"
    page = browser.get(action)
    csrf = _csrf(page.text, action)
    browser.post(action, [("csrf_token", csrf), ("service_agreements", kept), ("duration", "indefinite")])
    added = browser.post(action, [("csrf_token", csrf), ("service_agreements", kept),
                                  ("service_agreements", dropped), ("duration", "indefinite")])
    assert added.status_code == 400 and "cancel this authorization and create a new one" in added.text
    past = browser.post(action, [("csrf_token", csrf), ("service_agreements", kept), ("duration", "end_date"),
                                 ("end_date", "2026-06-01")])
    assert past.status_code == 400 and "must be in the future" in past.text
    emptied = browser.post(action, [("csrf_token", csrf), ("duration", "indefinite")])
    assert emptied.headers["Location"].endswith("done=cancelled")
    assert _entry(server, "00101", pair["id"])["expires_at"] == str(int(MIDNIGHT.timestamp()))


def test_forged_management_posts_are_refused(server: testing.RunningServer) -> None:
    pair = _authorize(server, "rivera")
    browser = _signed_in(server, "rivera")
    forged = browser.post(f"/customer/authorizations/{pair['id']}/cancel", [("csrf_token", "guess")])
    assert forged.status_code == 400
    assert _entry(server, "00101", pair["id"])["expires_at"] == "253402300799"
    anonymous = Browser(server).post(f"/customer/authorizations/{pair['id']}/cancel", [("csrf_token", "x")])
    assert anonymous.status_code == 303 and anonymous.headers["Location"].startswith("/customer/signin")


def test_third_party_revocation_is_immediate_and_emails_the_customer(server: testing.RunningServer) -> None:
    pair = _authorize(server, "harbor")
    cat = token(server, "00101", grant_type="client_credentials").json()["client_access_token"]
    with database(server).session() as db:
        before = db.execute(select(OutboxEmail).where(OutboxEmail.subject.contains("ended its access"))).all()
    assert resource(server, "00101", f"/Authorization/{pair['id']}", cat, method="DELETE").status_code == 200
    entry = _entry(server, "00101", pair["id"])
    assert entry["status"] == "0" and entry["expires_at"] == str(int(AFTERNOON.timestamp()))
    with database(server).session() as db:
        after = db.execute(select(OutboxEmail).where(OutboxEmail.subject.contains("ended its access"))).all()
    assert len(after) == len(before) + 1
    # Repeating it changes nothing; another client's DELETE is 403; an unknown ID is 404.
    assert resource(server, "00101", f"/Authorization/{pair['id']}", cat, method="DELETE").status_code == 200
    acme_cat = token(server, "00111", grant_type="client_credentials").json()["client_access_token"]
    assert resource(server, "00111", f"/Authorization/{pair['id']}", acme_cat, method="DELETE").status_code == 403
    assert resource(server, "00101", "/Authorization/99999999", cat, method="DELETE").status_code == 404


def test_extend_only_and_group_edits_when_configured(quirks: testing.RunningServer) -> None:
    pair = _authorize(quirks, "rivera", duration="end_date", end_date="2027-06-30", groups=["Usage", "Billing"])
    browser = _signed_in(quirks, "rivera")
    action = f"/customer/authorizations/{pair['id']}/edit"
    page = browser.get(action)
    csrf = _csrf(page.text, action)
    sas = [f["value"] for f in form(page.text, action)["fields"] if f.get("name") == "service_agreements"]
    base = [("csrf_token", csrf)] + [("service_agreements", sa) for sa in sas]
    shorter = browser.post(action, base + [("data_groups", "Usage"), ("data_groups", "Billing"),
                                           ("duration", "end_date"), ("end_date", "2027-01-31")])
    assert shorter.status_code == 400 and "can only be extended" in shorter.text
    longer = browser.post(action, base + [("data_groups", "Usage"), ("duration", "indefinite")])
    assert longer.status_code == 303
    entry = _entry(quirks, "00101", pair["id"])
    assert entry["expires_at"] == "253402300799" and "AdditionalScope=Usage;" in entry["scope"]


def test_management_pages_need_a_my_energy_sign_in(server: testing.RunningServer) -> None:
    response = Browser(server).get("/customer/authorizations")
    assert response.status_code == 303
    assert response.headers["Location"] == "/customer/signin?next=%2Fcustomer%2Fauthorizations"
    wrong = Browser(server).my_energy_sign_in("rivera", "nope", next_=None)
    assert wrong.status_code == 400 and "incorrect" in wrong.text
    open_redirect = Browser(server).my_energy_sign_in("rivera", next_="//evil.example/")
    assert open_redirect.headers["Location"] == "/customer/authorizations"
    # Login CSRF: a sign-in posted without this browser's form token (another site's form) is refused.
    forged = Browser(server).post("/customer/signin", [("username", "rivera"), ("password", "demo")])
    assert forged.status_code == 400 and "expired" in forged.text and "smd_session" not in forged.headers.get(
        "Set-Cookie", "")


def test_closing_an_sa_removes_it_everywhere_and_the_last_one_cancels(server: testing.RunningServer) -> None:
    from mock_custodian.domain.authorizations import remove_service_agreement

    both = _authorize(server, "rivera")
    with database(server).session() as db:
        electric, gas = (sa.id for sa in db.get(Authorization, both["id"]).service_agreements)
    before = _notifications_for(server, both["id"])
    with database(server).session() as db:
        affected = remove_service_agreement(db, gas, AFTERNOON.timestamp(), "https://api.example/R")
    assert both["id"] in affected
    assert _notifications_for(server, both["id"]) == before + 1
    assert "AccountCollection=1" in _entry(server, "00101", both["id"])["scope"]
    with database(server).session() as db:
        remove_service_agreement(db, electric, AFTERNOON.timestamp(), "https://api.example/R")
    entry = _entry(server, "00101", both["id"])
    assert entry["status"] == "1" and entry["expires_at"] == str(int(MIDNIGHT.timestamp()))
