"""The Third Party Portal of ``sharemydata.pge.com`` (spec 5, endpoint table row 40), for browsers and scripts.

Browser pages live under ``/portal`` (PG&E's is a single-page app at ``/#login``); the same operations
are a JSON API under ``/portal/api`` authenticated with the registration's portal user name and
password (HTTP Basic) or a portal session. Handlers parse, call one backend function
(``store.registration``, ``store.harness``, ``store.rehearsal``, ``store.outbox``) and render.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request
from sqlalchemy.orm import Session

from mock_custodian import clock
from mock_custodian.domain import portal_accounts, registration_certificates, registration_form
from mock_custodian.domain import registration as reg
from mock_custodian.domain.harness import start_location
from mock_custodian.domain.outbox import delivered_emails, email_as_dict
from mock_custodian.domain.rehearsal import rehearsal
from mock_custodian.errors import PGEError
from mock_custodian.portal.registration_view import STATUS_LABELS, registration_view
from mock_custodian.store.models import ThirdParty
from mock_custodian.web.context import runtime
from mock_custodian.web.form_token import EXPIRED, form_token_ok, session_token_ok

blueprint = Blueprint("third_party_portal", __name__, url_prefix="/portal")

SESSION_COOKIE = "tpp_session"
JSON_TYPE = "application/json;charset=UTF-8"
PEM_TYPE = "application/x-pem-file"
MAX_PEM_BYTES = 64 * 1024


class CsrfMismatch(PGEError):
    status = 403

    def __init__(self) -> None:
        super().__init__("forbidden", "The form is stale or was not sent by this portal; reload the page and retry")


# --------------------------------------------------------------------------------------------- helpers
def policy() -> registration_form.PortalPolicy:
    """The registration rules as configured (derived from settings in ``web/policies.py``)."""
    return runtime().portal_policy()


def _json(payload: Any, status: int = 200) -> Response:
    response = Response(json.dumps(payload, indent=2), status, content_type=JSON_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in(db: Session) -> tuple[ThirdParty, str | None] | None:
    """The registration of this request: a portal session cookie, or HTTP Basic portal credentials."""
    now = runtime().clock.epoch()
    found = portal_accounts.session_registration(db, request.cookies.get(SESSION_COOKIE), now)
    if found is not None:
        session, tp = found
        g.client_id = tp.client_id
        return tp, session.csrf_token
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username:
        tp = portal_accounts.authenticate_portal(db, auth.username, auth.password or "", now)
        g.client_id = tp.client_id
        return tp, None
    return None


def _require_api(db: Session) -> ThirdParty:
    found = _signed_in(db)
    if found is None:
        raise portal_accounts.PortalUnauthorized()
    tp, csrf = found
    if csrf is not None and request.method not in ("GET", "HEAD"):
        _check_csrf(csrf, request.headers.get("X-CSRF-Token"))
    return tp


def _check_csrf(expected: str, given: str | None) -> None:
    if not session_token_ok(expected, given):
        raise CsrfMismatch()


def _form_data() -> dict[str, Any]:
    """Form fields, with the multi-valued data_groups kept as a list and an uploaded PEM file read."""
    data: dict[str, Any] = {k: v for k, v in request.form.items() if k not in ("csrf_token", "data_groups")}
    if "data_groups" in request.form:
        data["data_groups"] = request.form.getlist("data_groups")
    for name in ("certificate", "csr"):
        upload = request.files.get(f"{name}_file")
        if upload is not None and upload.filename:
            data[name] = upload.read(MAX_PEM_BYTES + 1)[:MAX_PEM_BYTES].decode("utf-8", "replace")
    return data


def _json_body() -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise registration_form.RegistrationInvalid({"body": "send a JSON object (Content-Type: application/json)"})
    return payload


def _pem_body(name: str) -> str:
    """A PEM sent as the raw body, or as ``{"<name>": "..."}`` JSON."""
    if request.mimetype == "application/json":
        value = _json_body().get(name)
        return str(value or "")
    data = request.get_data(cache=True)
    if len(data) > MAX_PEM_BYTES:
        raise registration_form.RegistrationInvalid({name: f"is larger than {MAX_PEM_BYTES} bytes"})
    return data.decode("utf-8", "replace")


def _page(template: str, tp: ThirdParty | None = None, csrf: str | None = None, status: int = 200,
          **context: Any) -> Response:
    html = render_template(f"third_party/{template}", tp=tp, csrf_token=csrf, local_time=clock.local_time,
                           labels=registration_form.FIELD_LABELS, status_labels=STATUS_LABELS, **context)
    response = Response(html, status, content_type="text/html;charset=UTF-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def _to_signin(message: str | None = None) -> Response:
    return redirect(f"/portal?m={message}" if message else "/portal", 303)


class _NotSignedIn(Exception):
    """A portal page asked for without a session: the blueprint answers with the sign-in redirect."""


def _page_session(db: Session) -> tuple[ThirdParty, str | None]:
    """The signed-in registration and its CSRF token for a browser page, or the sign-in redirect."""
    found = _signed_in(db)
    if found is None:
        raise _NotSignedIn()
    return found


@blueprint.errorhandler(_NotSignedIn)
def _not_signed_in(_exc: _NotSignedIn) -> Response:
    return _to_signin()


def _pge_certificate_chain() -> str:
    """What "Download PG&E SSL Certificate" serves here: the mock's server certificate chain and its root."""
    pki = runtime().pki
    return pki.server_chain.read_text() + pki.ca_bundle.read_text()


