"""Flask application factory: one app serving PG&E's two hosts, told apart by the listener.

A request arrives on the API surface (``api.pge.com``: client certificate checked before anything
else) or the portal surface (``sharemydata.pge.com``: never asks for one). Each blueprint belongs to
one surface; a path of the other surface gets PG&E's ``No listener for endpoint`` 404.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import IntegerConverter

from mock_custodian import tls
from mock_custodian.clock import Clock
from mock_custodian.domain.registration import bearer_owner, describe_unregistered_certificate
from mock_custodian.errors import InvalidCertificate, MethodNotPermitted, NoListener, PGEError, RateLimited
from mock_custodian.pki import DevPKI
from mock_custodian.redaction import redacted_headers, redacted_query, shorten_parameters
from mock_custodian.settings import Settings
from mock_custodian.store import request_log
from mock_custodian.store.db import MAX_ROW_ID, Database
from mock_custodian.store.hashed import token_key
from mock_custodian.store.models import RequestLog, Token
from mock_custodian.web import form_token
from mock_custodian.web.guard import admit, due_events, rate_limits

log = logging.getLogger("mock_custodian")

# Paths on the API host that never need a client certificate (spec 3.1) and the scaffolding prefix.
CERT_EXEMPT_PATHS = ("/datacustodian/test/oauth/v2/authorize",)
# PG&E's retired production authorize endpoint: browsers arrive without a certificate, so it is a 404.
RETIRED_AUTHORIZE = "/datacustodian/oauth/v2/authorize"
SIM_PREFIX = "/__sim/"
API_BLUEPRINTS = {"token", "resources"}
PORTAL_BLUEPRINTS = {"portal", "customer"}
# The registration tests' resources and harness (API host) and the Third Party Portal (portal host).
API_BLUEPRINTS |= {"registration_resources", "oauth_test_harness"}
PORTAL_BLUEPRINTS |= {"third_party_portal"}
API_BLUEPRINTS |= {"batch_async"}  # asynchronous Batch requests and package retrieval (spec 6.4)
_LOGGED = itertools.count(1)  # requests this worker logged: every PRUNE_EVERY-th applies the retention rule


@dataclass
class Runtime:
    """Everything a request handler may reach: settings, database, clock, PKI."""

    settings: Settings
    database: Database
    clock: Clock
    pki: DevPKI

    def api_base_url(self) -> str:
        return self.settings.resolved_api_base_url()

    def portal_base_url(self) -> str:
        return self.settings.resolved_portal_base_url()

    def resource_base_url(self) -> str:
        return f"{self.api_base_url()}/GreenButtonConnect/espi/1_1/resource"

    def service_status(self) -> int:
        row = self.database.read_row("SELECT value FROM sim_meta WHERE key = 'service_status'")
        return int(row[0]) if row is not None else self.settings.service_status


class StoredIntConverter(IntegerConverter):
    """``<int:...>`` path segments only match what a database INTEGER holds; larger ones name no row (404)."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


def runtime() -> Runtime:
    return current_app.extensions["mock_custodian"]


