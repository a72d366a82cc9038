"""Simulator scaffolding under ``/__sim/`` (spec 1.4): never on PG&E's paths.

The control API a third party's test suite, in any language, drives: clock, reset and scenarios,
credentials, the request log, jobs and notifications, direct authorizations, faults, and a
record-only notification sink. Every call but ``health``, ``openapi.json`` and the sink's POST
needs ``X-Control-Token`` (or ``Authorization: Bearer``) with the server's control token.
Handlers parse, call one backend in ``store/control.py`` or ``store/faults.py``, render JSON.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue

from mock_custodian import tls
from mock_custodian.api import lifecycle_control, report_control
from mock_custodian.api.openapi import openapi_document
from mock_custodian.domain import client_credentials, control, customer_add, faults, observations
from mock_custodian.domain.scope import authorization_scope
from mock_custodian.domain.world import loaded_scenario, third_party_credentials
from mock_custodian.errors import ControlError, ControlNotFound, ControlUnauthorized, NoListener
from mock_custodian.oauth.token import customer_token_payload
from mock_custodian.redaction import REDACTED_HEADERS
from mock_custodian.scenario.parse import BUILTIN_SCENARIOS, ScenarioError, load_scenario_file
from mock_custodian.web.context import runtime, surface
from mock_custodian.web.http import int_arg, json_object_body, ordered_json

blueprint = Blueprint("sim", __name__, url_prefix="/__sim")
# The world changing over time and the integration report: their own modules, under this blueprint's
# control-token check.
blueprint.register_blueprint(lifecycle_control.blueprint)
blueprint.register_blueprint(report_control.blueprint)

OPEN_ENDPOINTS = {"sim.health", "sim.openapi", "sim.sink_receive"}
CERT_FILES = {"cert.pem": "cert.pem", "chain.pem": "chain.pem", "key.pem": "key.pem"}


@blueprint.before_request
def _require_control_token() -> None:
    """Only the holder of the control token drives the simulator; health stays open for probes."""
    settings = runtime().settings
    if request.endpoint == "sim.health":
        return None
    if not settings.control_api:
        raise NoListener(request.path)
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    expected = settings.control_token
    presented = request.headers.get("X-Control-Token")
    if presented is None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        presented = value.strip() if scheme.lower() == "bearer" else None
    if not expected:
        raise ControlUnauthorized("this server has no control token configured (set MOCK_CUSTODIAN_CONTROL_TOKEN)")
    if not presented:
        raise ControlUnauthorized("send the control token in X-Control-Token (printed at start-up and in "
                                  "server.json, or MOCK_CUSTODIAN_CONTROL_TOKEN)")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ControlUnauthorized("wrong control token")
    return None


def _clock_response(status: int = 200) -> ResponseReturnValue:
    rt = runtime()
    return ordered_json(control.clock_view(rt.clock.state(), rt.clock.real_epoch())), status


# --- open ---------------------------------------------------------------------------------------


@blueprint.route("/health", methods=["GET"])
def health() -> ResponseReturnValue:
    """Liveness for containers and test fixtures: answers on both listeners, no certificate needed."""
    rt = runtime()
    scenario = loaded_scenario(rt.database)
    return ordered_json(
        status="ok",
        worker_pid=os.getpid(),
        scenario=scenario["name"] if scenario else None,
        clock=rt.clock.now().isoformat().replace("+00:00", "Z"),
    )


@blueprint.route("/openapi.json", methods=["GET"])
def openapi() -> ResponseReturnValue:
    """This API's OpenAPI document: the hand-written operations plus any /__sim/ route added elsewhere."""
    routes = [(rule.rule, rule.endpoint, set(rule.methods or ()), current_app.view_functions.get(rule.endpoint))
              for rule in current_app.url_map.iter_rules() if rule.endpoint.startswith(f"{blueprint.name}.")]
    return ordered_json(openapi_document(runtime().portal_base_url(), routes))