@blueprint.errorhandler(PGEError)
def portal_error(exc: PGEError) -> Response:
    """JSON for ``/portal/api``; a readable page for the browser pages. Logged like every error."""
    g.error = exc.error
    g.error_reason = exc.reason or exc.description
    if request.path.startswith("/portal/api/"):
        response = Response(exc.body(), exc.status, content_type=exc.content_type)
        for name, value in exc.headers.items():
            response.headers[name] = value
        return response
    return _page("problem.html", status=exc.status, problem=exc.description or exc.error)


# --------------------------------------------------------------------------------------------- browser pages
@blueprint.route("", methods=["GET"])
@blueprint.route("/", methods=["GET"])
def sign_in_page() -> Response:
    rt = runtime()
    with rt.database.session() as db:
        found = _signed_in(db) if request.cookies.get(SESSION_COOKIE) else None
    if found is not None:
        return redirect("/portal/registration", 303)
    return _page("signin.html", message=request.args.get("m"))


@blueprint.route("/login", methods=["POST"])
def sign_in() -> Response:
    rt = runtime()
    now = rt.clock.epoch()
    if not form_token_ok(request.form):  # login CSRF: the form must come from this browser's own page
        g.error_reason = "the sign-in form's csrf_token does not match this browser's (GET /portal first)"
        return _page("signin.html", status=400, error=EXPIRED, username=request.form.get("username", ""))
    try:
        with rt.database.session() as db:
            tp = portal_accounts.authenticate_portal(db, request.form.get("username", ""),
                                                     request.form.get("password", ""), now)
            session_id = portal_accounts.start_session(db, tp, now)
            g.client_id = tp.client_id
    except portal_accounts.PortalUnauthorized as exc:
        return _page("signin.html", status=401, error=exc.description, username=request.form.get("username", ""))
    response = redirect("/portal/registration", 303)
    response.set_cookie(SESSION_COOKIE, session_id, path="/portal", secure=True, httponly=True, samesite="Lax",
                        max_age=portal_accounts.PORTAL_SESSION_TTL_S)
    return response


@blueprint.route("/logout", methods=["POST"])
def sign_out() -> Response:
    rt = runtime()
    with rt.database.session() as db:
        found = portal_accounts.session_registration(db, request.cookies.get(SESSION_COOKIE), rt.clock.epoch())
        if found is not None:
            _check_csrf(found[0].csrf_token, request.form.get("csrf_token"))
        portal_accounts.end_session(db, request.cookies.get(SESSION_COOKIE))
    response = _to_signin()
    response.delete_cookie(SESSION_COOKIE, path="/portal")
    return response


