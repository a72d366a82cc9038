"""Production clients run unchanged on the DEFAULT ``mock-custodian serve`` settings (issue 20).

Each test replays what code that ran against api.pge.com does, against a server started with exactly
``serve``'s defaults (rate limits on, two workers), never a test server with a quirk switched off:
TLS session resumption (curl, openssl, Python, Node, Java), the token-then-data pacing of a self-access
client, a stock OAuth client reading ``code``, the customer feed's address lookup, and the smaller
departures (retired authorize, ``state`` encoding, trailing slash, phone number, FB_04/FB_16 elements).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import support
from authlib.integrations.requests_client import OAuth2Session
from lxml import etree
from sqlalchemy import select
from support import ROOT, client_token
from support.customer_flow import Browser

from mock_custodian import testing
from mock_custodian.domain.content import bulk_authorizations, customer_item
from mock_custodian.domain.packages import BuildOptions, plan_for
from mock_custodian.espi import UsagePointRequest, customer_feed, usage_feed
from mock_custodian.store.db import Database
from mock_custodian.store.models import Authorization, ServiceAgreement, ThirdParty
from mock_custodian.synth import PROFILE_NAMES, ServiceAgreementModel, day_bounds

A = "{http://www.w3.org/2005/Atom}"
C = "{http://naesb.org/espi/customer}"
E = "{http://naesb.org/espi}"
RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
TOKEN = "/datacustodian/oauth/v2/token"
STATUS = f"{RESOURCE}/ReadServiceStatus"
EXAMPLES = ROOT / "examples"
GROUPS = ("Usage", "Billing", "Basic", "Account", "ProgramEnrollment")
PACE_S = 1.1  # production clients pace themselves to PG&E's 1 request/second per vendor


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """``mock-custodian serve`` with every default (the test harness only turns rate limits off: back on)."""
    server = testing.start(tmp_path_factory.mktemp("production"), workers=2,
                           env={"MOCK_CUSTODIAN_RATE_LIMITS_ENABLED": "true"})
    assert {k for k in server.env if k.startswith("MOCK_CUSTODIAN_")} == {"MOCK_CUSTODIAN_RATE_LIMITS_ENABLED"}
    try:
        yield server
    finally:
        server.stop()


def settle() -> None:
    """Let the vendor's per-second bucket (real time) refill before a burst, as after any idle second."""
    time.sleep(2.1)