@blueprint.route("/sink/<name>", methods=["POST"])
def sink_receive(name: str) -> ResponseReturnValue:
    """The record-only notification receiver a third party can register as its notification URI.

    ``?status=500`` (any 200-599) makes it answer that status: a receiver that is down, still recorded.
    """
    rt = runtime()
    answer = request.args.get("status", "200")
    if not answer.isdigit() or not 200 <= int(answer) <= 599:
        raise ControlError(f"status must be an HTTP status from 200 to 599 (got {answer!r})")
    headers = {k: ("[redacted]" if k.lower() in REDACTED_HEADERS else v) for k, v in request.headers.items()}
    peer = request.environ.get(tls.ENVIRON_KEY)
    with rt.database.session() as db:
        observations.record_sink_post(
            db, name, now=rt.clock.epoch(), surface=surface(), query=request.query_string.decode("latin-1"),
            headers=headers, content_type=request.content_type, body=request.get_data(),
            certificate_sha256=peer.fingerprint_sha256 if peer is not None else None,
        )
    return Response("", int(answer), content_type="text/plain;charset=UTF-8")


# --- credentials ----------------------------------------------------------------------------------


@blueprint.route("/credentials", methods=["GET"])
def credentials() -> ResponseReturnValue:
    """What ``mock-custodian credentials --json`` prints; ``?inline=pem`` adds the PEM texts."""
    rt = runtime()
    server = {"api_base_url": rt.api_base_url(), "portal_base_url": rt.portal_base_url()}
    creds = third_party_credentials(rt.database, rt.pki, server)
    creds["sink_base_url"] = f"{rt.portal_base_url()}/__sim/sink"
    inline = request.args.get("inline")
    if inline not in (None, "", "pem"):
        raise ControlError("inline must be pem")
    if inline == "pem":
        creds["ca_bundle_pem"] = rt.pki.ca_bundle.read_text()
        for tp in creds["third_parties"]:
            for key in ("certificate", "key", "certificate_chain"):
                tp[f"{key}_pem"] = Path(tp[key]).read_text()
    return ordered_json(creds)


@blueprint.route("/ca.pem", methods=["GET"])
def ca_bundle() -> ResponseReturnValue:
    return Response(runtime().pki.ca_bundle.read_bytes(), 200, content_type="application/x-pem-file")


@blueprint.route("/credentials/<client_id>/<filename>", methods=["GET"])
def credential_file(client_id: str, filename: str) -> ResponseReturnValue:
    """One client's certificate files: ``cert.pem``, ``chain.pem``, ``key.pem`` or ``bundle.p12``."""
    rt = runtime()
    with rt.database.session() as db:
        folder = client_credentials.client_folder(rt.pki, db, client_id)
    if filename in CERT_FILES:
        return Response((folder / CERT_FILES[filename]).read_bytes(), 200, content_type="application/x-pem-file")
    if filename == "bundle.p12":
        blob = client_credentials.pkcs12_bundle(folder, rt.pki.intermediate_cert_path, client_id,
                                                request.args.get("password"))
        response = Response(blob, 200, content_type="application/x-pkcs12")
        response.headers["Content-Disposition"] = f'attachment; filename="{client_id}.p12"'
        return response
    raise ControlNotFound(f"no file {filename!r}; use cert.pem, chain.pem, key.pem or bundle.p12")


# --- world ----------------------------------------------------------------------------------------


@blueprint.route("/scenario", methods=["GET"])
def scenario_info() -> ResponseReturnValue:
    return ordered_json(loaded_scenario(runtime().database) or {})


