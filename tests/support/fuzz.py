"""Hostile requests for the fuzz tests (tests/app/test_fuzz.py in-process, tests/e2e/test_fuzz_tls.py over
real TLS): the strategies, the world they run in and how a request is sent in-process."""

from __future__ import annotations

import base64
import functools
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from support.inprocess import CONTROL_TOKEN, InProcess, build, environ

EXAMPLES = int(os.environ.get("MOCK_CUSTODIAN_FUZZ_EXAMPLES", "2000"))
TLS_EXAMPLES = int(os.environ.get("MOCK_CUSTODIAN_FUZZ_TLS_EXAMPLES", "40"))
BASE = "https://localhost"
# Effects that answer 5xx on purpose (PG&E's maintenance 503, injected faults): a later request of the
# same example may legitimately get one.
DELIBERATE_5XX = ("/__sim/faults", "/__sim/service-status")
PARAMETERS = ["published-min", "published-max", "updated-min", "updated-max", "start", "end", "limit", "since_id",
              "grant_type", "code", "authorization_code", "refresh_token", "redirect_uri", "client_id", "clientId",
              "scope", "state", "response_type", "correlationID", "status", "surface", "method", "path", "inline",
              "next", "m", "login", "username", "password", "token", "to", "at", "by", "hours", "kind", "times",
              "sa", "account", "event", "customer", "service_agreements", "data_groups", "duration", "end_date",
              "estimate_after", "final_after", "factor", "quality", "meter", "current_status", "csrf_token", "action",
              "mode", "account_number", "phone", "email", "select_all", "exchange", "history_months", "yaml"]
HUGE = ["9223372036854775808", "99999999999999999999", "1" + "0" * 400, "-9223372036854775809", "1e308", "1e999",
        "-1", "0", "NaN", "inf", "-0", "00000000000000000001"]
DATES = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-03-08T02:30:00-08:00",
         "10000-01-01T00:00:00Z", "2026-01-01", "2026-01-01T00:00:00", "253402300800", "-62135596800", "1e20",
         "P1D", "1d", "36h", "90m", "PT99999999999H"]
REGISTRATION = {
    "user_type": "Standard User", "legal_name": "Fuzz LLC", "display_name": "Fuzz", "tax_id": "931234567",
    "business_contact": {"name": "B", "email": "b@fuzz.example", "phone": "415-555-0100"},
    "technical_contact": {"name": "T", "email": "t@fuzz.example", "phone": "415-555-0101"},
    "portal_username": "fuzz", "portal_password": "long-enough-1", "security_question": "q", "security_answer": "a",
    "description": "d", "phone": "415-555-0102", "third_party_portal_uri": "https://fuzz.example/start",
    "redirect_uri": "https://fuzz.example/cb", "notification_uri": "https://fuzz.example/notify",
    "data_groups": ["Basic"], "history_months": 36, "visibility": True, "notify_daily": False, "terms_accepted": True,
}
# Per write route, plausible values of the fields it reads: a hostile value in one or two of them gets past
# the others' checks and reaches deep code.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/__sim/authorizations", "POST"): {"customer": "rivera", "client_id": "00101", "data_groups": ["Basic"],
                                        "service_agreements": ["rivera-electric"], "end_date": "2027-01-01",
                                        "exchange": True},
    ("/__sim/clock/advance", "POST"): {"by": "2h", "seconds": 60, "minutes": 1, "hours": 1, "days": 1, "weeks": 1},
    ("/__sim/clock/set", "POST"): {"to": "2026-06-01T00:00:00Z"},
    ("/__sim/clock/freeze", "POST"): {"at": "2026-06-01T00:00:00Z"},
    ("/__sim/data-changes", "POST"): {"kind": "gap", "sa": "rivera-electric", "start": "2026-01-01T00:00:00Z",
                                      "end": "2026-01-02T00:00:00Z", "within": "2026-01-15T00:00:00Z",
                                      "at": "2026-02-01T00:00:00Z", "estimate_after": "1d", "final_after": "3d",
                                      "estimate_quality": 8, "factor": 1.1, "quality": 7, "meter": 1,
                                      "flow_direction": 1},
    ("/__sim/events", "POST"): {"event": "close_sa", "sa": "rivera-gas", "at": "2026-06-01T00:00:00Z",
                                "account": "1234567890", "serial": "ABC"},
    ("/__sim/faults", "POST"): {"kind": "http_error", "path": "/*", "method": "GET", "client_id": "00101",
                                "surface": "api", "times": 1, "probability": 1.0, "params": {}, "seed": 1,
                                "status": 503, "retry_after": 5, "delay_ms": 0, "body_format": "json"},
    ("/__sim/service-status", "POST"): {"current_status": 1},
    ("/__sim/third_parties/<client_id>", "PATCH"): {"notification_uri": "https://fuzz.example/n"},
    ("/__sim/scenario", "POST"): {"builtin": "demo", "yaml": "customers: []"},
    ("/portal/api/registrations", "POST"): REGISTRATION,
    ("/portal/api/registration", "PATCH"): {k: REGISTRATION[k] for k in ("display_name", "description", "phone",
                                                                         "data_groups", "history_months")},
}
NASTY = ["", " ", "../../etc/passwd", "%00", "\x00", "\u202e", "é", "日本", "\ud800", "😀" * 3, "<script>", "'", '"',
         "a" * 5000, "=:", "%", "%%", "+", "null", "true", "[]", "{}", "Bearer", "00101", "rivera", "sunny"]