class _SurfaceMiddleware:
    """Copies what the TLS layer learned (surface, client certificate) into the WSGI environ."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        sock = environ.get("gunicorn.socket")
        environ[tls.SURFACE_KEY] = getattr(sock, "surface", "api")
        environ[tls.ENVIRON_KEY] = getattr(sock, "peer_certificate", tls.NO_CERTIFICATE)
        environ["wsgi.url_scheme"] = "https"
        return self.app(environ, start_response)


def create_app(settings: Settings, database: Database | None = None) -> Flask:
    """Build the app; the database must already hold a schema and a loaded scenario."""
    if settings.rate_limit_profile not in ("production", "strict"):
        raise ValueError(f"rate_limit_profile: expected production or strict, got {settings.rate_limit_profile!r}")
    problem = tls.proxy_header_problem(settings.client_cert_header, settings.client_cert_header_trusted_ips)
    if problem:
        raise ValueError(problem)
    app = Flask(__name__, template_folder="portal/templates", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 10 * 1024 * 1024
    app.url_map.converters["int"] = StoredIntConverter
    db = database or Database(settings.resolved_database_url())
    pki = DevPKI(settings.resolved_data_dir() / "certs")
    app.extensions["mock_custodian"] = Runtime(settings, db, db.clock(), pki)
    app.extensions["mock_custodian.rate_limits"] = rate_limits(settings)

    from mock_custodian.api import (
        lifecycle_control,  # noqa: F401  (adds /__sim/ lifecycle routes to the control blueprint)
        report_control,  # noqa: F401  (adds /__sim/report)
    )
    from mock_custodian.api.control import blueprint as control_bp
    from mock_custodian.api.faults import install as install_faults
    from mock_custodian.api.resources import blueprint as resources_bp
    from mock_custodian.oauth.token import blueprint as token_bp
    from mock_custodian.portal.customer import blueprint as customer_bp
    from mock_custodian.portal.views import blueprint as portal_bp

    for bp in (token_bp, resources_bp, portal_bp, customer_bp, control_bp):
        app.register_blueprint(bp)
    from mock_custodian.api.registration_resources import blueprint as registration_resources_bp
    from mock_custodian.oauth.test_authorize import blueprint as test_authorize_bp
    from mock_custodian.portal.third_party import blueprint as third_party_portal_bp

    for bp in (registration_resources_bp, test_authorize_bp, third_party_portal_bp):
        app.register_blueprint(bp)
    from mock_custodian.api.batch_async import blueprint as batch_async_bp

    app.register_blueprint(batch_async_bp)
    from mock_custodian.portal.console import blueprint as console_bp

    app.register_blueprint(console_bp)  # the simulator console, /__sim/console/ on the portal listener

    app.before_request(_pin_clock)
    app.before_request(_apply_due_events)
    app.before_request(_guard)
    app.teardown_request(_unpin_clock)
    app.after_request(_log_request)
    app.after_request(_security_headers)
    app.after_request(form_token.set_cookie)
    app.context_processor(lambda: {"form_token": form_token.form_token})
    install_faults(app)  # /__sim/ fault injection: its hook runs after the guard
    app.register_error_handler(PGEError, _render_error)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(Exception, _render_unexpected)
    app.wsgi_app = _SurfaceMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def surface() -> str:
    return request.environ.get(tls.SURFACE_KEY, "api")


def peer_certificate() -> tls.PeerCertificate:
    """The client certificate of this request: from TLS, or from a trusted proxy's header.

    From a trusted proxy address the header is authoritative (the proxy's own TLS certificate, if it
    presents one upstream, is ignored; no header means no certificate); from any other address the
    header is ignored and only the TLS certificate counts.
    """
    settings = runtime().settings
    if settings.client_cert_header and tls.address_trusted(
        request.remote_addr, settings.client_cert_header_trusted_ips
    ):
        header = request.headers.get(settings.client_cert_header)
        return tls.certificate_from_proxy_header(header) if header else tls.NO_CERTIFICATE
    return request.environ.get(tls.ENVIRON_KEY, tls.NO_CERTIFICATE)


def _pin_clock() -> None:
    """One clock read per request (see ``Clock.pin``); control requests, which move it, read it afresh."""
    if not request.path.startswith(SIM_PREFIX):
        runtime().clock.pin()


def _unpin_clock(_exc: BaseException | None = None) -> None:
    runtime().clock.unpin()


def _reaches_certificate_lookup() -> bool:
    """Whether :func:`_guard` will look the certificate up (and apply due events in that transaction)."""
    path = request.path
    if path.startswith(SIM_PREFIX) or surface() == "portal" or path in CERT_EXEMPT_PATHS:
        return False
    return path.rstrip("/") != RETIRED_AUTHORIZE and peer_certificate().usable


def _apply_due_events() -> None:
    """Scheduled account/SA events take effect once the simulated clock reaches them (spec 4.15)."""
    if _reaches_certificate_lookup():
        return  # the guard applies them in its one transaction (mock_custodian/web/guard.py)
    rt = runtime()
    due_events(rt.database, rt.clock.epoch(), rt.resource_base_url())


def _guard() -> None:
    """Surface routing, then the certificate check that PG&E runs before anything else (spec 2.3)."""
    path = request.path
    if path.startswith(SIM_PREFIX):
        return None
    blueprint = request.blueprint
    side = surface()
    if side == "portal":
        if blueprint not in PORTAL_BLUEPRINTS:
            raise NoListener(path)
        return None
    if path in CERT_EXEMPT_PATHS:
        return None
    if path.rstrip("/") == RETIRED_AUTHORIZE:
        raise NoListener(path)  # spec checklist 9: 404 for any request, before the certificate check
    peer = peer_certificate()
    if not peer.usable:
        raise InvalidCertificate(peer.error or "certificate not verified")
    rt = runtime()
    settings = rt.settings
    # Rate limits (spec 6.7), charged to the certificate's registration and its vendor (Tax ID).
    # rate_limit_profile production (default): token calls skip the per-second vendor bucket, as a
    # production client's token-then-data pattern passes at PG&E; strict: the documents' literal reading,
    # every call (token calls too) at rate_limit_vendor_per_second (default 1) with a depth of 1.
    admission = admit(
        rt.database, fingerprint=peer.fingerprint_sha256 or "", now=rt.clock.epoch(),
        real_now=rt.clock.real_epoch(), resource_base=rt.resource_base_url(),
        limits=current_app.extensions["mock_custodian.rate_limits"] if settings.rate_limits_enabled else None,
        vendor_bucket=settings.rate_limit_profile == "strict" or request.path.rstrip("/") not in TOKEN_PATHS,
    )
    owners = admission.owners
    if not owners:
        with rt.database.session() as db:
            raise InvalidCertificate(describe_unregistered_certificate(
                db, peer.fingerprint_sha256 or "", peer.subject, rt.clock.epoch()))
    if admission.decision is not None and not admission.decision.allowed:
        raise RateLimited(admission.decision.retry_after, admission.decision.limit)
    g.certificate_owner_ids = owners
    g.faults_armed = admission.faults_armed
    g.certificate_sha256 = peer.fingerprint_sha256
    if blueprint is not None and blueprint not in API_BLUEPRINTS:
        raise NoListener(path)
    return None


TOKEN_PATHS = ("/datacustodian/oauth/v2/token", "/datacustodian/test/oauth/v2/token")


def _render_error(exc: PGEError) -> Response:
    # Kept for the request log: the precise reason is what the rehearsal pages show.
    g.error = exc.error
    g.error_reason = exc.reason or exc.description
    body, content_type = exc.body(), exc.content_type
    if (content_type.startswith("application/json") and request.path.rstrip("/") in TOKEN_PATHS
            and runtime().settings.token_format == "xml"):
        from mock_custodian.oauth.token import xml_error_body

        try:
            body, content_type = xml_error_body(json.loads(body)), "application/xml;charset=UTF-8"
        except ValueError:
            pass
    response = Response(body, status=exc.status, content_type=content_type)
    for name, value in exc.headers.items():
        response.headers[name] = value
    if exc.status in (400, 401, 403):
        response.headers["Cache-Control"] = "no-store"
    return response


def _render_http_error(exc: HTTPException) -> Response:
    if isinstance(exc, MethodNotAllowed):
        return _render_error(MethodNotPermitted(request.method))
    if exc.code == 404:
        return _render_error(NoListener(request.path))
    if exc.code and 400 <= exc.code < 500:
        body = json.dumps({"error": "invalid_request", "error_description": exc.name}, separators=(",", ":"))
        return Response(body, exc.code, content_type="application/json;charset=UTF-8")
    return _render_unexpected(exc)


def _render_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        return _render_http_error(exc)
    log.exception("unexpected error serving %s %s", request.method, request.path)
    return Response('{"error":"server_error"}', 500, content_type="application/json;charset=UTF-8")


def _claimed_client_id(db: Any) -> str | None:
    """The client_id a request claims (Basic user name, query parameter, or whose bearer token it carries).

    Recorded even when the request fails before authentication, so the rehearsal pages can show a
    third party the requests it got wrong.
    """
    if surface() != "api":
        return None
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username:
        return auth.username[:32]
    claimed = request.args.get("client_id") or request.args.get("clientId")
    if claimed:
        return claimed[:32]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        known = getattr(g, "bearer", None)  # the handler already found whose it is: no second lookup
        return known.third_party.client_id if known is not None else bearer_owner(db, value.strip()[:64])
    return None


def _logged_parameters() -> dict[str, Any] | None:
    """OAuth parameters by place, secrets shortened; the API host only (portal forms carry passwords)."""
    if surface() != "api":
        return None
    places: dict[str, Any] = {}
    if request.args:
        places["query"] = shorten_parameters(request.args.to_dict(flat=True))
    if request.content_length and request.content_length <= 16384:
        mimetype = request.mimetype
        if mimetype == "application/x-www-form-urlencoded" and request.form:
            places["form"] = shorten_parameters(request.form.to_dict(flat=True))
        elif mimetype == "multipart/form-data" and request.form:
            places["unread"] = shorten_parameters(request.form.to_dict(flat=True))
            places["body"] = f"{mimetype} (not read by PG&E)"
        elif mimetype == "application/json":
            payload = request.get_json(silent=True)
            if isinstance(payload, dict):
                places["json"] = shorten_parameters({k: str(v) for k, v in payload.items()})
        elif request.get_data(cache=True):
            places["body"] = f"{mimetype or 'untyped'} ({request.content_length} bytes, not read by PG&E)"
            if mimetype in ("", "text/plain"):
                text = request.get_data(cache=True).decode("utf-8", "replace")
                pairs = dict(part.partition("=")[::2] for part in text.strip().split("&") if "=" in part)
                if pairs:
                    places["unread"] = shorten_parameters(pairs)
    return places or None


def _presented_fingerprint() -> str | None:
    peer = request.environ.get(tls.ENVIRON_KEY)
    return peer.fingerprint_sha256 if peer is not None else None


def token_fingerprint(value: str) -> str:
    """A short hash that tells two tokens apart in the request log without keeping either."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def _report_facts(db: Any, response: Response, real_now: float) -> dict[str, Any]:
    """What the integration report needs beyond the log's basics: wall-clock time, which token, which chain."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    presented = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if presented is None and surface() == "api":  # a refresh grant: the form body, or the query as PG&E prints it
        form = request.form if request.mimetype == "application/x-www-form-urlencoded" else {}
        presented = form.get("refresh_token") or request.args.get("refresh_token") or None
    kind = None
    known = getattr(g, "bearer", None)
    if presented is not None and known is not None:  # the handler already classified it: no second lookup
        kind = known.token.kind if known.token is not None else None
    elif presented is not None:
        token = db.get(Token, token_key(presented))
        kind = token.kind if token is not None else None
    retry_after = response.headers.get("Retry-After")
    peer = request.environ.get(tls.ENVIRON_KEY)
    return {
        "real_at": real_now,
        "token_fingerprint": token_fingerprint(presented) if presented else None,
        "token_kind": kind,
        "retry_after": int(retry_after) if retry_after and retry_after.isdigit() else None,
        "chain_length": getattr(peer, "chain_length", None),
    }


def _security_headers(response: Response) -> Response:
    """No page may be framed (a framed consent Submit is clickjacking) and no body type-sniffed.

    ``frame-ancestors`` is the only CSP directive set: a broad policy would break the pages' inline
    styles and SVG.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if surface() == "portal" or request.path.startswith(SIM_PREFIX):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    return response


