"""The simulator console in-process (Flask's test client): sign-in, cookie, CSRF, headers, each page, and
that its forms steer the same world the API serves. Real Chromium runs are in test_console_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from support.report_traffic import CONTROL, R, Traffic

CONSOLE = "/__sim/console"
HTTPS = "https://sharemydata.example"
TP = "00101"


class Console:
    """A browser's view of the console: HTTPS base URL (the cookie is Secure), the portal surface."""

    def __init__(self, world: Traffic) -> None:
        self.world = world
        self.client = world.app.test_client()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(CONSOLE + path, base_url=HTTPS, environ_base=self.world._environ(None, "portal", 0),
                               **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> Any:
        return self.client.post(CONSOLE + path, data=data, base_url=HTTPS,
                                environ_base=self.world._environ(None, "portal", 0), **kwargs)

    def sign_in(self) -> Any:
        return self.post("/signin", {"control_token": CONTROL, "next": f"{CONSOLE}/"})

    def csrf(self, path: str = "/") -> str:
        html = self.get(path).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    return Traffic(tmp_path_factory.mktemp("console"))


@pytest.fixture
def console(world: Traffic) -> Iterator[Console]:
    world.control("POST", "/reset")
    yield Console(world)


PAGES = {"/": "Overview", "/third-parties": "Third parties", "/world": "World", "/world/rivera-electric": "SA ",
         "/authorizations": "Authorizations", "/requests": "Request log", "/jobs": "Jobs &amp; notifications",
         "/faults": "Faults", "/report": "Integration report"}


def test_every_page_needs_sign_in_and_the_wrong_token_is_refused(console: Console) -> None:
    for path in PAGES:
        response = console.get(path)
        assert response.status_code == 302 and "/__sim/console/signin" in response.headers["Location"]
    assert console.post("/faults/clear", {}).status_code == 403
    wrong = console.post("/signin", {"control_token": "guess"})
    assert wrong.status_code == 401 and "not this server" in wrong.get_data(as_text=True)
    assert "Set-Cookie" not in wrong.headers


def test_sign_in_sets_a_strict_httponly_secure_cookie_scoped_to_the_console(console: Console) -> None:
    response = console.sign_in()
    assert response.status_code == 303 and response.headers["Location"] == f"{CONSOLE}/"
    cookie = response.headers["Set-Cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/__sim/console"):
        assert flag in cookie
    assert CONTROL not in cookie


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_renders_as_a_page_with_the_security_headers(console: Console, path: str) -> None:
    console.sign_in()
    response = console.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert f"<h1>{PAGES[path]}" in html and "<pre>{" not in html
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'none': no scripts
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing fetched from elsewhere


def test_nothing_of_the_console_answers_on_the_api_host(console: Console) -> None:
    console.sign_in()
    for path in ("/", "/signin", "/static/console.css"):
        response = console.client.get(CONSOLE + path, base_url=HTTPS,
                                      environ_base=console.world._environ(TP, "api", 2))
        assert response.status_code == 404


def test_a_form_without_the_csrf_token_changes_nothing(console: Console) -> None:
    console.sign_in()
    before = console.world.control("GET", "/clock")["epoch"]
    refused = console.post("/clock", {"action": "advance", "by": "1d"})
    assert refused.status_code == 403 and "CSRF" in refused.get_data(as_text=True)
    refused = console.post("/clock", {"action": "advance", "by": "1d", "csrf_token": "0" * 40})
    assert refused.status_code == 403
    assert console.world.control("GET", "/clock")["epoch"] - before < 3600


def test_advancing_the_clock_from_the_console_moves_what_the_api_serves(console: Console) -> None:
    world = console.world
    token = world.authorize("rivera", TP)["token"]
    usage_points = f"{R}/Subscription/{token['resourceURI'].rsplit('/', 1)[1]}/UsagePoint"
    assert world.get(usage_points, TP, token["access_token"]).status_code == 200
    console.sign_in()
    moved = console.post("/clock", {"action": "advance", "by": "2h", "csrf_token": console.csrf()})
    assert moved.status_code == 303
    assert "Clock advanced by 2h" in console.get("/?message=Clock+advanced+by+2h").get_data(as_text=True)
    assert world.get(usage_points, TP, token["access_token"]).status_code == 403  # the hour-long token expired


def test_freeze_thaw_and_the_service_status_switch(console: Console) -> None:
    world = console.world
    console.sign_in()
    console.post("/clock", {"action": "freeze", "csrf_token": console.csrf()})
    assert world.control("GET", "/clock")["frozen"] is True
    console.post("/clock", {"action": "thaw", "csrf_token": console.csrf()})
    assert world.control("GET", "/clock")["frozen"] is False
    console.post("/service-status", {"current_status": "0", "csrf_token": console.csrf()})
    status = world.get(f"{R}/ReadServiceStatus", TP, world.token(TP))
    assert "<currentStatus>0</currentStatus>" in status.get_data(as_text=True)
    bad = console.post("/clock", {"action": "advance", "by": "soon", "csrf_token": console.csrf(), "back": ""})
    assert bad.status_code == 303 and "not+a+duration" in bad.headers["Location"]


def test_a_fault_added_from_the_console_fails_the_next_api_call_as_set(console: Console) -> None:
    world = console.world
    console.sign_in()
    added = console.post("/faults", {"kind": "http_error", "path": "*/ReadServiceStatus", "times": "1",
                                     "status": "502", "csrf_token": console.csrf("/faults"), "back": "faults"})
    assert added.status_code == 303 and "added" in added.headers["Location"]
    page = console.get("/faults").get_data(as_text=True)
    assert "http_error" in page and "status=502" in page
    token = world.token(TP)
    assert world.get(f"{R}/ReadServiceStatus", TP, token).status_code == 502
    assert world.get(f"{R}/ReadServiceStatus", TP, token).status_code == 200  # times: 1
    wrong = console.post("/faults", {"kind": "latency", "status": "502", "csrf_token": console.csrf("/faults"),
                                     "back": "faults"})
    assert "does+not+apply" in wrong.headers["Location"]
    console.post("/faults/clear", {"csrf_token": console.csrf("/faults")})
    assert world.control("GET", "/faults")["faults"] == []


def test_the_usage_chart_marks_the_demos_estimate_and_correction(console: Console) -> None:
    console.sign_in()
    corrected = console.get("/world/rivera-electric").get_data(as_text=True)
    bars = re.findall(r'<rect class="bar bar-(\w+)" data-mark="\w+" data-value="([\d.]+)"', corrected)
    assert len(bars) == 21 and all(float(value) > 0 for _, value in bars)
    assert [mark for mark, _ in bars].count("corrected") == 1  # re-read 8 % higher (demo timeline)
    estimated = console.get("/world/harbor-store").get_data(as_text=True)
    assert 'data-mark="estimated"' in estimated  # the missed day, estimated a day after publication
    months = console.get("/world/rivera-electric?span=months").get_data(as_text=True)
    assert len(re.findall(r'<rect class="bar ', months)) >= 2 and "monthly usage" in months
    assert console.get("/world/no-such-sa").status_code == 404


def test_request_log_filters_and_report_page_show_the_traffic(console: Console) -> None:
    world = console.world
    token = world.token(TP)
    for _ in range(4):
        world.get(f"{R}/ReadServiceStatus", TP, token, tick=0.1)
    console.sign_in()
    log = console.get(f"/requests?client_id={TP}&status=200&path=ReadServiceStatus").get_data(as_text=True)
    assert log.count("GET /GreenButtonConnect/espi/1_1/resource/ReadServiceStatus") == 4
    assert token not in log
    refreshing = console.get(f"/requests?client_id={TP}&refresh=1").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="5">' in refreshing
    report = console.get("/report").get_data(as_text=True)
    assert 'id="verdict">FAIL' in report and "rate.vendor_per_second" in report
    assert "PASS" in console.get("/report?client_id=00102").get_data(as_text=True)


def test_signing_out_ends_the_session(console: Console) -> None:
    console.sign_in()
    out = console.post("/signout", {"csrf_token": console.csrf()})
    assert out.status_code == 303
    assert console.get("/").status_code == 302
