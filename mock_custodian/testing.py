"""Start the real server (gunicorn, TLS, client certificates) on random local ports, for tests and demos.

``with mock_custodian.running() as pge:`` gives a handle with the base URLs, the CA bundle, every
third party's credentials, and the test-double controls (clock, reset, scenarios, faults, the
request log, notifications, jobs, direct consent). The controls are thin calls of the ``/__sim/``
control API, so anything the handle does a suite in another language can do with plain HTTP.
"""

from __future__ import annotations

import datetime as dt
import html as html_module
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

READY_TIMEOUT_S = 30.0
CONTROL_TIMEOUT_S = 60.0


class ControlAPIError(RuntimeError):
    """A control call the server refused; ``status`` and ``body`` say why."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body}")
        self.status = status
        self.body = body


class SimulatedClock:
    """The server's one clock (stored in its database, so every worker agrees)."""

    def __init__(self, server: RunningServer) -> None:
        self._server = server

    def state(self) -> dict[str, Any]:
        """``now`` (ISO, UTC), ``epoch``, ``local`` (Pacific), ``frozen``, ``offset_s``."""
        return self._server.control("GET", "/clock")

    def now(self) -> dt.datetime:
        return _as_datetime(self.state()["epoch"])

    def advance(self, delta: dt.timedelta | float | str | None = None, *, seconds: float = 0, minutes: float = 0,
                hours: float = 0, days: float = 0, weeks: float = 0) -> dt.datetime:
        """Move simulated time: ``advance(hours=2)``, ``advance(timedelta(days=1))``, ``advance("PT2H")``."""
        total = seconds + minutes * 60 + hours * 3600 + days * 86400 + weeks * 604800
        body: dict[str, Any] = {"seconds": total}
        if isinstance(delta, dt.timedelta):
            body["seconds"] += delta.total_seconds()
        elif isinstance(delta, str):
            body["by"] = delta
        elif delta is not None:
            body["seconds"] += float(delta)
        return _as_datetime(self._server.control("POST", "/clock/advance", json=body)["epoch"])

    def set(self, instant: dt.datetime | str | float) -> dt.datetime:
        """Make now ``instant`` (an aware datetime, ISO 8601 with a zone, or epoch seconds)."""
        return _as_datetime(self._server.control("POST", "/clock/set", json={"to": _instant(instant)})["epoch"])

    def freeze(self, at: dt.datetime | str | float | None = None) -> dt.datetime:
        """Stop simulated time (at now, or at ``at``); it then moves only when the test moves it."""
        body = {} if at is None else {"at": _instant(at)}
        return _as_datetime(self._server.control("POST", "/clock/freeze", json=body)["epoch"])

    def thaw(self) -> dt.datetime:
        """Let simulated time run again from where it stands."""
        return _as_datetime(self._server.control("POST", "/clock/thaw")["epoch"])

    unfreeze = thaw


def _as_datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _instant(value: dt.datetime | str | float) -> str | float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("give an aware datetime (with tzinfo); simulated time is an instant")
        return value.timestamp()
    return value


