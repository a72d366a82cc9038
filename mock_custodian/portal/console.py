"""The simulator console: see and steer the world from a browser (portal listener, ``/__sim/console/``).

Not PG&E: simulator scaffolding like the control API, and guarded like it. Signing in takes the
control token; the session cookie is an HMAC of the control token (so every gunicorn worker honours
it and a new token ends every session), HttpOnly, Secure, SameSite=Strict and scoped to the console's
path. Every form carries a CSRF token derived from the session. Nothing here answers on the API host.
Pages are server-rendered; the only assets (a stylesheet) are served by the product itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, g, redirect, render_template, request
from flask.typing import ResponseReturnValue

from mock_custodian.domain import client_credentials, control, faults
from mock_custodian.domain.content import Publication
from mock_custodian.domain.report import RULES_BY_ID, parse_since, report_for
from mock_custodian.errors import ControlError, NoListener
from mock_custodian.portal.chart import usage_svg
from mock_custodian.store.db import meta_set
from mock_custodian.web.context import runtime, surface
from mock_custodian.web.form_token import FIELD, session_token_ok

blueprint = Blueprint("console", __name__, url_prefix="/__sim/console")

COOKIE = "mock_custodian_console"
SESSION_TTL_S = 12 * 3600  # real seconds
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGES = (("overview", "Overview"), ("third_parties", "Third parties"), ("world", "World"),
         ("authorizations", "Authorizations"), ("requests_page", "Request log"),
         ("jobs", "Jobs & notifications"), ("faults_page", "Faults"), ("report", "Report"))
FAULT_FIELDS = ("status", "retry_after", "delay_ms")


def _sign(purpose: str, value: str) -> str:
    key = (runtime().settings.control_token or "").encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _session_value() -> str | None:
    """The signed-in session's cookie value, if it is genuine and fresh."""
    raw = request.cookies.get(COOKIE, "")
    issued, _, signature = raw.partition(".")
    if not issued.isdigit() or not signature or not runtime().settings.control_token:
        return None
    if not hmac.compare_digest(signature, _sign("console-session", issued)):
        return None
    if runtime().clock.real_epoch() - int(issued) > SESSION_TTL_S:
        return None
    return raw


def _csrf_token() -> str:
    return _sign("console-csrf", g.console_session)[:40]


@blueprint.before_request
def _console_guard() -> ResponseReturnValue | None:
    """Portal listener only, console on only where the control API is; sign-in and CSRF for the rest."""
    if surface() != "portal" or not runtime().settings.control_api:
        raise NoListener(request.path)
    if request.endpoint in ("console.signin", "console.static_file"):
        return None
    session = _session_value()
    if session is None:
        if request.method == "GET":
            return redirect(f"/__sim/console/signin?{urlencode({'next': request.full_path.rstrip('?')})}")
        abort(403)
    g.console_session = session
    if request.method == "POST":
        if not session_token_ok(_csrf_token(), request.form.get(FIELD)):
            return _page("problem.html", "Refused", 403, message="The form's CSRF token is missing or wrong: "
                         "reload the page and try again.")
    return None