def _log_request(response: Response) -> Response:
    """Record what the client sent and got, with secrets redacted, for request verification."""
    if request.path.startswith(SIM_PREFIX):
        return response
    headers = redacted_headers(request.headers)
    rt = runtime()
    try:
        with rt.database.session() as db:
            # A Core insert: the row is only written, never read back, so the ORM's unit of work is waste.
            db.execute(
                RequestLog.__table__.insert(),
                dict(
                    at=rt.clock.epoch(),
                    surface=surface(),
                    method=request.method,
                    path=request.path,
                    query=redacted_query(request.query_string.decode("latin-1")),
                    status=response.status_code,
                    client_id=getattr(g, "client_id", None),
                    claimed_client_id=_claimed_client_id(db),
                    certificate_sha256=getattr(g, "certificate_sha256", None) or _presented_fingerprint(),
                    headers=headers,
                    error=getattr(g, "error", None),
                    reason=getattr(g, "error_reason", None),
                    parameters=_logged_parameters(),
                    worker_pid=os.getpid(),
                    **_report_facts(db, response, rt.clock.real_epoch()),
                ),
            )
            if next(_LOGGED) % request_log.PRUNE_EVERY == 0:
                request_log.prune(db, rt.settings.request_log_max_rows)  # the retention rule
    except Exception:  # the log must never turn a good answer into a 500
        log.exception("could not record request")
    return response