@blueprint.route("/scenario", methods=["POST"])
def scenario_load() -> ResponseReturnValue:
    """Load another world: the YAML itself as the body, or JSON ``{"yaml": ...}`` / ``{"path": ...}``."""
    rt = runtime()
    try:
        if request.mimetype in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"):
            scenario = control.scenario_from_upload(request.get_data(as_text=True), rt.settings.resolved_data_dir())
        else:
            body = json_object_body()
            if isinstance(body.get("yaml"), str):
                scenario = control.scenario_from_upload(body["yaml"], rt.settings.resolved_data_dir())
            elif isinstance(body.get("path"), str):
                scenario = load_scenario_file(Path(body["path"]).resolve())
            elif isinstance(body.get("builtin"), str) and body["builtin"] in BUILTIN_SCENARIOS:
                scenario = load_scenario_file(BUILTIN_SCENARIOS[body["builtin"]])
            else:
                raise ControlError("send the scenario YAML (Content-Type application/yaml), or JSON with yaml, "
                                   f"path (a file the server can read) or builtin: {' or '.join(BUILTIN_SCENARIOS)}")
    except ScenarioError as exc:
        raise ControlError(f"scenario error: {exc}", "invalid_scenario") from None
    control.reload_world(rt.database, rt.pki, scenario)
    return ordered_json(loaded_scenario(rt.database) or {})


@blueprint.route("/reset", methods=["POST"])
def reset() -> ResponseReturnValue:
    """Back to the loaded scenario: world, tokens, clock, logs, faults and sink all start over."""
    rt = runtime()
    try:
        scenario = control.current_scenario(rt.database, rt.settings.scenario)
    except ScenarioError as exc:
        raise ControlError(f"scenario error: {exc}", "invalid_scenario") from None
    control.reload_world(rt.database, rt.pki, scenario)
    return ordered_json(loaded_scenario(rt.database) or {})


# --- clock ----------------------------------------------------------------------------------------


@blueprint.route("/clock", methods=["GET"])
def clock_get() -> ResponseReturnValue:
    return _clock_response()


@blueprint.route("/clock/advance", methods=["POST"])
def clock_advance() -> ResponseReturnValue:
    """Move simulated time: ``{"seconds": 7200}``, ``{"hours": 2}``, or ``{"by": "PT2H" | "2h"}``."""
    body = json_object_body()
    units = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
    unknown = set(body) - set(units) - {"by"}
    if unknown:
        raise ControlError(f"unknown field(s) {sorted(unknown)}; use by, seconds, minutes, hours, days, weeks")
    if not body:
        raise ControlError("say how far: by (e.g. \"2h\", \"PT2H\") or seconds/minutes/hours/days/weeks")
    seconds = control.parse_duration(body["by"], "by") if "by" in body else 0.0
    for name, factor in units.items():
        if name in body:
            seconds += control.parse_duration(control.parse_duration(body[name], name) * factor, name)
    rt = runtime()
    with rt.database.session() as db:
        control.advance_clock(db, seconds, rt.clock.real_epoch())
    return _clock_response()


@blueprint.route("/clock/set", methods=["POST"])
def clock_set() -> ResponseReturnValue:
    """Make now a given instant: ``{"to": "2026-03-01T00:00:00Z"}`` (a frozen clock stays frozen)."""
    body = json_object_body()
    if "to" not in body:
        raise ControlError("send {\"to\": INSTANT} (ISO 8601 with Z or an offset, or epoch seconds)")
    instant = control.parse_instant_value(body["to"], "to")
    rt = runtime()
    with rt.database.session() as db:
        control.set_clock(db, instant, rt.clock.real_epoch())
    return _clock_response()


@blueprint.route("/clock/freeze", methods=["POST"])
def clock_freeze() -> ResponseReturnValue:
    """Stop simulated time, at now or at ``{"at": INSTANT}``."""
    body = json_object_body()
    at = control.parse_instant_value(body["at"], "at") if body.get("at") is not None else None
    rt = runtime()
    with rt.database.session() as db:
        control.freeze_clock(db, rt.clock.real_epoch(), at)
    return _clock_response()


@blueprint.route("/clock/thaw", methods=["POST"])
def clock_thaw() -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        control.thaw_clock(db, rt.clock.real_epoch())
    return _clock_response()


# --- request log, jobs, notifications, sink ----------------------------------------------------------