@dataclass
class World:
    app: InProcess
    snapshot: Path
    rules: list[tuple[str, str, list[str]]]  # (rule, method, variables)
    secrets: dict[str, str]


def _rules(app: InProcess) -> list[tuple[str, str, list[str]]]:
    out = []
    for rule in app.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            out.append((rule.rule, method, list(rule.arguments)))
    return sorted(out)


def make_world(data_dir: Path) -> World:
    """The in-process app after setup (an authorization, a client token), and a snapshot of its database."""
    app = build(data_dir)
    client = app.client()
    control = {"X-Control-Token": CONTROL_TOKEN}
    created = client.post("/__sim/authorizations", json={"customer": "rivera", "client_id": "00101"},
                          headers=control, base_url=BASE, environ_base=environ("portal")).json
    creds = client.get("/__sim/credentials", headers=control, base_url=BASE, environ_base=environ("portal")).json
    tp = next(t for t in creds["third_parties"] if t["client_id"] == "00101")
    basic = base64.b64encode(f"00101:{tp['client_secret']}".encode()).decode()
    cat = client.post("/datacustodian/oauth/v2/token?grant_type=client_credentials", base_url=BASE,
                      headers={"Authorization": f"Basic {basic}"},
                      environ_base=environ("api", app.cert("00101"))).json["client_access_token"]
    secrets = {"at": created["token"]["access_token"], "rt": created["token"]["refresh_token"], "cat": cat,
               "basic": basic, "rat": tp.get("registration_access_token") or "",
               "authorization_id": str(created["authorization_id"])}
    database = app.app.extensions["mock_custodian"].database
    database.dispose()
    snapshot = data_dir / "snapshot.db"
    shutil.copyfile(data_dir / "mock-custodian.db", snapshot)
    return World(app, snapshot, _rules(app), secrets)


def restore(world: World) -> None:
    """Back to the world as setup left it: the database file replaced by the snapshot."""
    database = world.app.app.extensions["mock_custodian"].database
    database.dispose()
    db_file = world.app.data_dir / "mock-custodian.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(world.snapshot, db_file)