@dataclass
class RunningServer:
    """A live mock-custodian process and what a client needs to talk to it and to control it."""

    process: subprocess.Popen
    data_dir: Path
    api_base_url: str
    portal_base_url: str
    ca_bundle: str
    credentials: dict[str, Any]
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    control_token: str | None = None
    started_scenario: dict[str, Any] = field(default_factory=dict)  # what was loaded at start (digest, path)

    # --- connecting -----------------------------------------------------------------------------
    def third_party(self, client_id: str) -> dict[str, Any]:
        for tp in self.credentials["third_parties"]:
            if tp["client_id"] == client_id:
                return tp
        raise KeyError(client_id)

    def cert(self, client_id: str) -> tuple[str, str]:
        """``requests``' ``cert=`` value: the chain file (leaf + intermediate) and the key."""
        tp = self.third_party(client_id)
        return tp["certificate_chain"], tp["key"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    # --- the control API ------------------------------------------------------------------------
    def control(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                data: bytes | str | None = None, headers: dict[str, str] | None = None, raw: bool = False) -> Any:
        """Call ``/__sim{path}`` with the control token; the parsed JSON (or the response, ``raw``)."""
        if not self.control_token:
            raise ControlAPIError(method, path, 0, "this server runs without a control API (control_api=false)")
        sent = {"X-Control-Token": self.control_token, **(headers or {})}
        response = requests.request(method, f"{self.portal_base_url}/__sim{path}", json=json, params=params,
                                    data=data, headers=sent, verify=self.ca_bundle, timeout=CONTROL_TIMEOUT_S)
        if response.status_code >= 400:
            raise ControlAPIError(method, path, response.status_code, response.text)
        if raw:
            return response
        return response.json() if response.content else None

    @property
    def clock(self) -> SimulatedClock:
        return SimulatedClock(self)

    def reset(self) -> dict[str, Any]:
        """Back to the loaded scenario: world, tokens, clock, request log, faults and sink start over."""
        loaded = self.control("POST", "/reset")
        self.refresh_credentials()
        return loaded

    def restore(self) -> dict[str, Any]:
        """Back to the scenario the server started with (even after ``load_scenario``), freshly loaded."""
        current = self.control("GET", "/scenario")
        if not self.started_scenario or current.get("digest") == self.started_scenario.get("digest"):
            return self.reset()
        loaded = self.control("POST", "/scenario", json={"path": self.started_scenario["path"]})
        self.refresh_credentials()
        return loaded

    def load_scenario(self, scenario: Path | str) -> dict[str, Any]:
        """Replace the world with a scenario: a file path, a built-in name (``catalog``), or YAML text."""
        from mock_custodian.scenario.parse import BUILTIN_SCENARIOS

        if isinstance(scenario, str) and scenario in BUILTIN_SCENARIOS and not _is_path(scenario):
            loaded = self.control("POST", "/scenario", json={"builtin": scenario})
            self.refresh_credentials()
            return loaded
        text = Path(scenario).read_text() if _is_path(scenario) else str(scenario)
        loaded = self.control("POST", "/scenario", data=text.encode(), headers={"Content-Type": "application/yaml"})
        self.refresh_credentials()
        return loaded

    def refresh_credentials(self) -> dict[str, Any]:
        self.credentials = self.control("GET", "/credentials")
        return self.credentials

    # --- what happened --------------------------------------------------------------------------
    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """Requests clients sent, oldest first: method, path, query, headers (secrets redacted), the
        certificate presented (``certificate.registered_to``), status, error and reason.

        Filters: ``client_id``, ``method``, ``path`` (``*`` globs), ``status``, ``surface``, ``since_id``.
        """
        return self.control("GET", "/requests", params={k: v for k, v in filters.items() if v is not None})[
            "requests"]

    def clear_requests(self) -> None:
        self.control("DELETE", "/requests")

    def report(self, client_id: str | None = None, since: str | float | None = None,
               since_id: int | None = None) -> dict[str, Any]:
        """The integration report: would this traffic pass at PG&E? (rules in docs/report-and-console.md)

        ``verdict`` (pass | fail), ``errors``, ``warnings`` and ``findings`` (rule, severity, client_id,
        count, first/last request-log ids, message, spec section). Gate a suite with
        ``assert pge.report()["errors"] == 0``. Default period: since the last reset.
        """
        params = {"client_id": client_id, "since": since, "since_id": since_id}
        return self.control("GET", "/report", params={k: v for k, v in params.items() if v is not None})

    def notifications(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Notifications the data custodian owes or sent: uri, body, status, and each attempt's outcome."""
        return self.control("GET", "/notifications", params={"client_id": client_id} if client_id else None)[
            "notifications"]

    def jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        return self.control("GET", "/jobs", params={"status": status} if status else None)["jobs"]

    def release_jobs(self) -> dict[str, list]:
        """Make every waiting asynchronous job and notification retry due now (no waiting out delays)."""
        return self.control("POST", "/jobs/release")["released"]

    def sink_url(self, name: str = "default") -> str:
        """An https URL (portal listener) that records every POST: register it as a notification URI."""
        return f"{self.portal_base_url}/__sim/sink/{name}"

    def use_sink(self, client_id: str, name: str | None = None) -> str:
        """Register the sink as ``client_id``'s notification URI (PG&E's notifications then land there)."""
        url = self.sink_url(name or client_id)
        self.control("PATCH", f"/third_parties/{client_id}", json={"notification_uri": url})
        self.refresh_credentials()
        return url

    def sink(self, name: str = "default") -> list[dict[str, Any]]:
        """What the sink received: body, headers, content type, time."""
        return self.control("GET", f"/sink/{name}")["posts"]

    # --- faults ---------------------------------------------------------------------------------
    def fault(self, kind: str, **spec: Any) -> dict[str, Any]:
        """Configure one fault, e.g. ``fault("maintenance", path="*/ReadServiceStatus", times=1)``;
        kind parameters may be given flat (``status=502, body_format="html"``)."""
        return self.control("POST", "/faults", json={"kind": kind, **spec})

    def faults(self) -> list[dict[str, Any]]:
        return self.control("GET", "/faults")["faults"]

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    # --- consent ----------------------------------------------------------------------------------
    def customers(self) -> list[dict[str, Any]]:
        """The loaded world's customers, accounts and SAs (keys, SA numbers, usage point ids)."""
        return self.control("GET", "/customers")["customers"]

    def authorize(self, customer: str, third_party: str, service_agreements: list[str] | None = None,
                  groups: list[str] | None = None, *, password: str | None = None,
                  via: str = "consent", exchange: bool = True) -> dict[str, Any]:
        """A customer's consent for ``third_party`` (a client_id), then the code exchange.

        Returns ``authorization_id``, ``code`` (already exchanged), ``scope`` and ``token`` (PG&E's
        token response). ``service_agreements`` are SA keys, SA numbers or usage point ids (default:
        all); ``groups`` data groups (default: all the third party registered).

        ``via="consent"`` (default) drives the real pages as a browser would: sign in on
        ``/myAuthorization`` (password default ``demo``), tick the choices, Submit, take
        ``authorization_code`` from the redirect, and exchange it at the token endpoint with the third
        party's certificate. ``via="control"`` uses ``POST /__sim/authorizations`` (the same backend,
        no pages), for tests that do not care about consent. ``exchange=False`` stops at the code
        (``token`` None), for a test whose own code exchanges it.
        """
        if via == "control":
            created = self.control("POST", "/authorizations", json={
                "customer": customer, "client_id": third_party, "service_agreements": service_agreements,
                "data_groups": groups, "exchange": exchange})
            return {"via": "control", "authorization_id": created["authorization_id"],
                    "code": created["authorization_code"], "token": created["token"], "scope": created["scope"],
                    "redirect_uri": self.third_party(third_party)["redirect_uri"]}
        if via != "consent":
            raise ValueError("via is consent or control")
        return ConsentBrowser(self).authorize(customer, third_party, service_agreements, groups, password, exchange)


def _is_path(value: Path | str) -> bool:
    if isinstance(value, Path):
        return True
    return "\n" not in value and len(value) < 4096 and Path(value).exists()


# --- the real consent flow, as a browser would do it ------------------------------------------------


class _Forms(HTMLParser):
    """Every form on a page: its action and its inputs (name, type, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "inputs": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append({"name": a.get("name", ""), "type": a.get("type", "text").lower(),
                                             "value": a.get("value", "")})


def _form(html: str, action_suffix: str) -> dict[str, Any]:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if form["action"].endswith(action_suffix):
            return form
    raise ControlAPIError("GET", "/myAuthorization", 200, f"no {action_suffix} form on the page: "
                          + _page_message(html))


def _page_message(html: str) -> str:
    """The visible problem text of a page (its alert or first paragraphs), for error messages."""
    found = re.findall(r'<(?:div|p)[^>]*(?:role="alert"|class="(?:errors|lead)")[^>]*>(.*?)</(?:div|p)>', html, re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", f) for f in found) or re.sub(r"<[^>]+>", " ", html)[:400]
    return re.sub(r"\s+", " ", html_module.unescape(text)).strip()[:500]


class ConsentBrowser:
    """Drives ``/myAuthorization`` over HTTP like a customer's browser (cookies, forms; no JavaScript)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.verify = server.ca_bundle  # per call: an environment CA bundle would override Session.verify

    def authorize(self, customer: str, client_id: str, service_agreements: list[str] | None,
                  groups: list[str] | None, password: str | None, exchange: bool = True) -> dict[str, Any]:
        tp = self.server.third_party(client_id)
        redirect_uri = tp.get("redirect_uri")
        if not redirect_uri:
            raise ControlAPIError("GET", "/myAuthorization", 0, f"{client_id} has no redirect URI to consent for")
        portal = self.server.portal_base_url
        state = f"mock-custodian-{time.time_ns()}"
        page = self.session.get(f"{portal}/myAuthorization", params={
            "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "state": state},
            allow_redirects=False, timeout=30, verify=self.verify)
        if page.status_code != 200:
            raise ControlAPIError("GET", "/myAuthorization", page.status_code, _page_message(page.text))
        signin = _form(page.text, "/signin")
        fields = [(i["name"], i["value"]) for i in signin["inputs"] if i["type"] == "hidden"]
        fields += [("username", customer), ("password", password or "demo"), ("action", "signin")]
        signed = self.session.post(urljoin(page.url, signin["action"]), data=fields, allow_redirects=False,
                                   timeout=30, verify=self.verify)
        if signed.status_code != 303:
            raise ControlAPIError("POST", "/myAuthorization/signin", signed.status_code, _page_message(signed.text))
        page = self.session.get(urljoin(signed.url, signed.headers["Location"]), allow_redirects=False, timeout=30,
                                verify=self.verify)
        consent = _form(page.text, "/consent")
        fields = [(i["name"], i["value"]) for i in consent["inputs"] if i["type"] == "hidden"]
        offered = [i["value"] for i in consent["inputs"] if i["name"] == "data_groups"]
        for group in (offered if groups is None else groups):
            fields.append(("data_groups", group))
        if service_agreements is None:
            fields.append(("select_all", "1"))
        else:
            for sa_id in self._service_agreement_ids(customer, service_agreements, page.text):
                fields.append(("service_agreements", sa_id))
        fields += [("duration", "indefinite"), ("action", "submit")]
        done = self.session.post(urljoin(page.url, consent["action"]), data=fields, allow_redirects=False,
                                 timeout=30, verify=self.verify)
        location = done.headers.get("Location", "")
        if done.status_code != 302 or not location.startswith(redirect_uri):
            raise ControlAPIError("POST", "/myAuthorization/consent", done.status_code, _page_message(done.text))
        query = parse_qs(urlsplit(location).query)
        if "error" in query:
            raise ControlAPIError("POST", "/myAuthorization/consent", 302, f"consent refused: {query['error'][0]}")
        code = (query.get("authorization_code") or query.get("code") or [""])[0]
        scope = (query.get("scope") or [""])[0]
        if not exchange:
            return {"via": "consent", "authorization_id": None, "code": code, "token": None, "scope": scope,
                    "redirect_uri": redirect_uri}
        token = requests.post(
            f"{self.server.api_base_url}/datacustodian/oauth/v2/token",
            params={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(tp["client_id"], tp["client_secret"]), cert=self.server.cert(client_id),
            verify=self.server.ca_bundle, timeout=30,
        )
        if token.status_code != 200:
            raise ControlAPIError("POST", "/datacustodian/oauth/v2/token", token.status_code, token.text)
        body = token.json()
        authorization_id = int(body["authorizationURI"].rstrip("/").rsplit("/", 1)[-1])
        return {"via": "consent", "authorization_id": authorization_id, "code": code, "token": body,
                "scope": scope, "redirect_uri": redirect_uri}

    def _service_agreement_ids(self, customer: str, refs: list[str], html: str) -> list[str]:
        """The consent form's checkbox values for SAs named by key, SA number or usage point id."""
        sa_numbers = {}
        for person in self.server.customers():
            if customer in (person["key"], person["username"]):
                for account in person["accounts"]:
                    for sa in account["service_agreements"]:
                        for ref in (sa["key"], sa["sa_number"], sa["usage_point_id"]):
                            sa_numbers[ref] = sa["sa_number"]
        on_page = dict(re.findall(r'<label for="sa-(\d+)">[^<]*SA (\d+)', html))
        by_number = {number: box for box, number in on_page.items()}
        ids = []
        for ref in refs:
            number = sa_numbers.get(str(ref))
            if number is None or number not in by_number:
                raise ControlAPIError("GET", "/myAuthorization", 200,
                                      f"service agreement {ref!r} is not offered to {customer} on the consent page")
            ids.append(by_number[number])
        return ids


# --- starting and stopping ----------------------------------------------------------------------


def start(
    data_dir: Path | str,
    *,
    scenario: Path | str | None = None,
    workers: int = 1,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    new_session: bool = False,
) -> RunningServer:
    """Start ``mock-custodian serve`` on random ports in ``data_dir`` and wait until it answers.

    ``settings`` are Settings fields (``{"client_token_ttl": 300}``), passed as ``MOCK_CUSTODIAN_*``.
    ``new_session`` puts the server (and its workers) in a process group of its own, so a test can
    kill the whole group with ``os.killpg``.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime_file = data_dir / "server.json"
    if runtime_file.exists():
        runtime_file.unlink()
    args = [sys.executable, "-m", "mock_custodian", "serve", "--data-dir", str(data_dir),
            "--api-port", "0", "--portal-port", "0", "--workers", str(workers)]
    if scenario is not None:
        args += ["--scenario", str(scenario)]
    args += list(extra_args or [])
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_CUSTODIAN_")}
    # Rate limits are on in `mock-custodian serve` but off in test servers unless a test asks for them.
    child_env["MOCK_CUSTODIAN_RATE_LIMITS_ENABLED"] = "false"
    for name, value in (settings or {}).items():
        child_env[f"MOCK_CUSTODIAN_{name.upper()}"] = env_value(value)
    child_env.update(env or {})
    log_path = data_dir / "server.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=child_env,
                               start_new_session=new_session)
    log_file.close()
    deadline = time.monotonic() + READY_TIMEOUT_S
    info = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mock-custodian exited with {process.returncode}:\n{log_path.read_text()}")
        if runtime_file.exists():
            try:
                info = json.loads(runtime_file.read_text())
                if _healthy(info):
                    break
            except (ValueError, requests.RequestException):
                pass
        time.sleep(0.05)
    else:
        process.kill()
        process.wait(5)
        raise RuntimeError(f"mock-custodian did not become ready in {READY_TIMEOUT_S}s:\n{log_path.read_text()}")
    server = RunningServer(
        process=process,
        data_dir=data_dir,
        api_base_url=info["api_base_url"],
        portal_base_url=info["portal_base_url"],
        ca_bundle=info["ca_bundle"],
        credentials={},
        log_path=log_path,
        args=args,
        env=child_env,
        control_token=info.get("control_token"),
    )
    try:
        if server.control_token:
            server.refresh_credentials()
            server.started_scenario = server.control("GET", "/scenario")
        else:
            creds = subprocess.run(
                [sys.executable, "-m", "mock_custodian", "credentials", "--json", "--data-dir", str(data_dir)],
                check=True, capture_output=True, text=True, env=child_env,
            )
            server.credentials = json.loads(creds.stdout)
    except BaseException:
        server.stop()
        raise
    return server


def env_value(value: Any) -> str:
    """A setting as its MOCK_CUSTODIAN_* environment variable spells it (booleans true/false, lists comma-joined)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _healthy(info: dict[str, Any]) -> bool:
    response = requests.get(f"{info['portal_base_url']}/__sim/health", verify=info["ca_bundle"], timeout=2)
    return response.status_code == 200


@contextmanager
def running(
    scenario: Path | str | None = None,
    *,
    data_dir: Path | str | None = None,
    workers: int = 1,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
) -> Iterator[RunningServer]:
    """A server for the duration of a ``with`` block, in a temporary data dir unless one is given."""
    with tempfile.TemporaryDirectory(prefix="mock-custodian-") as tmp:
        server = start(data_dir or tmp, scenario=scenario, workers=workers, extra_args=extra_args, env=env,
                       settings=settings)
        try:
            yield server
        finally:
            server.stop()