@blueprint.route("/reset-password", methods=["GET", "POST"])
def reset_password() -> Response:
    if request.method == "GET":
        return _page("reset.html")
    if not form_token_ok(request.form):
        g.error_reason = "the reset form's csrf_token does not match this browser's (GET the page first)"
        return _page("reset.html", status=400, error=EXPIRED)
    rt = runtime()
    try:
        with rt.database.session() as db:
            portal_accounts.reset_password(db, request.form.get("username", ""),
                                           request.form.get("security_answer", ""),
                                           request.form.get("new_password", ""))
    except (portal_accounts.PortalUnauthorized, registration_form.RegistrationInvalid) as exc:
        return _page("reset.html", status=exc.status, error=exc.description)
    return _to_signin("password-reset")


@blueprint.route("/register", methods=["GET", "POST"])
def register_page() -> Response:
    if request.method == "GET":
        return _page("register.html", form={}, errors={})
    rt = runtime()
    data = _form_data()
    if not form_token_ok(request.form):
        g.error_reason = "the registration form's csrf_token does not match this browser's (GET the page first)"
        form = {k: v for k, v in data.items() if k not in ("portal_password",)}
        return _page("register.html", status=400, form=form, errors={"form": EXPIRED})
    try:
        with rt.database.session() as db:
            submission = reg.register(db, data, rt.clock.epoch(), policy(), rt.pki)
            tp = submission.third_party
            sent_to = (tp.business_contact or {}).get("email")
            chain = submission.issued_certificate_chain
            warnings = _certificate_warnings(db, tp)
    except registration_form.RegistrationInvalid as exc:
        form = {k: v for k, v in data.items() if k not in ("portal_password",)}
        return _page("register.html", status=400, form=form, errors=exc.fields)
    return _page("submitted.html", sent_to=sent_to, issued_chain=chain, warnings=warnings)


def _certificate_warnings(db: Session, tp: ThirdParty) -> list[str]:
    return [w for c in registration_view(db, tp, runtime().clock.epoch())["certificates"] for w in c["warnings"]]


@blueprint.route("/confirm", methods=["GET"])
def confirm_page() -> Response:
    rt = runtime()
    try:
        with rt.database.session() as db:
            tp = reg.confirm(db, request.args.get("token", ""), rt.clock.epoch(), policy())
            g.client_id = tp.client_id
            status = tp.status
    except (reg.RegistrationNotFound, reg.RegistrationConflict) as exc:
        return _page("confirmed.html", status=exc.status, error=exc.description)
    return _page("confirmed.html", registration_status=status)


@blueprint.route("/registration", methods=["GET"])
def manage_page() -> Response:
    rt = runtime()
    with rt.database.session() as db:
        tp, csrf = _page_session(db)
        view = registration_view(db, tp, rt.clock.epoch())
    return _page("manage.html", tp=tp, csrf=csrf, view=view, message=request.args.get("m"))


@blueprint.route("/registration/edit", methods=["GET", "POST"])
def edit_page() -> Response:
    rt = runtime()
    with rt.database.session() as db:
        tp, csrf = _page_session(db)
        view = registration_view(db, tp, rt.clock.epoch())
        if request.method == "GET":
            return _page("edit.html", tp=tp, csrf=csrf, view=view, errors={}, form=None)
        _check_csrf(csrf or "", request.form.get("csrf_token"))
        data = _form_data()
        data.pop("certificate", None)
        data.pop("csr", None)
        for flag in ("notify_daily", "visibility"):
            data.setdefault(flag, "false")  # an unticked checkbox is absent from the form
        data.setdefault("data_groups", [])
        if not data.get("portal_password"):
            data.pop("portal_password", None)  # blank: keep the current password
        try:
            reg.update_registration(db, tp, data, rt.clock.epoch())
        except registration_form.RegistrationInvalid as exc:
            return _page("edit.html", tp=tp, csrf=csrf, view=view, errors=exc.fields, form=data, status=400)
    return redirect("/portal/registration?m=updated", 303)