@blueprint.route("/requests", methods=["GET"])
def requests_list() -> ResponseReturnValue:
    """What clients sent (secrets redacted) and got: filters client_id, method, path (glob), status,
    surface, since_id, limit."""
    rt = runtime()
    surface_arg = request.args.get("surface")
    if surface_arg not in (None, "", "api", "portal"):
        raise ControlError("surface must be api or portal")
    with rt.database.session() as db:
        rows = observations.request_log(
            db, since_id=int_arg("since_id"), client_id=request.args.get("client_id"),
            method=request.args.get("method"), path=request.args.get("path"), status=int_arg("status"),
            surface=surface_arg or None, limit=int_arg("limit") or 1000,
        )
    return ordered_json(requests=rows)


@blueprint.route("/requests", methods=["DELETE"])
def requests_clear() -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        count = observations.clear_request_log(db)
    return ordered_json(deleted=count)


@blueprint.route("/jobs", methods=["GET"])
def jobs_list() -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        jobs = observations.list_jobs(db, request.args.get("status"), request.args.get("client_id"))
    return ordered_json(jobs=jobs)


@blueprint.route("/jobs/release", methods=["POST"])
def jobs_release() -> ResponseReturnValue:
    """Make every waiting job and notification retry due now (see ``store.control.release``)."""
    rt = runtime()
    with rt.database.session() as db:
        released = observations.release(db, rt.clock.epoch())
    return ordered_json(released=released)


@blueprint.route("/notifications", methods=["GET"])
def notifications_list() -> ResponseReturnValue:
    """Every notification the data custodian owes or sent, with each delivery attempt's outcome."""
    rt = runtime()
    with rt.database.session() as db:
        rows = observations.list_notifications(db, request.args.get("client_id"))
    return ordered_json(notifications=rows)


@blueprint.route("/sink", methods=["GET"])
def sink_all() -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        posts = observations.sink_posts(db)
    return ordered_json(posts=posts)


@blueprint.route("/sink/<name>", methods=["GET"])
def sink_list(name: str) -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        posts = observations.sink_posts(db, name)
    return ordered_json(url=f"{rt.portal_base_url()}/__sim/sink/{name}", posts=posts)


@blueprint.route("/sink/<name>", methods=["DELETE"])
def sink_clear(name: str) -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        count = observations.clear_sink(db, name)
    return ordered_json(deleted=count)


# --- shortcuts ------------------------------------------------------------------------------------


@blueprint.route("/customers", methods=["GET"])
def customers_list() -> ResponseReturnValue:
    """Customers, accounts and SAs (keys, SA numbers, usage point ids) of the loaded world."""
    rt = runtime()
    with rt.database.session() as db:
        rows = control.customers(db)
    return ordered_json(customers=rows)


@blueprint.route("/customers", methods=["POST"])
def customers_add() -> ResponseReturnValue:
    """Add customers to the running world (scenario-file format) without replacing anything else."""
    rt = runtime()
    if request.mimetype in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"):
        text = request.get_data(as_text=True)
    else:
        text = customer_add.fragment_from_json(json_object_body())
    try:
        specs = customer_add.parse_customers(text)
    except ScenarioError as exc:
        raise ControlError(f"scenario error: {exc}", "invalid_scenario") from None
    with rt.database.session() as db:
        added = {c.key for c in customer_add.add_customers(db, specs, rt.clock.epoch())}
        rows = [row for row in control.customers(db) if row["key"] in added]
    response = ordered_json(customers=rows)
    response.status_code = 201
    return response


@blueprint.route("/third_parties/<client_id>", methods=["PATCH"])
def third_party_update(client_id: str) -> ResponseReturnValue:
    """Change what a test needs of a registration: ``{"notification_uri": URL}`` (e.g. the sink's URL)."""
    body = json_object_body()
    unknown = set(body) - {"notification_uri"}
    if unknown or not body:
        raise ControlError("send {\"notification_uri\": \"https://...\"} (the only field that can be changed here)")
    rt = runtime()
    with rt.database.session() as db:
        tp = control.set_notification_uri(db, client_id, body["notification_uri"])
        out = {"client_id": tp.client_id, "notification_uri": tp.notification_uri}
    return ordered_json(out)