def _wire(text: str) -> str:
    """What a string can be after crossing the wire: valid UTF-8 (a lone surrogate cannot be sent)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _header(text: str) -> str:
    """A header value as WSGI presents it: the UTF-8 bytes sent, read as latin-1."""
    return _wire(text).encode("utf-8").decode("latin-1")


# Strategies are immutable: built once and reused, they draw exactly what fresh ones would, without
# hypothesis validating a new strategy tree on every draw (most of the run's time otherwise).
_VALUES: dict[int, st.SearchStrategy[str]] = {}


def _value(world: World) -> st.SearchStrategy[str]:
    if id(world) not in _VALUES:
        known = [world.secrets["authorization_id"], "00101", "00102", "rivera-electric", "1", "2"]
        _VALUES[id(world)] = st.one_of(st.sampled_from(HUGE + DATES + NASTY + known), st.text(max_size=40),
                                       st.integers(min_value=-(10**30), max_value=10**30).map(str)).map(_wire)
    return _VALUES[id(world)]


@functools.cache
def _json_value() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                        st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e30, -1e30, 1e308]),
                        st.sampled_from(HUGE + DATES + NASTY).map(_wire), st.text(max_size=20).map(_wire))
    keys = st.text(max_size=10).map(_wire)
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(keys, inner, max_size=3)),
                        max_leaves=6)


@st.composite
def request_spec(draw: st.DrawFn, world: World) -> dict[str, Any]:
    writes = [r for r in world.rules if (r[0], r[1]) in BODIES]
    rule, method, variables = draw(st.sampled_from(writes) if draw(st.booleans())
                                   else st.sampled_from(world.rules))
    path = rule
    for name in variables:
        value = draw(_value(world))
        converter = f"<int:{name}>" in rule
        if converter:
            value = draw(st.one_of(st.sampled_from(HUGE[:3] + ["1", "0"]), st.integers(0, 10**25).map(str)))
        path = path.replace(f"<int:{name}>", quote(value, safe="")).replace(f"<{name}>", quote(value, safe=""))
    query = draw(st.lists(st.tuples(st.sampled_from(PARAMETERS), _value(world)), max_size=4))
    headers: dict[str, str] = {}
    auth = draw(st.sampled_from(["none", "at", "cat", "rt", "rat", "basic", "bad-basic", "bearer-junk"]))
    if auth in ("at", "cat", "rt", "rat"):
        headers["Authorization"] = f"Bearer {world.secrets[auth]}"
    elif auth == "basic":
        headers["Authorization"] = f"Basic {world.secrets['basic']}"
    elif auth == "bad-basic":
        headers["Authorization"] = draw(st.sampled_from([
            "Basic", "Basic ", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(),
            "Basic " + base64.b64encode("é:ü".encode("latin-1")).decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:").decode(),
            "Basic =", "basic " + "A" * 3000]))
    elif auth == "bearer-junk":
        headers["Authorization"] = "Bearer " + draw(st.sampled_from(NASTY[:12] + HUGE[:3]))
    if path.startswith("/__sim/") and draw(st.booleans() | st.just(True)):
        headers["X-Control-Token"] = CONTROL_TOKEN
    headers = {name: _header(value) for name, value in headers.items()}
    body_kind = draw(st.sampled_from(["none", "json", "form", "raw", "wrong-type-json"]))
    request: dict[str, Any] = {"method": method, "path": path, "query": query, "headers": headers}
    if method not in ("GET", "HEAD", "DELETE") or body_kind == "raw":
        if body_kind == "json" or (rule, method) in BODIES:
            plausible = BODIES.get((rule, method), {})
            names = [n for n in plausible if draw(st.integers(0, 4))] or list(plausible)[:1]
            body = {name: plausible[name] for name in names}
            fields = list(plausible) or PARAMETERS
            for name in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=2)):
                body[name] = draw(_json_value())
            request["json"] = body
        elif body_kind == "wrong-type-json":
            request["json"] = draw(_json_value())
        elif body_kind == "form":
            request["data"] = draw(st.lists(st.tuples(st.sampled_from(PARAMETERS), _value(world)), max_size=5))
        elif body_kind == "raw":
            request["raw"] = draw(st.binary(max_size=64))
            request["headers"]["Content-Type"] = draw(st.sampled_from(
                ["text/plain", "application/json", "application/x-www-form-urlencoded", "multipart/form-data",
                 "application/xml", "application/json; charset=utf-16"]))
    api_side = not path.startswith("/__sim/") and draw(st.booleans())
    request["surface"] = "api" if api_side else "portal"
    request["cert"] = api_side and draw(st.sampled_from([True, True, False]))
    return request


class Crashes(logging.Handler):
    """Records the app's own 'unexpected error' log lines: the blanket 500 a fix must never rely on."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def send(world: World, spec: dict[str, Any]) -> Any:
    client = world.app.client()
    certificate = world.app.cert("00101") if spec["cert"] else None
    kwargs: dict[str, Any] = {"headers": spec["headers"], "query_string": MultiDict(spec["query"]), "base_url": BASE,
                              "environ_base": environ(spec["surface"], certificate)}
    if "json" in spec:
        kwargs["json"] = spec["json"]
    elif "data" in spec:
        kwargs["data"] = MultiDict(spec["data"])
    elif "raw" in spec:
        kwargs["data"] = spec["raw"]
    return client.open(spec["path"], method=spec["method"], **kwargs)
