"""Flask application factory: one app serving PG&E's two hosts, told apart by the listener.

A request arrives on the API listener (``api.pge.com``: client certificate checked before anything
else) or the portal listener (``sharemydata.pge.com``: never asks for one). Each PG&E blueprint sits
under its host's parent blueprint, which carries that host's guard; ``/__sim/`` (control API and
console) is the simulator's own and answers on both. This module is the only one that knows which
blueprints exist: blueprints reach the runtime through ``web/context.py``, never through here.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from mock_custodian import tls
from mock_custodian.api import batch_async, control, registration_resources, resources
from mock_custodian.oauth import test_authorize, token
from mock_custodian.pki import DevPKI
from mock_custodian.portal import console, customer, third_party, views
from mock_custodian.settings import Settings
from mock_custodian.store.db import Database
from mock_custodian.web import errors, faults, form_token, guard, request_log
from mock_custodian.web.context import EXTENSION, Runtime, StoredIntConverter, SurfaceMiddleware

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def _api_host() -> Blueprint:
    """api.pge.com: OAuth token endpoints, the ESPI resources, the registration tests' harness."""
    host = Blueprint(guard.API_HOST, __name__)
    for child in (token.blueprint, resources.blueprint, registration_resources.blueprint,
                  test_authorize.blueprint, batch_async.blueprint):
        host.register_blueprint(child)
    host.before_request(guard.admit_api_request)
    host.before_request(faults.apply_fault)  # after the guard: a fault scoped to a client matches its owner
    return host


def _portal_host() -> Blueprint:
    """sharemydata.pge.com: the customer's consent pages and the Third Party Portal."""
    host = Blueprint(guard.PORTAL_HOST, __name__)
    for child in (views.blueprint, customer.blueprint, third_party.blueprint):
        host.register_blueprint(child)
    host.before_request(faults.apply_fault)
    return host


def create_app(settings: Settings, database: Database | None = None) -> Flask:
    """Build the app; the database must already hold a schema and a loaded scenario."""
    if settings.rate_limit_profile not in ("production", "strict"):
        raise ValueError(f"rate_limit_profile: expected production or strict, got {settings.rate_limit_profile!r}")
    problem = tls.proxy_header_problem(settings.client_cert_header, settings.client_cert_header_trusted_ips)
    if problem:
        raise ValueError(problem)
    app = Flask(__name__, template_folder="portal/templates", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.url_map.converters["int"] = StoredIntConverter
    db = database or Database(settings.resolved_database_url())
    rt = app.extensions[EXTENSION] = Runtime.build(settings, db, DevPKI(settings.resolved_data_dir() / "certs"))

    app.register_blueprint(_api_host())
    app.register_blueprint(_portal_host())
    app.register_blueprint(control.blueprint)  # /__sim/: the control API, on both listeners
    app.register_blueprint(console.blueprint)  # the simulator console, /__sim/console/ on the portal listener

    app.before_request(guard.pin_clock)
    app.before_request(guard.apply_due_events)
    app.before_request(guard.route_to_host)
    app.teardown_request(guard.unpin_clock)
    app.after_request(request_log.log_request)
    app.after_request(guard.security_headers)
    app.after_request(form_token.set_cookie)
    app.context_processor(lambda: {"form_token": form_token.form_token})
    faults.install(app)
    errors.install(app)
    app.wsgi_app = SurfaceMiddleware(app.wsgi_app, rt)  # type: ignore[method-assign]
    return app