def host_port(server: testing.RunningServer, base: str | None = None) -> tuple[str, int]:
    parts = urlsplit(base or server.api_base_url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def http_get(path: str, host: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n".encode()


# --- 1. TLS session resumption ------------------------------------------------------------------------


def test_curl_with_ten_urls_in_one_invocation_gets_ten_200s(prod: testing.RunningServer) -> None:
    # curl resumes TLS sessions across the URLs of one invocation; Connection: close makes each a new one.
    chain, key = prod.cert("00103")
    cat = client_token(prod, "00103")
    settle()
    args = ["curl", "-sS", "--cacert", prod.ca_bundle, "--cert", chain, "--key", key, "-H", "Connection: close",
            "-H", f"Authorization: Bearer {cat}", "--rate", "50/m", "-w", "%{http_code}\\n"]
    for _ in range(10):
        args += ["-o", "/dev/null", f"{prod.api_base_url}{STATUS}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["200"] * 10, result.stdout + result.stderr


def s_client(server: testing.RunningServer, version: str, *, session_out: Path | None = None,
             session_in: Path | None = None, client_id: str | None = "00103", servername: str | None = None,
             port: int | None = None, token: str | None = None) -> str:
    host, api_port = host_port(server)
    args = ["openssl", "s_client", "-connect", f"{host}:{port or api_port}", f"-{version}", "-CAfile",
            server.ca_bundle, "-ign_eof"]
    if client_id:
        chain, key = server.cert(client_id)
        args += ["-cert", chain, "-cert_chain", chain, "-key", key]  # the leaf and its intermediate
    if servername:
        args += ["-servername", servername]
    if session_out:
        args += ["-sess_out", str(session_out)]
    if session_in:
        args += ["-sess_in", str(session_in)]
    result = subprocess.run(args, input=http_get(STATUS, host, token), capture_output=True, timeout=30)
    return result.stdout.decode(errors="replace")


def handshake(output: str) -> str:
    found = re.search(r"^(New|Reused), TLSv1\.[23]", output, re.M)
    assert found, output
    return found.group(1)


def status_line(output: str) -> str:
    found = re.search(r"^HTTP/1\.1 (\d{3})", output, re.M)
    assert found, output
    return found.group(1)


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_openssl_sessions_are_never_resumed_on_the_api_listener(prod: testing.RunningServer, tmp_path: Path) -> None:
    cat = client_token(prod, "00103")
    settle()
    # TLS 1.3: the server may send a ticket, but offering it back gets a full handshake, and 200.
    saved = tmp_path / "tls13.pem"
    assert status_line(s_client(prod, "tls1_3", session_out=saved, token=cat)) == "200"
    time.sleep(PACE_S)
    if saved.exists() and saved.stat().st_size:
        resumed = s_client(prod, "tls1_3", session_in=saved, token=cat)
        assert handshake(resumed) == "New" and status_line(resumed) == "200"
        time.sleep(PACE_S)
    # TLS 1.2: the API listener hands out no session id and no ticket, so there is nothing to resume ...
    offered = tmp_path / "tls12.pem"
    assert status_line(s_client(prod, "tls1_2", session_out=offered, token=cat)) == "200"
    assert not offered.exists() or not offered.stat().st_size
    time.sleep(PACE_S)
    # ... and a resumable TLS 1.2 session (the portal listener's) offered to it is not taken up.
    portal = tmp_path / "portal12.pem"
    s_client(prod, "tls1_2", session_out=portal, client_id=None, port=host_port(prod, prod.portal_base_url)[1])
    assert portal.stat().st_size
    resumed = s_client(prod, "tls1_2", session_in=portal, token=cat)
    assert handshake(resumed) == "New" and status_line(resumed) == "200"


def python_get(server: testing.RunningServer, context: ssl.SSLContext, token: str | None, *,
               session: ssl.SSLSession | None = None, server_hostname: str | None = None
               ) -> tuple[int, bool, ssl.SSLSession | None, bytes]:
    """One request on a new connection: (status, session reused, the session afterwards, body)."""
    host, port = host_port(server)
    with socket.create_connection((host, port), timeout=15) as raw, \
            context.wrap_socket(raw, server_hostname=server_hostname or host, session=session) as tls:
        tls.sendall(http_get(STATUS, host, token))
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        reused, after = tls.session_reused, tls.session
    status = int(data.split(b" ", 2)[1])
    return status, reused, after, data.split(b"\r\n\r\n", 1)[-1]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_python_ssl_offering_its_session_gets_a_full_handshake_and_200(prod: testing.RunningServer,
                                                                        version: ssl.TLSVersion) -> None:
    cat = client_token(prod, "00103")
    settle()
    context = ssl.create_default_context(cafile=prod.ca_bundle)
    context.load_cert_chain(*prod.cert("00103"))
    context.minimum_version = context.maximum_version = version
    status, reused, session, _ = python_get(prod, context, cat)
    assert (status, reused) == (200, False)
    for _ in range(3):
        time.sleep(PACE_S)
        status, reused, session, body = python_get(prod, context, cat, session=session)
        assert (status, reused) == (200, False), body


def test_a_portal_session_offered_under_the_api_name_never_reaches_an_api_resource(
    prod: testing.RunningServer,
) -> None:
    # A session made on the API port with the portal's SNI (no certificate is asked for there) ...
    cat = client_token(prod, "00103")
    settle()
    context = ssl.create_default_context(cafile=prod.ca_bundle)
    context.check_hostname = False
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # sessions are fixed at the handshake in TLS 1.2
    status, _, session, body = python_get(prod, context, cat, server_hostname="sharemydata.pge.com")
    assert status == 404 and b"No listener" in body  # the portal surface serves no API path
    # ... offered under the API name is not resumed: a full handshake asks for a certificate, and none is sent.
    status, reused, _, body = python_get(prod, context, cat, session=session, server_hostname="127.0.0.1")
    assert not reused
    assert status == 400 and b"Invalid Certificate" in body


@pytest.mark.skipif(not shutil.which("node"), reason="needs node")
def test_node_https_example_gets_ten_200s(prod: testing.RunningServer) -> None:
    tp = prod.third_party("00103")
    chain, key = prod.cert("00103")
    settle()
    result = subprocess.run(
        ["node", str(EXAMPLES / "node-https" / "service-status.js")], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "PGE_API": prod.api_base_url, "PGE_CA": prod.ca_bundle,
             "PGE_CERT": chain, "PGE_KEY": key, "PGE_CLIENT_ID": tp["client_id"],
             "PGE_CLIENT_SECRET": tp["client_secret"]})
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [c["status"] for c in calls] == [200] * 10
    assert result.stdout.rstrip().endswith("10 of 10 calls answered 200")


@pytest.mark.skipif(not shutil.which("java"), reason="needs java (11+)")
def test_java_httpclient_example_gets_ten_200s(prod: testing.RunningServer, tmp_path: Path) -> None:
    tp = prod.third_party("00103")
    bundle = requests.get(f"{prod.portal_base_url}/__sim/credentials/00103/bundle.p12",
                          params={"password": "changeit"}, headers={"X-Control-Token": prod.control_token or ""},
                          verify=prod.ca_bundle, timeout=10)
    assert bundle.status_code == 200
    (tmp_path / "bundle.p12").write_bytes(bundle.content)
    settle()
    result = subprocess.run(
        ["java", str(EXAMPLES / "java-httpclient" / "ServiceStatus.java"), prod.api_base_url, prod.ca_bundle,
         str(tmp_path / "bundle.p12"), "changeit", tp["client_id"], tp["client_secret"]],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.findall(r"^call \d+: (\d+)", result.stdout, re.M) == ["200"] * 10
    assert result.stdout.rstrip().endswith("10 of 10 calls answered 200")


# --- 2. rate limits: the self-access pattern -------------------------------------------------------------


def test_self_access_token_status_and_bulk_in_one_burst(prod: testing.RunningServer) -> None:
    tp = prod.third_party("00102")
    settle()
    with requests.Session() as session:
        session.cert, session.verify, session.trust_env = prod.cert("00102"), prod.ca_bundle, False
        started = time.monotonic()
        token = session.post(f"{prod.api_base_url}{TOKEN}", params={"grant_type": "client_credentials"},
                             auth=(tp["client_id"], tp["client_secret"]), timeout=10)
        bearer = {"Authorization": f"Bearer {token.json()['client_access_token']}"}
        status = session.get(f"{prod.api_base_url}{STATUS}", headers=bearer, timeout=10)
        bulk = session.get(f"{prod.api_base_url}{RESOURCE}/Batch/Bulk/{tp['bulk_id']}", headers=bearer, timeout=10)
        elapsed = time.monotonic() - started
    assert [token.status_code, status.status_code, bulk.status_code] == [200, 200, 202], bulk.text
    assert elapsed < 5  # generous: the point is that they came together
    # The bucket still exists: more data calls in a burst are refused, with Retry-After.
    with requests.Session() as session:
        session.cert, session.verify, session.trust_env = prod.cert("00102"), prod.ca_bundle, False
        for _ in range(5):
            refused = session.get(f"{prod.api_base_url}{STATUS}", headers=bearer, timeout=10)
            if refused.status_code == 429:
                break
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


# --- 3. a stock OAuth client reads code ---------------------------------------------------------------------


def test_authlib_with_its_default_configuration_completes_code_flow_and_refresh(prod: testing.RunningServer) -> None:
    tp = prod.third_party("00101")
    client = OAuth2Session(client_id=tp["client_id"], client_secret=tp["client_secret"],
                           redirect_uri=tp["redirect_uri"])  # nothing else: authlib's defaults
    client.trust_env = False
    client.verify, client.cert = prod.ca_bundle, prod.cert("00101")  # PG&E's mutual TLS
    url, state = client.create_authorization_url(f"{prod.portal_base_url}/myAuthorization")
    browser = Browser(prod)
    page = browser.session.get(url, allow_redirects=False, timeout=15)
    assert page.status_code == 200, page.text
    response = browser.consent(browser.sign_in(page, "rivera"), groups=["Usage", "Billing", "Basic"])
    location = response.headers["Location"]
    assert parse_qs(urlsplit(location).query)["state"] == [state]
    settle()
    issued = client.fetch_token(f"{prod.api_base_url}{TOKEN}", authorization_response=location)
    assert issued["token_type"] == "Bearer" and issued["access_token"]
    assert client.get(issued["resourceURI"] + "/UsagePoint", timeout=30).status_code == 200
    refreshed = client.refresh_token(f"{prod.api_base_url}{TOKEN}")
    assert refreshed["access_token"] != issued["access_token"]
    assert client.get(issued["resourceURI"] + "/UsagePoint", timeout=30).status_code == 200
    # What authlib keeps as the token's scope is PG&E's "scope=FB=..." text, prefix included (spec section 9
    # item 9): harmless to authlib, which never parses it, but a client that checks granted scopes sees it.
    assert issued["scope"].startswith("scope=FB=")


# --- 4. the customer feed's address lookup --------------------------------------------------------------


def client_addresses(document: bytes, usage_point_ids: Iterable[str]) -> dict[str, str]:
    """The production client's rule, exactly: for each entry, the first child whose href contains
    ``CustomerAgreement/<digits>``; if the digits are a UsagePoint id of the subscription, read
    ``content/ServiceLocation/mainAddress/streetDetail/addressGeneral`` from that entry, unchecked."""
    ids = set(usage_point_ids)
    found: dict[str, str] = {}
    for entry in etree.fromstring(document).iter(f"{A}entry"):
        digits = None
        for child in entry:
            match = re.search(r"CustomerAgreement/(\d+)", child.get("href") or "")
            if match:
                digits = match.group(1)
                break
        if digits in ids:
            # No existence check: a missing element raises here, as it crashed the client.
            found[digits] = entry.find(
                f"{A}content/{C}ServiceLocation/{C}mainAddress/{C}streetDetail/{C}addressGeneral").text
    return found


def snapshot(server: testing.RunningServer, tmp_path: Path) -> Database:
    """A private copy of the running server's database, for in-process feeds over its world."""
    target = tmp_path / "copy.db"
    with sqlite3.connect(server.data_dir / "mock-custodian.db") as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return Database(f"sqlite:///{target}")


def combinations() -> list[tuple[str, ...]]:
    return [combo for n in range(1, len(GROUPS) + 1) for combo in itertools.combinations(GROUPS, n)]


def test_client_rule_finds_every_address_in_every_customer_feed_and_group_combination(
    prod: testing.RunningServer, tmp_path: Path,
) -> None:
    database = snapshot(prod, tmp_path)
    options = BuildOptions(prod.api_base_url)  # the defaults
    now = prod.clock.now().timestamp()
    checked = 0
    with database.session() as db:
        for sa in db.execute(select(ServiceAgreement)).scalars():  # every SA enrolled in DR: DR feeds too
            sa.dr_programs = [{"program": "SmartAC", "status": "enrolled", "enrolled_at": 1767225600}]
        db.flush()
        for tp in db.execute(select(ThirdParty).order_by(ThirdParty.client_id)).scalars():
            authorizations = [a for a in bulk_authorizations(db, tp, now) if a.customer is not None]
            if not authorizations:
                continue
            cca = tp.user_type == "cca"
            for combo in ([tuple(authorizations[0].data_groups or ())] if cca else combinations()):
                for a in authorizations:
                    a.data_groups = list(combo)
                ups = {sa.usage_point_id for a in authorizations for sa in a.service_agreements}
                # Batch/RetailCustomer/{id} and RetailDRPrgInfo/{id}: one authorization each.
                for a in authorizations:
                    own = {sa.usage_point_id for sa in a.service_agreements}
                    for dr_only in (False, True):
                        body = b"".join(customer_feed([customer_item(a)], resource_base=options.resource_base,
                                                      self_href="x", now=now, dr_only=dr_only))
                        found = client_addresses(body, own)
                        expect_all = "Basic" in combo and not dr_only
                        assert set(found) == (own if expect_all else set()), (tp.client_id, combo, dr_only)
                        assert all(found.values())
                        checked += 1
                # Bulk packages (both paths serve the same feed) and BulkRetailDRPrgInfo: every authorization.
                for feed in ("customer", "dr"):
                    plan = plan_for(db, feed, [a.id for a in authorizations], None, now, self_href="x",
                                    options=options)
                    body = b"".join(plan.chunks())
                    found = client_addresses(body, ups)
                    expect_all = "Basic" in combo and feed == "customer"
                    assert set(found) == (ups if expect_all else set()), (tp.client_id, combo, feed)
                    checked += 1
            if cca:
                assert "Basic" in (authorizations[0].data_groups or ())  # a CCA's feed carries addresses
        db.rollback()
    assert checked >= 31 * 4  # at least two registrations' feeds for every combination


def test_client_rule_on_the_served_customer_feeds(prod: testing.RunningServer) -> None:
    """Over HTTP, as the client calls it: ``Batch/RetailCustomer/{id}/`` (trailing slash), with and without Basic."""
    settle()
    sas = {sa["key"]: sa["usage_point_id"] for person in prod.customers() for account in person["accounts"]
           for sa in account["service_agreements"]}
    for groups, expect in ((["Usage", "Basic", "Account", "ProgramEnrollment"], True), (["Usage", "Account"], False)):
        granted = prod.authorize("rivera", "00101", groups=groups, via="control")
        token = granted["token"]
        ups = {sas["rivera-electric"], sas["rivera-gas"]}
        response = requests.get(token["customerResourceURI"] + "/", headers={
            "Authorization": f"Bearer {token['access_token']}"}, cert=prod.cert("00101"), verify=prod.ca_bundle,
            timeout=30)
        assert response.status_code == 200, response.text
        assert client_addresses(response.content, ups).keys() == (ups if expect else set())
        time.sleep(PACE_S)


def basic_usage_points(server: testing.RunningServer, client_id: str) -> tuple[set[str], set[str]]:
    """(every UsagePoint id in the registration's Bulk scope, those whose authorization grants Basic)."""
    with support.database(server).session() as db:
        tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one()
        authorizations = [a for a in bulk_authorizations(db, tp, server.clock.now().timestamp()) if a.customer]
        every = {sa.usage_point_id for a in authorizations for sa in a.service_agreements}
        basic = {sa.usage_point_id for a in authorizations if "Basic" in (a.data_groups or ())
                 for sa in a.service_agreements}
    return every, basic


@pytest.mark.parametrize("client_id, path", [
    ("00101", f"{RESOURCE}/Batch/BulkRetailCustomerInfo/00101"),
    ("00103", f"{RESOURCE}/Batch/BulkRetailCustomerInfo/00103"),
    ("00103", "/GreenButtonConnect/espi/1_1/Batch/BulkRetailCustomerInfo/00103"),  # the CCA's path (§9 item 16)
])
def test_client_rule_on_served_bulk_customer_packages(prod: testing.RunningServer, client_id: str,
                                                      path: str) -> None:
    sink = f"feed-{client_id}-{len(path)}"
    prod.use_sink(client_id, sink)
    every, basic = basic_usage_points(prod, client_id)
    assert basic  # the check below must meet addresses
    token = client_token(prod, client_id)
    settle()
    bearer = {"Authorization": f"Bearer {token}"}
    transaction = f"issue-20-{time.time_ns()}"  # echoed on this request's notification, not on a daily one
    accepted = requests.get(f"{prod.api_base_url}{path}", headers={**bearer, "X-Transaction": transaction},
                            cert=prod.cert(client_id), verify=prod.ca_bundle, timeout=30)
    assert accepted.status_code == 202, accepted.text
    prod.release_jobs()
    ours = f"{prod.api_base_url}{path}?correlationID="

    def notified() -> list[str]:  # this request's packages (a daily package may be notified meanwhile)
        posts = [p for p in prod.sink(sink)
                 if {k.lower(): v for k, v in p["headers"].items()}.get("x-transaction") == transaction]
        return [el.text or "" for post in posts for el in etree.fromstring(post["body"].encode())
                if el.tag == f"{E}resources" and (el.text or "").startswith(ours)]

    deadline = time.monotonic() + 60
    while not (urls := notified()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert urls, "no notification arrived"
    found: dict[str, str] = {}
    for url in urls:
        time.sleep(PACE_S)
        package = requests.get(url, headers=bearer, cert=prod.cert(client_id), verify=prod.ca_bundle, timeout=60)
        assert package.status_code == 200, package.text
        found |= client_addresses(package.content, every)
    assert set(found) == basic and all(found.values())


# --- 5. smaller departures ----------------------------------------------------------------------------------


def test_retired_production_authorize_is_404_for_any_request(prod: testing.RunningServer) -> None:
    url = f"{prod.api_base_url}/datacustodian/oauth/v2/authorize"
    settle()
    browser = requests.get(url, params={"client_id": "00101", "response_type": "code"}, verify=prod.ca_bundle,
                           allow_redirects=False, timeout=10)  # a browser: no certificate
    assert browser.status_code == 404 and browser.text.startswith("No listener for endpoint")
    time.sleep(PACE_S)
    with_cert = requests.post(url + "/", cert=prod.cert("00101"), verify=prod.ca_bundle, timeout=10)
    assert with_cert.status_code == 404


def test_state_with_a_space_is_percent_20_from_the_harness_and_from_my_authorization(
    prod: testing.RunningServer,
) -> None:
    tp = prod.third_party("00101")
    harness = requests.get(f"{prod.api_base_url}/datacustodian/test/oauth/v2/authorize", params={
        "client_id": "00101", "redirect_uri": tp["redirect_uri"], "response_type": "code", "state": "a b+c"},
        verify=prod.ca_bundle, allow_redirects=False, timeout=10)
    assert harness.status_code == 302, harness.text
    assert harness.headers["Location"].endswith("&state=a%20b%2Bc")
    query = parse_qs(urlsplit(harness.headers["Location"]).query)
    assert query["code"] == query["authorization_code"]  # the harness redirect carries both too
    browser = Browser(prod)
    consent = browser.sign_in(browser.start("00101", state="a b+c"), "okafor")
    location = browser.consent(consent).headers["Location"]
    assert location.endswith("&state=a%20b%2Bc")


def test_token_endpoint_tolerates_a_trailing_slash(prod: testing.RunningServer) -> None:
    tp = prod.third_party("00101")
    for path in (TOKEN + "/", "/datacustodian/test/oauth/v2/token/"):
        response = requests.post(f"{prod.api_base_url}{path}", params={"grant_type": "client_credentials"},
                                 auth=(tp["client_id"], tp["client_secret"]), cert=prod.cert("00101"),
                                 verify=prod.ca_bundle, timeout=10)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["client_access_token"]


def test_sim_customers_show_the_phone_number_guest_access_needs(prod: testing.RunningServer) -> None:
    people = prod.customers()
    assert all(re.fullmatch(r"[0-9()+\- .]{7,}", person["phone"]) for person in people), people
    assert all("@" in person["email"] for person in people)


# --- FB_04 / FB_16: every document the server emits -------------------------------------------------------


def function_block_problems(document: bytes) -> list[str]:
    """What the Green Button function-block tests D062 (FB_04) and D093 (FB_16) would flag."""
    root = etree.fromstring(document)
    problems = []
    for reading_type in root.iter(f"{E}ReadingType"):
        if reading_type.find(f"{E}intervalLength") is None:
            problems.append("ReadingType without intervalLength (FB_04 D062)")
    for summary in root.iter(f"{E}UsageSummary"):
        if summary.find(f"{E}costAdditionalLastPeriod") is None:
            problems.append("UsageSummary without costAdditionalLastPeriod (FB_16 D093)")
    return problems


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_usage_document_has_the_elements_of_the_claimed_function_blocks(profile: str) -> None:
    model = ServiceAgreementModel.from_dict({"usage_point_id": "5391320451", "profile": profile, "seed": 11,
                                             "sa_start": "2026-01-01"})
    start, end = day_bounds(date(2026, 5, 20))[0], day_bounds(date(2026, 7, 3))[0]
    base = "https://api.example/GreenButtonConnect/espi/1_1/resource"
    summaries = 0
    for usage, billing in ((True, True), (True, False), (False, True)):
        body = b"".join(usage_feed([UsagePointRequest("4095251", model, start, end, usage=usage, billing=billing)],
                                   resource_base=base, self_href=base, now=day_bounds(date(2026, 7, 4))[0]))
        assert function_block_problems(body) == []
        summaries += len(list(etree.fromstring(body).iter(f"{E}UsageSummary")))
    assert summaries  # the check met UsageSummaries


def test_served_documents_have_the_elements_of_the_claimed_function_blocks(prod: testing.RunningServer) -> None:
    granted = prod.authorize("harbor", "00101", groups=["Usage", "Billing"], via="control")
    token = granted["token"]
    subscription = token["resourceURI"]
    settle()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}

    def fetch(url: str) -> bytes:
        time.sleep(PACE_S)
        response = requests.get(url, headers=bearer, cert=prod.cert("00101"), verify=prod.ca_bundle, timeout=60)
        assert response.status_code == 200, (url, response.text)
        return response.content

    start = time.gmtime(prod.clock.now().timestamp() - 75 * 86400)  # two or more billing periods back
    since = f"?published-min={time.strftime('%Y-%m-%dT00:00:00Z', start)}"
    listing = fetch(f"{subscription}/UsagePoint")
    hrefs = [lk.get("href") or "" for lk in etree.fromstring(listing).iter(f"{A}link")]
    ups = sorted({href.split("/UsagePoint/")[1].split("/")[0] for href in hrefs if "/UsagePoint/" in href})
    assert ups
    batch_subscription = subscription.replace("/Subscription/", "/Batch/Subscription/")
    documents = [listing, fetch(f"{prod.api_base_url}{RESOURCE}/ReadingType")]
    for up in ups:
        documents += [fetch(f"{batch_subscription}/UsagePoint/{up}{since}"),
                      fetch(f"{subscription}/UsagePoint/{up}/UsageSummary{since}")]
    assert sum(len(list(etree.fromstring(d).iter(f"{E}UsageSummary"))) for d in documents) > 0
    assert sum(len(list(etree.fromstring(d).iter(f"{E}ReadingType"))) for d in documents) > 0
    for document in documents:
        assert function_block_problems(document) == []


def test_authorization_rows_exist_for_the_demo_world(prod: testing.RunningServer) -> None:
    # Guards the in-process feed test above: it is only as good as the world it walks.
    with support.database(prod).session() as db:
        kinds = {a.kind for a in db.execute(select(Authorization)).scalars()}
    assert {"customer", "cca"} <= kinds