@blueprint.route("/registration/certificate", methods=["POST"])
def certificate_page() -> Response:
    """Manage Registration > Edit > SSL Certificate Information > Update (PEM, or a CSR for the dev CA)."""
    rt = runtime()
    with rt.database.session() as db:
        tp, csrf = _page_session(db)
        _check_csrf(csrf or "", request.form.get("csrf_token"))
        data = _form_data()
        issued = None
        try:
            pem = str(data.get("certificate") or "")
            if not pem.strip() and str(data.get("csr") or "").strip():
                issued = registration_certificates.issue_certificate_for_csr(rt.pki, str(data["csr"]))
                pem = issued
            registration_certificates.replace_certificate(db, tp, pem, rt.clock.epoch(), policy())
        except registration_form.RegistrationInvalid as exc:
            view = registration_view(db, tp, rt.clock.epoch())
            return _page("manage.html", tp=tp, csrf=csrf, view=view, status=400,
                         certificate_error="; ".join(exc.fields.values()))
        view = registration_view(db, tp, rt.clock.epoch())
    return _page("manage.html", tp=tp, csrf=csrf, view=view, message="certificate", issued_chain=issued)


@blueprint.route("/registration/pge-certificate", methods=["GET"])
def pge_certificate() -> Response:
    """Download PG&E SSL Certificate: available once the registration is accepted (spec 5.2)."""
    rt = runtime()
    with rt.database.session() as db:
        tp = _require_api(db) if request.authorization else (_signed_in(db) or (None, None))[0]
        if tp is None:
            return _to_signin()
        if tp.accepted_at is None:
            raise reg.RegistrationConflict("PG&E's SSL certificate can be downloaded once the registration is accepted")
    response = Response(_pge_certificate_chain(), 200, content_type=PEM_TYPE)
    response.headers["Content-Disposition"] = 'attachment; filename="pge-ssl-certificate-chain.pem"'
    return response


def _rehearsal_context() -> dict:
    """What the tests page and the OAuth Test window show: the per-step report and the registration."""
    rt = runtime()
    with rt.database.session() as db:
        tp, csrf = _page_session(db)
        now = rt.clock.epoch()
        return {"tp": tp, "csrf": csrf, "report": rehearsal(db, tp, now), "view": registration_view(db, tp, now)}


@blueprint.route("/registration/tests", methods=["GET"])
def tests_page() -> Response:
    return _page("tests.html", **_rehearsal_context())


@blueprint.route("/oauth-test", methods=["GET"])
def oauth_test_page() -> Response:
    """The OAuth Test box's window: Start, then each step as it passes (the page polls the JSON)."""
    context = _rehearsal_context()
    report = context.pop("report")
    oauth = next(t for t in report["tests"] if t["name"] == "OAuth Test")
    return _page("oauth_test.html", test=oauth, **context)


@blueprint.route("/oauth-test/start", methods=["GET"])
def oauth_test_start() -> Response:
    """Step 1 of spec 5.5: 302 to the Third Party Portal URI with ``scope=xxx&ThirdPartyID=PGE``."""
    rt = runtime()
    with rt.database.session() as db:
        tp = _require_api(db) if request.authorization else (_signed_in(db) or (None, None))[0]
        if tp is None:
            return _to_signin()
        location = start_location(tp, rt.settings.harness_target, rt.settings.harness_thirdpartyid_value)
    response = Response("", 302)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/outbox", methods=["GET"])
def outbox_page() -> Response:
    """Simulator page: every e-mail PG&E would have sent (spec 1.4), newest first."""
    rt = runtime()
    to = request.args.get("to")
    with rt.database.session() as db:
        emails = [email_as_dict(e) for e in delivered_emails(db, rt.clock.epoch(), to=to)]
    return _page("outbox.html", emails=emails, to=to)