@blueprint.after_request
def _headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _page(template: str, title: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    rt = runtime()
    clock = control.clock_view(rt.clock.state(), rt.clock.real_epoch())
    csrf = _csrf_token() if getattr(g, "console_session", None) else ""
    return render_template(f"console/{template}", title=title, pages=PAGES, active=request.endpoint, clock=clock,
                           csrf_token=csrf, **context), status


def _back(endpoint: str, message: str = "", error: str = "") -> ResponseReturnValue:
    query = urlencode({k: v for k, v in (("message", message), ("error", error)) if v})
    return redirect(f"/__sim/console/{endpoint}" + (f"?{query}" if query else ""), 303)


def _flash() -> dict[str, str]:
    return {"message": request.args.get("message", ""), "error": request.args.get("error", "")}


def _view(fn: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Control errors from a form end on the page they came from, said in words."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        try:
            return fn(*args, **kwargs)
        except ControlError as exc:
            return _back(request.form.get("back", ""), error=exc.description)

    return wrapper


# --- sign-in ------------------------------------------------------------------------------------------------


@blueprint.route("/static/<name>", methods=["GET"])
def static_file(name: str) -> ResponseReturnValue:
    if name != "console.css":
        raise NoListener(request.path)
    return Response((STATIC / name).read_bytes(), 200, content_type="text/css; charset=utf-8")


@blueprint.route("/signin", methods=["GET", "POST"])
def signin() -> ResponseReturnValue:
    target = request.values.get("next", "/__sim/console/")
    if not target.startswith("/__sim/console/"):
        target = "/__sim/console/"
    error = ""
    if request.method == "POST":
        expected = runtime().settings.control_token or ""
        presented = request.form.get("control_token", "")
        if expected and hmac.compare_digest(presented.encode(), expected.encode()):
            issued = str(int(runtime().clock.real_epoch()))
            response = redirect(target, 303)
            response.set_cookie(COOKIE, f"{issued}.{_sign('console-session', issued)}", max_age=SESSION_TTL_S,
                                path="/__sim/console", secure=True, httponly=True, samesite="Strict")
            return response
        error = "That is not this server's control token (printed at start-up and written to server.json)."
    return _page("signin.html", "Sign in", 401 if error else 200, error=error, next=target)


@blueprint.route("/signout", methods=["POST"])
def signout() -> ResponseReturnValue:
    response = redirect("/__sim/console/signin", 303)
    response.delete_cookie(COOKIE, path="/__sim/console", secure=True, httponly=True, samesite="Strict")
    return response


# --- overview -----------------------------------------------------------------------------------------------


@blueprint.route("/", methods=["GET"])
def overview() -> ResponseReturnValue:
    from mock_custodian.domain.world import loaded_scenario
    from mock_custodian.portal.console_model import overview_counts

    rt = runtime()
    with rt.database.session() as db:
        counts = overview_counts(db)
    return _page("overview.html", "Overview", scenario=loaded_scenario(rt.database) or {},
                 api_base_url=rt.api_base_url(), portal_base_url=rt.portal_base_url(),
                 service_status=rt.service_status(), counts=counts, **_flash())


@blueprint.route("/clock", methods=["POST"])
@_view
def clock() -> ResponseReturnValue:
    """Advance, freeze or thaw the simulated clock (the same backends as ``/__sim/clock``)."""
    rt = runtime()
    action = request.form.get("action")
    with rt.database.session() as db:
        if action == "advance":
            seconds = control.parse_duration(request.form.get("by", ""))
            control.advance_clock(db, seconds, rt.clock.real_epoch())
            message = f"Clock advanced by {request.form.get('by')}."
        elif action == "freeze":
            control.freeze_clock(db, rt.clock.real_epoch())
            message = "Clock frozen."
        elif action == "thaw":
            control.thaw_clock(db, rt.clock.real_epoch())
            message = "Clock running again."
        else:
            raise ControlError("action must be advance, freeze or thaw")
    return _back("", message=message)


@blueprint.route("/service-status", methods=["POST"])
@_view
def service_status() -> ResponseReturnValue:
    value = request.form.get("current_status")
    if value not in ("0", "1"):
        raise ControlError("current_status must be 0 or 1")
    with runtime().database.session() as db:
        meta_set(db, "service_status", value)
    return _back("", message="Service available." if value == "1" else "Maintenance: data endpoints answer 503.")


@blueprint.route("/ca.pem", methods=["GET"])
def ca_download() -> ResponseReturnValue:
    response = Response(runtime().pki.ca_bundle.read_bytes(), 200, content_type="application/x-pem-file")
    response.headers["Content-Disposition"] = 'attachment; filename="mock-custodian-ca.pem"'
    return response


# --- third parties, world, authorizations --------------------------------------------------------------------


@blueprint.route("/third-parties", methods=["GET"])
def third_parties() -> ResponseReturnValue:
    from mock_custodian.portal.console_model import local
    from mock_custodian.portal.console_model import third_parties as rows

    with runtime().database.session() as db:
        tps = [{"client_id": tp.client_id, "name": tp.display_name, "user_type": tp.user_type, "status": tp.status,
                "tax_id": tp.tax_id, "notification_uri": tp.notification_uri or "", "daily": tp.notify_daily,
                "redirect_uri": tp.redirect_uri or "", "groups": list(tp.data_groups or []),
                "milestones": sorted(((name, local(at)) for name, at in (tp.milestones or {}).items()),
                                     key=lambda m: m[1])}
               for tp in rows(db)]
    return _page("third_parties.html", "Third parties", tps=tps)


@blueprint.route("/third-parties/<client_id>/<filename>", methods=["GET"])
def credential_file(client_id: str, filename: str) -> ResponseReturnValue:
    if filename not in ("cert.pem", "chain.pem", "key.pem"):
        raise NoListener(request.path)
    rt = runtime()
    try:
        with rt.database.session() as db:
            folder = client_credentials.client_folder(rt.pki, db, client_id)
    except ControlError:
        raise NoListener(request.path) from None
    response = Response((folder / filename).read_bytes(), 200, content_type="application/x-pem-file")
    response.headers["Content-Disposition"] = f'attachment; filename="{client_id}-{filename}"'
    return response


@blueprint.route("/world", methods=["GET"])
def world() -> ResponseReturnValue:
    from mock_custodian.portal.console_model import account_tree

    with runtime().database.session() as db:
        tree = account_tree(db)
    return _page("world.html", "World", tree=tree)


@blueprint.route("/world/<sa_key>", methods=["GET"])
def service_agreement(sa_key: str) -> ResponseReturnValue:
    from mock_custodian.portal.console_model import service_agreement as find
    from mock_custodian.portal.console_model import usage_chart

    rt = runtime()
    span = "months" if request.args.get("span") == "months" else "days"
    publication = Publication.from_settings(rt.settings.publish_time_local, rt.settings.mv90_extra_delay_days)
    with rt.database.session() as db:
        sa = find(db, sa_key)
        if sa is None:
            raise NoListener(request.path)
        points, unit, note = usage_chart(db, sa, rt.clock.epoch(), publication, span, 12 if span == "months" else 21)
        title = f"SA {sa.sa_number} ({sa.commodity}): {'monthly' if span == 'months' else 'daily'} usage, {unit}"
        info = {"key": sa.key, "sa_number": sa.sa_number, "usage_point_id": sa.usage_point_id,
                "commodity": sa.commodity, "status": sa.status, "rate": sa.rate_schedule,
                "customer": sa.account.customer.name, "account": sa.account.account_number,
                "address": ", ".join(str(v) for v in (sa.service_address or {}).values() if v),
                "meters": [(m.position, m.serial_number, m.meter_type) for m in sa.meters]}
    svg = usage_svg(points, unit, title) if points else ""
    marks = {p.mark for p in points}
    return _page("service_agreement.html", f"SA {info['sa_number']}", sa=info, svg=svg, note=note, span=span,
                 marks=marks, total=sum(p.value for p in points), unit=unit)


@blueprint.route("/authorizations", methods=["GET"])
def authorizations() -> ResponseReturnValue:
    from mock_custodian.portal.console_model import authorizations as rows

    rt = runtime()
    with rt.database.session() as db:
        found = rows(db, rt.clock.epoch())
    return _page("authorizations.html", "Authorizations", rows=found)


# --- request log, jobs ----------------------------------------------------------------------------------------


@blueprint.route("/requests", methods=["GET"])
def requests_page() -> ResponseReturnValue:
    from mock_custodian.portal.console_model import clock_time, local
    from mock_custodian.portal.console_model import requests as rows

    status_text = request.args.get("status", "").strip()
    status = int(status_text) if status_text.isdigit() else None
    filters = {"client_id": request.args.get("client_id", "").strip(), "status": status_text,
               "path": request.args.get("path", "").strip()}
    with runtime().database.session() as db:
        found = [{"id": r.id, "at": local(r.at), "real_at": clock_time(r.real_at), "surface": r.surface,
                  "method": r.method, "path": r.path, "query": r.query, "status": r.status,
                  "client_id": r.client_id or r.claimed_client_id or "", "error": r.error or "",
                  "reason": r.reason or "", "headers": r.headers or {}, "token": r.token_fingerprint or "",
                  "token_kind": r.token_kind or ""}
                 for r in rows(db, client_id=filters["client_id"] or None, status=status,
                               path=filters["path"] or None)]
    refresh = request.args.get("refresh") == "1"
    return _page("requests.html", "Request log", rows=found, filters=filters, refresh=refresh,
                 refresh_url=request.full_path)


@blueprint.route("/jobs", methods=["GET"])
def jobs() -> ResponseReturnValue:
    from mock_custodian.portal.console_model import jobs_and_notifications, local

    with runtime().database.session() as db:
        found, notes, clients = jobs_and_notifications(db)
        job_rows = [{"id": j.id, "client_id": clients.get(j.third_party_id), "kind": j.kind, "status": j.status,
                     "path": j.request_path, "accepted": local(j.accepted_at), "built": local(j.built_at),
                     "correlation_id": j.correlation_id, "error": j.error or ""} for j in found]
        note_rows = [{"id": n.id, "client_id": clients.get(n.third_party_id), "kind": n.kind, "status": n.status,
                      "uri": n.uri, "created": local(n.created_at), "delivered": local(n.delivered_at),
                      "fault": (n.fault or {}).get("kind", ""),
                      "attempts": [{"at": local(a.get("at")), "status": a.get("status"), "error": a.get("error") or "",
                                    "elapsed": a.get("elapsed_s")} for a in (n.attempts or [])]} for n in notes]
    return _page("jobs.html", "Jobs & notifications", jobs=job_rows, notes=note_rows)


# --- faults -----------------------------------------------------------------------------------------------------


@blueprint.route("/faults", methods=["GET"])
def faults_page() -> ResponseReturnValue:
    with runtime().database.session() as db:
        rows = [faults.describe(f) for f in faults.list_faults(db)]
    return _page("faults.html", "Faults", rows=rows, kinds=faults.KINDS, **_flash())


@blueprint.route("/faults", methods=["POST"])
@_view
def faults_add() -> ResponseReturnValue:
    """The form's fields as the control API's fault JSON (empty fields left out, numbers as numbers)."""
    form = request.form
    kind = form.get("kind", "")
    spec: dict[str, Any] = {"kind": kind}
    for name in ("path", "method", "client_id"):
        if form.get(name, "").strip():
            spec[name] = form[name].strip()
    for name in ("times", *FAULT_FIELDS):
        text = form.get(name, "").strip()
        if not text:
            continue
        if not text.isdigit():
            raise ControlError(f"{name} must be a whole number (got {text!r})")
        if name in FAULT_FIELDS and name not in faults.PARAMS.get(kind, {}):
            raise ControlError(f"{name} does not apply to a {kind} fault")
        spec[name] = int(text)
    rt = runtime()
    with rt.database.session() as db:
        fault = faults.add_fault(db, spec, rt.clock.epoch())
        fault_id = fault.id
    return _back("faults", message=f"Fault {fault_id} ({kind}) added.")


@blueprint.route("/faults/clear", methods=["POST"])
def faults_clear() -> ResponseReturnValue:
    with runtime().database.session() as db:
        count = faults.clear_faults(db)
    return _back("faults", message=f"{count} fault(s) cleared.")


@blueprint.route("/faults/<int:fault_id>/delete", methods=["POST"])
@_view
def fault_delete(fault_id: int) -> ResponseReturnValue:
    with runtime().database.session() as db:
        faults.delete_fault(db, fault_id)
    return _back("faults", message=f"Fault {fault_id} removed.")


# --- report -----------------------------------------------------------------------------------------------------


@blueprint.route("/report", methods=["GET"])
def report() -> ResponseReturnValue:
    rt = runtime()
    now = rt.clock.epoch()
    client_id = request.args.get("client_id", "").strip() or None
    error = ""
    try:
        since = parse_since(request.args.get("since"), now)
    except ControlError as exc:
        since, error = None, exc.description
    out = report_for(rt.database, rt.settings, now, client_id=client_id, since=since)
    return _page("report.html", "Integration report", report=out, rules=RULES_BY_ID, client_id=client_id or "",
                 since=request.args.get("since", ""), error=error)