@blueprint.route("/authorizations", methods=["POST"])
def authorization_create() -> ResponseReturnValue:
    """A customer authorization without the browser: Submit's effects, then the code exchange."""
    body = json_object_body()
    allowed = {"customer", "client_id", "service_agreements", "data_groups", "end_date", "exchange"}
    unknown = set(body) - allowed
    if unknown:
        raise ControlError(f"unknown field(s) {sorted(unknown)}; known: {', '.join(sorted(allowed))}")
    customer, client_id, exchange = body.get("customer"), body.get("client_id"), body.get("exchange", True)
    if not isinstance(customer, str) or not isinstance(client_id, str):
        raise ControlError("customer (key or user name) and client_id are required strings")
    if not isinstance(exchange, bool):
        raise ControlError("exchange must be true or false")
    rt = runtime()
    with rt.database.session() as db:
        created, issued = control.create_authorization(
            db, customer=customer, client_id=client_id, service_agreements=body.get("service_agreements"),
            data_groups=body.get("data_groups"), end_date=body.get("end_date"), now=rt.clock.epoch(),
            resource_base=rt.resource_base_url(), exchange=exchange, lifetimes=rt.token_lifetimes,
        )
        out = authorization_created_view(created, issued, customer, client_id, rt.settings)
    response = ordered_json(out)
    response.status_code = 201
    return response


def authorization_created_view(created: Any, issued: Any, customer: str, client_id: str, settings: Any
                               ) -> dict[str, Any]:
    """What ``POST /__sim/authorizations`` and ``mock-custodian consent`` answer (inside the session)."""
    authorization = created.authorization
    return {
        "authorization_id": authorization.id,
        "client_id": client_id,
        "customer": authorization.customer.key if authorization.customer else customer,
        "service_agreements": [
            {"key": sa.key, "sa_number": sa.sa_number, "usage_point_id": sa.usage_point_id,
             "commodity": sa.commodity}
            for sa in authorization.service_agreements
        ],
        "data_groups": list(authorization.data_groups or []),
        "scope": authorization_scope(authorization, runtime().scope_spelling),
        "replaced": [old.id for old in created.replaced],
        "authorization_code": created.code,
        "code_exchanged": issued is not None,
        "token": (customer_token_payload(issued, authorization.third_party, refreshing=False)
                  if issued is not None else None),
    }


# --- faults ---------------------------------------------------------------------------------------


@blueprint.route("/faults", methods=["GET"])
def faults_list() -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        rows = [faults.describe(f) for f in faults.list_faults(db)]
    return ordered_json(faults=rows, kinds=faults.KINDS)


@blueprint.route("/faults", methods=["POST"])
def faults_add() -> ResponseReturnValue:
    """One call to set a fault, e.g. ``{"kind": "maintenance", "path": "*/ReadServiceStatus", "times": 1}``."""
    rt = runtime()
    with rt.database.session() as db:
        fault = faults.add_fault(db, json_object_body(), rt.clock.epoch())
        out = faults.describe(fault)
    return ordered_json(out), 201


@blueprint.route("/faults", methods=["DELETE"])
def faults_clear() -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        count = faults.clear_faults(db)
    return ordered_json(deleted=count)


@blueprint.route("/faults/<int:fault_id>", methods=["GET"])
def fault_get(fault_id: int) -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        out = faults.describe(faults.get_fault(db, fault_id))
    return ordered_json(out)


@blueprint.route("/faults/<int:fault_id>", methods=["DELETE"])
def fault_delete(fault_id: int) -> ResponseReturnValue:
    rt = runtime()
    with rt.database.session() as db:
        faults.delete_fault(db, fault_id)
    return ordered_json(deleted=1)