# --------------------------------------------------------------------------------------------- JSON API
@blueprint.route("/api/registrations", methods=["POST"])
def api_register() -> Response:
    """Submit the registration form as JSON; the confirmation link goes to the outbox."""
    rt = runtime()
    with rt.database.session() as db:
        submission = reg.register(db, _json_body(), rt.clock.epoch(), policy(), rt.pki)
        tp = submission.third_party
        payload = {
            "status": tp.status,
            "status_label": STATUS_LABELS[tp.status],
            "display_name": tp.display_name,
            "portal_username": tp.portal_username,
            "confirmation_email_sent_to": (tp.business_contact or {}).get("email"),
            "confirmation_link_expires_at": tp.created_at + reg.CONFIRMATION_WINDOW_S,
            "certificate_warnings": _certificate_warnings(db, tp),
        }
        if submission.issued_certificate_chain:
            payload["issued_certificate_chain"] = submission.issued_certificate_chain
    return _json(payload, 201)


@blueprint.route("/api/confirm", methods=["GET", "POST"])
def api_confirm() -> Response:
    rt = runtime()
    body = request.get_json(silent=True)
    token = request.args.get("token") or (body.get("token", "") if isinstance(body, dict) else "")
    with rt.database.session() as db:
        tp = reg.confirm(db, str(token), rt.clock.epoch(), policy())
        g.client_id = tp.client_id
        payload = {"status": tp.status, "status_label": STATUS_LABELS[tp.status]}
    return _json(payload)


@blueprint.route("/api/registration", methods=["GET", "PATCH"])
def api_registration() -> Response:
    """Manage Registration as JSON; PATCH edits URIs, notification settings, history, groups, visibility."""
    rt = runtime()
    with rt.database.session() as db:
        tp = _require_api(db)
        if request.method == "PATCH":
            reg.update_registration(db, tp, _json_body(), rt.clock.epoch())
        view = registration_view(db, tp, rt.clock.epoch())
    return _json(view)


@blueprint.route("/api/registration/certificate", methods=["PUT", "POST"])
def api_certificate() -> Response:
    """Replace the SSL certificate (PEM body, or ``{"certificate": PEM}``); activation per ``cert_activation_delay``."""
    rt = runtime()
    with rt.database.session() as db:
        tp = _require_api(db)
        registration_certificates.replace_certificate(db, tp, _pem_body("certificate"), rt.clock.epoch(), policy())
        view = registration_view(db, tp, rt.clock.epoch())
    return _json(view)


@blueprint.route("/api/csr", methods=["POST"])
def api_csr() -> Response:
    """The dev CA's client certificate for your CSR (your key stays yours): ``{"certificate_chain": PEM}``."""
    chain = registration_certificates.issue_certificate_for_csr(runtime().pki, _pem_body("csr"))
    return _json({"certificate_chain": chain, "ca_bundle": runtime().pki.ca_bundle.read_text()}, 201)


@blueprint.route("/api/registration/tests", methods=["GET"])
def api_tests() -> Response:
    """The rehearsal: per required test and step, passed / failed / not tried, with the exact reason."""
    rt = runtime()
    with rt.database.session() as db:
        tp = _require_api(db)
        report = rehearsal(db, tp, rt.clock.epoch())
    return _json(report)


@blueprint.route("/api/registration/pge-certificate", methods=["GET"])
def api_pge_certificate() -> Response:
    return pge_certificate()


@blueprint.route("/api/outbox", methods=["GET"])
def api_outbox() -> Response:
    """Simulator scaffolding: the e-mails sent by now (``?to=`` filters by recipient)."""
    rt = runtime()
    with rt.database.session() as db:
        emails = [email_as_dict(e) for e in delivered_emails(db, rt.clock.epoch(), to=request.args.get("to"))]
    return _json({"emails": emails})
