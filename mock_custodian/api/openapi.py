"""The OpenAPI 3.1 document of the control API, served at ``/__sim/openapi.json``.

Written by hand next to the routes (``api/control.py``); a test checks that both list the same
operations, so the document cannot drift from what the server answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mock_custodian.domain.faults import BODY_FORMATS, KINDS, METHODS, NOTIFICATION_KINDS, REQUEST_KINDS

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad input (nothing was changed)", 401: "Missing or wrong control token",
            404: "Unknown id or name"}
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


def _op(op_id: str, summary: str, ok: dict[str, Any], *, ok_code: int = 200, body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = (401,), open_: bool = False,
        description: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": {str(ok_code): ok, **_errors(*errors)}}
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    if open_:
        op["security"] = []
    return op


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), extra: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    return schema


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
INSTANT = {"oneOf": [{"type": "string", "description": "ISO 8601 with Z or an offset"},
                     {"type": "number", "description": "epoch seconds"}]}
DURATION = {"oneOf": [{"type": "number"},
                      {"type": "string", "description": "seconds, 90m, 2h, 3d, 1w or ISO 8601 like PT2H"}]}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": STRING, "error_description": STRING}, ("error",)),
    "Health": _obj({"status": STRING, "worker_pid": INTEGER, "scenario": NULLABLE_STRING, "clock": STRING}),
    "Clock": _obj({"now": STRING, "epoch": {"type": "number"}, "local": STRING, "frozen": {"type": "boolean"},
                   "offset_s": {"type": "number"}}, ("now", "epoch", "frozen")),
    "Scenario": _obj({"digest": STRING, "path": STRING, "name": STRING}),
    "Credentials": _obj({
        "ca_bundle": STRING, "api_base_url": STRING, "portal_base_url": STRING, "sink_base_url": STRING,
        "data_custodian_certificate_chain": STRING,
        "third_parties": {"type": "array", "items": _obj({
            "client_id": STRING, "client_secret": STRING, "display_name": STRING, "user_type": STRING,
            "registration_status": STRING, "bulk_id": STRING, "registration_access_token": STRING,
            "application_information_id": STRING, "redirect_uri": NULLABLE_STRING,
            "notification_uri": NULLABLE_STRING, "certificate": STRING, "key": STRING,
            "certificate_chain": STRING,
            "situation": {"type": ["string", "null"], "description": "what this registration is for (catalog)"},
        })},
    }, ("third_parties",)),
    "LoggedRequest": _obj({
        "id": INTEGER, "at": STRING, "surface": {"enum": ["api", "portal"]}, "method": STRING, "path": STRING,
        "query": STRING, "headers": {"type": "object", "additionalProperties": STRING},
        "certificate": {"oneOf": [{"type": "null"}, _obj({"sha256": STRING, "registered_to": NULLABLE_STRING,
                                                          "subject": NULLABLE_STRING})]},
        "client_id": NULLABLE_STRING, "claimed_client_id": NULLABLE_STRING, "status": INTEGER,
        "error": NULLABLE_STRING, "reason": NULLABLE_STRING,
    }, ("id", "method", "path", "status")),
    "Job": _obj({"id": INTEGER, "correlation_id": STRING, "client_id": NULLABLE_STRING, "request_path": STRING,
                 "request_query": STRING, "x_transaction": NULLABLE_STRING, "status": STRING,
                 "accepted_at": STRING, "due_at": STRING, "built_at": NULLABLE_STRING}),
    "Notification": _obj({"id": INTEGER, "client_id": NULLABLE_STRING, "uri": STRING, "body": STRING,
                          "x_transaction": NULLABLE_STRING, "status": STRING, "created_at": STRING,
                          "next_attempt_at": STRING, "attempts": {"type": "array", "items": {"type": "object"}}}),
    "SinkPost": _obj({"id": INTEGER, "sink": STRING, "received_at": STRING, "content_type": NULLABLE_STRING,
                      "headers": {"type": "object"}, "query": STRING, "body": STRING,
                      "certificate_sha256": NULLABLE_STRING}),
    "AuthorizationRequest": _obj({
        "customer": {"type": "string", "description": "scenario key or user name"},
        "client_id": STRING,
        "service_agreements": {"type": "array", "items": STRING,
                               "description": "SA keys, SA numbers or usage point ids (default: every eligible SA)"},
        "data_groups": {"type": "array", "items": {"enum": ["Basic", "Account", "Billing", "Usage",
                                                            "ProgramEnrollment"]},
                        "description": "default: every group the third party registered"},
        "end_date": {"type": "string", "format": "date", "description": "last local day (default: indefinite)"},
        "exchange": {"type": "boolean", "default": True,
                     "description": "exchange the code for tokens now (false: exchange it at the token endpoint)"},
    }, ("customer", "client_id"), extra=False),
    "AuthorizationCreated": _obj({
        "authorization_id": INTEGER, "customer": STRING, "client_id": STRING,
        "service_agreements": {"type": "array", "items": {"type": "object"}},
        "data_groups": {"type": "array", "items": STRING}, "scope": STRING,
        "replaced": {"type": "array", "items": INTEGER}, "authorization_code": NULLABLE_STRING,
        "code_exchanged": {"type": "boolean"},
        "token": {"oneOf": [{"type": "null"}, _obj({
            "access_token": STRING, "token_type": STRING, "expires_in": INTEGER, "refresh_token": STRING,
            "scope": STRING, "resourceURI": STRING, "authorizationURI": STRING, "customerResourceURI": STRING})]},
    }, ("authorization_id", "token")),
    "Customer": _obj({
        "key": STRING, "username": STRING, "name": STRING, "class": STRING, "phone": STRING,
        "situation": {"type": ["string", "null"], "description": "what happens to this customer (the catalog)"},
        "accounts": {"type": "array", "items": _obj({
            "account_number": STRING, "linked": {"type": "boolean"},
            "service_agreements": {"type": "array", "items": _obj({
                "key": STRING, "sa_number": STRING, "usage_point_id": STRING, "commodity": STRING,
                "status": STRING, "rate_schedule": STRING, "meters": INTEGER})},
        })},
    }),
    "FaultSpec": _obj({
        "kind": {"enum": list(KINDS), "description": "; ".join(f"{k}: {v}" for k, v in KINDS.items())},
        "path": {"type": "string", "description": "glob over the request path (or notification URI); default all"},
        "method": {"enum": list(METHODS)},
        "client_id": {"type": "string", "description": "only requests of this third party (certificate owner, "
                                                       "Basic user or client_id parameter)"},
        "surface": {"enum": ["api", "portal"]},
        "times": {"type": ["integer", "null"], "minimum": 1, "description": "fire on the first N matches; "
                                                                            "null (default) every match"},
        "probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1},
        "seed": {"type": "integer", "description": "seed of the reproducible per-match draw"},
        "params": _obj({
            "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "http_error"},
            "body_format": {"enum": list(BODY_FORMATS), "description": "http_error"},
            "body": {"type": "string", "description": "http_error: the exact body"},
            "retry_after": {"type": "integer", "minimum": 0,
                            "description": "rate_limit, maintenance, http_error: Retry-After seconds"},
            "delay_ms": {"type": "integer", "minimum": 0, "maximum": 120000,
                         "description": "every request kind: real delay before the fault acts"},
            "after_bytes": {"type": "integer", "minimum": 0, "description": "cut: body bytes sent before the cut"},
            "copies": {"type": "integer", "minimum": 2, "maximum": 10, "description": "notification_duplicated"},
            "delay_s": {"type": "number", "minimum": 0, "description": "notification_delayed (simulated seconds)"},
        }),
    }, ("kind",)),
    "Fault": _obj({
        "id": INTEGER, "kind": STRING, "path": NULLABLE_STRING, "method": NULLABLE_STRING,
        "client_id": NULLABLE_STRING, "surface": NULLABLE_STRING, "times": {"type": ["integer", "null"]},
        "probability": {"type": "number"}, "params": {"type": "object"}, "matched": INTEGER, "fired": INTEGER,
        "active": {"type": "boolean"}, "created_at": {"type": "number"},
        "last_fired_at": {"type": ["number", "null"]},
    }, ("id", "kind", "fired", "active")),
    "Deleted": _obj({"deleted": INTEGER}, ("deleted",)),
}


def _paths() -> dict[str, Any]:
    clock_ok = _json(_ref("Clock"))
    client_id = _path("client_id", STRING, "the third party's client_id")
    sink_name = _path("name", {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}, "sink name")
    return {
        "/__sim/health": {"get": _op("health", "Liveness (no token, no certificate)", _json(_ref("Health")),
                                     errors=(), open_=True)},
        "/__sim/openapi.json": {"get": _op("openapi", "This document", _json({"type": "object"}), errors=(),
                                           open_=True)},
        "/__sim/credentials": {"get": _op(
            "credentials", "Every third party's credentials and certificate paths", _json(_ref("Credentials")),
            params=[_query("inline", {"enum": ["pem"]}, "pem: add the PEM texts (certificate_pem, key_pem, "
                                                        "certificate_chain_pem, ca_bundle_pem)")],
            errors=(400, 401))},
        "/__sim/credentials/{client_id}/{filename}": {"get": _op(
            "credential_file", "One certificate file; bundle.p12 is PKCS#12 (key, certificate, intermediate)",
            {"description": "the file", "content": {"application/x-pem-file": {"schema": STRING},
                                                    "application/x-pkcs12": {"schema": STRING}}},
            params=[client_id, _path("filename", {"enum": ["cert.pem", "chain.pem", "key.pem", "bundle.p12"]},
                                     "which file"),
                    _query("password", STRING, "bundle.p12: encrypt with this password (default none)")],
            errors=(401, 404))},
        "/__sim/ca.pem": {"get": _op(
            "ca_bundle", "The CA bundle clients trust",
            {"description": "PEM", "content": {"application/x-pem-file": {"schema": STRING}}})},
        "/__sim/scenario": {
            "get": _op("scenario_info", "The loaded scenario", _json(_ref("Scenario"))),
            "post": _op("scenario_load", "Load another scenario (replaces the whole world)", _json(_ref("Scenario")),
                        body={"required": True, "content": {
                            "application/yaml": {"schema": STRING},
                            JSON: {"schema": _obj({"yaml": STRING, "path": STRING,
                                                   "builtin": {"enum": ["demo", "catalog"]}})},
                        }}, errors=(400, 401)),
        },
        "/__sim/reset": {"post": _op("reset", "Back to the loaded scenario: world, tokens, clock, logs, faults, sink",
                                     _json(_ref("Scenario")), errors=(400, 401))},
        "/__sim/clock": {"get": _op("clock_get", "Simulated now", clock_ok)},
        "/__sim/clock/advance": {"post": _op(
            "clock_advance", "Move simulated time", clock_ok, errors=(400, 401),
            body=_body(_obj({"by": DURATION, "seconds": DURATION, "minutes": DURATION, "hours": DURATION,
                             "days": DURATION, "weeks": DURATION}, extra=False)))},
        "/__sim/clock/set": {"post": _op("clock_set", "Make now a given instant", clock_ok, errors=(400, 401),
                                         body=_body(_obj({"to": INSTANT}, ("to",))))},
        "/__sim/clock/freeze": {"post": _op("clock_freeze", "Stop simulated time (at now, or at `at`)", clock_ok,
                                            errors=(400, 401), body=_body(_obj({"at": INSTANT}), required=False))},
        "/__sim/clock/thaw": {"post": _op("clock_thaw", "Let a frozen clock run again", clock_ok)},
        "/__sim/requests": {
            "get": _op("requests_list", "The request log: what clients sent (secrets redacted) and got",
                       _json(_obj({"requests": {"type": "array", "items": _ref("LoggedRequest")}})),
                       params=[_query("client_id", STRING, "authenticated or claimed client_id"),
                               _query("method", STRING, "HTTP method"),
                               _query("path", STRING, "path, or a glob with * and ?"),
                               _query("status", INTEGER, "status returned"),
                               _query("surface", {"enum": ["api", "portal"]}, "listener"),
                               _query("since_id", INTEGER, "only entries after this id (for tailing)"),
                               _query("limit", INTEGER, "at most this many (default 1000, max 5000)")],
                       errors=(400, 401)),
            "delete": _op("requests_clear", "Empty the request log", _json(_ref("Deleted"))),
        },
        "/__sim/jobs": {"get": _op(
            "jobs_list", "Accepted asynchronous requests", _json(_obj({"jobs": {"type": "array",
                                                                                "items": _ref("Job")}})),
            params=[_query("status", STRING, "pending, built or failed"), _query("client_id", STRING, "client")])},
        "/__sim/jobs/release": {"post": _op(
            "jobs_release", "Make waiting jobs and notification retries due now",
            _json(_obj({"released": _obj({"jobs": {"type": "array", "items": STRING},
                                          "notifications": {"type": "array", "items": INTEGER}})})),
            description="Pending jobs get due_at = now and pending notifications next_attempt_at = now; the job "
                        "runner then builds and delivers them without waiting out async_delay_s or retry gaps.")},
        "/__sim/notifications": {"get": _op(
            "notifications_list", "Notifications owed or sent, with every delivery attempt",
            _json(_obj({"notifications": {"type": "array", "items": _ref("Notification")}})),
            params=[_query("client_id", STRING, "client")])},
        "/__sim/sink": {"get": _op("sink_all", "Every POST any sink received",
                                   _json(_obj({"posts": {"type": "array", "items": _ref("SinkPost")}})))},
        "/__sim/sink/{name}": {
            "post": _op("sink_receive", "Record a POST (register this URL as a notification URI; no token)",
                        {"description": "recorded"}, params=[sink_name], errors=(400,), open_=True,
                        body={"required": False, "content": {"application/xml": {"schema": STRING}}}),
            "get": _op("sink_list", "What this sink received",
                       _json(_obj({"url": STRING, "posts": {"type": "array", "items": _ref("SinkPost")}})),
                       params=[sink_name], errors=(400, 401)),
            "delete": _op("sink_clear", "Forget what this sink received", _json(_ref("Deleted")),
                          params=[sink_name], errors=(400, 401)),
        },
        "/__sim/third_parties/{client_id}": {"patch": _op(
            "third_party_update", "Change a registration's notification URI (e.g. to a sink URL)",
            _json(_obj({"client_id": STRING, "notification_uri": STRING})), errors=(400, 401, 404),
            params=[client_id], body=_body(_obj({"notification_uri": {"type": "string", "format": "uri",
                                                                      "pattern": "^https://"}},
                                                ("notification_uri",), extra=False)))},
        "/__sim/customers": {
            "get": _op("customers_list", "Customers, accounts and service agreements",
                       _json(_obj({"customers": {"type": "array", "items": _ref("Customer")}}))),
            "post": _op(
                "customers_add", "Add customers to the running world (nothing else changes)",
                _json(_obj({"customers": {"type": "array", "items": _ref("Customer")}}), "created"), ok_code=201,
                body={"required": True, "content": {
                    "application/yaml": {"schema": STRING, "description": "a scenario fragment: customers: [...]"},
                    JSON: {"schema": _obj({"customers": {"type": "array", "items": {"type": "object"}}})},
                }}, errors=(400, 401),
                description="The scenario file's `customers:` format (YAML, or the same as JSON; one customer "
                            "mapping is accepted too). Numbers derive from the loaded world's seed and the keys. "
                            "An existing key, user name or SA key refuses the whole request; reset returns to the "
                            "loaded scenario, without them."),
        },
        "/__sim/authorizations": {"post": _op(
            "authorization_create", "A customer authorization without the consent pages",
            _json(_ref("AuthorizationCreated"), "created"), ok_code=201, body=_body(_ref("AuthorizationRequest")),
            errors=(400, 401, 404),
            description="Runs the consent page's Submit (its validation; a live authorization of the same "
                        "customer and third party is replaced and its replacement notified), then exchanges the "
                        "code as the token endpoint does, answering PG&E's token response. Approved Standard or "
                        "EEF registrations get a code and tokens; Self-Access ones only the authorization.")},
        "/__sim/faults": {
            "get": _op("faults_list", "Configured faults with their counters",
                       _json(_obj({"faults": {"type": "array", "items": _ref("Fault")},
                                   "kinds": {"type": "object", "additionalProperties": STRING}}))),
            "post": _op("faults_add", "Configure a fault (one call)", _json(_ref("Fault"), "created"), ok_code=201,
                        body=_body(_ref("FaultSpec")), errors=(400, 401),
                        description="Request kinds: " + ", ".join(REQUEST_KINDS) + ". Notification kinds (honoured "
                        "by the notification sender): " + ", ".join(NOTIFICATION_KINDS) + "."),
            "delete": _op("faults_clear", "Remove every fault", _json(_ref("Deleted"))),
        },
        "/__sim/faults/{fault_id}": {
            "get": _op("fault_get", "One fault", _json(_ref("Fault")), errors=(401, 404),
                       params=[_path("fault_id", INTEGER, "fault id")]),
            "delete": _op("fault_delete", "Remove one fault", _json(_ref("Deleted")), errors=(401, 404),
                          params=[_path("fault_id", INTEGER, "fault id")]),
        },
    }


def openapi_path(rule: str) -> str:
    """A Flask rule (``/__sim/faults/<int:fault_id>``) as an OpenAPI path (``/__sim/faults/{fault_id}``)."""
    return re.sub(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def _generated(endpoint: str, method: str, path: str, view: Callable[..., Any] | None) -> dict[str, Any]:
    """An operation for a /__sim/ route no one documented by hand: named, with its docstring."""
    doc = (getattr(view, "__doc__", None) or "").strip()
    op: dict[str, Any] = {
        "operationId": f"{endpoint.rsplit('.', 1)[-1]}_{method.lower()}",
        "summary": doc.splitlines()[0] if doc else endpoint,
        "x-generated": True,
        "responses": {"200": _json({"type": "object"}), **_errors(400, 401)},
    }
    params = re.findall(r"{([^}]+)}", path)
    if params:
        op["parameters"] = [_path(name, STRING, name) for name in params]
    if method in ("POST", "PUT", "PATCH"):
        op["requestBody"] = _body({"type": "object"}, required=False)
    return op


def openapi_document(server_url: str, routes: list[tuple[str, str, set[str], Callable[..., Any] | None]] = ()
                     ) -> dict[str, Any]:
    """The whole document; ``server_url`` is the listener it is served from (both listeners serve it).

    ``routes`` are the app's ``/__sim/`` routes (rule, endpoint, methods, view): any that other modules
    add to the control blueprint without documenting them here still appear, from their docstrings.
    """
    paths = _paths()
    for rule, endpoint, methods, view in routes:
        path = openapi_path(rule)
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            ops = paths.setdefault(path, {})
            if method.lower() not in ops:
                ops[method.lower()] = _generated(endpoint, method, path, view)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mock-custodian control API",
            "version": "1",
            "description": "Simulator scaffolding under /__sim/ (not part of PG&E's API): clock, scenarios, "
                           "credentials, request log, jobs and notifications, faults, notification sink.",
        },
        "servers": [{"url": server_url}],
        "security": [{"controlToken": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "controlToken": {"type": "apiKey", "in": "header", "name": "X-Control-Token",
                                 "description": "printed at start-up and written to server.json, or "
                                                "MOCK_CUSTODIAN_CONTROL_TOKEN"},
            },
            "schemas": SCHEMAS,
        },
    }
