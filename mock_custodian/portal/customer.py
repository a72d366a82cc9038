"""Customer pages of ``sharemydata.pge.com``: the ``/myAuthorization`` consent flow (spec 4.2-4.7) and the
customer's Share My Data page with Current Authorizations, edit and cancel (spec 4.15).

Handlers parse the form, call one backend function (``oauth.authorize``, ``store.customers``,
``store.authorizations``) and render. The authorization request travels through sign-in and consent
as hidden form fields and is validated again on every step, so any worker can serve any step.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, g, render_template, request
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from mock_custodian.domain.authorizations import (
    CANCELLED,
    ConsentInvalid,
    Duration,
    cancel_by_customer,
    consent_errors,
    consented_groups,
    create_customer_authorization,
    customer_authorization,
    edit_by_customer,
    effective_end,
    eligible_service_agreements,
    live_authorizations_for,
    live_customer_authorizations,
    local_date,
)
from mock_custodian.domain.customers import (
    SignedIn,
    SignInFailed,
    current_session,
    free_text_problem,
    guest_sign_in,
    sign_in,
    sign_out,
)
from mock_custodian.domain.scope import DATA_GROUP_PAGE_ORDER, authorization_scope
from mock_custodian.errors import NotFound
from mock_custodian.oauth.authorize import (
    ConsentRequest,
    RedirectWithError,
    RequestRejected,
    chosen_company,
    companies_for_customer,
    error_redirect,
    success_redirect,
    validate_authorization_request,
)
from mock_custodian.store.models import ServiceAgreement, ThirdParty
from mock_custodian.web.context import runtime
from mock_custodian.web.form_token import EXPIRED, FIELD, form_token_ok, session_token_ok

blueprint = Blueprint("customer", __name__)

SESSION_COOKIE = "smd_session"
HOME = "/customer/authorizations"
GROUPS = {
    "Basic": ("Basic information", "Your name and service address."),
    "Account": ("Account information", "Account numbers, service agreement numbers and service start dates."),
    "Billing": ("Billing information", "Bills and billing history: amounts, bill and meter-read dates, rate "
                "schedule, tier, time-of-use and demand charges, line items."),
    "Usage": ("Usage information", "Electric and gas usage used for billing and, where your meter records it, "
              "interval usage."),
    "ProgramEnrollment": ("Program enrollment", "Demand-response programs and CAISO information; service status, "
                          "tariff, voltage, meter, read cycle and billing address."),
}
MESSAGES = {
    "created": "Your authorization has been created. A confirmation has been sent to your email address.",
    "changed": "Your authorization has been changed. The company has been told.",
    "unchanged": "Nothing was changed.",
    "cancelled": "Your authorization is cancelled. The company keeps access until midnight tonight (Pacific time).",
}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


# --- helpers ---------------------------------------------------------------------------------


def _redirect(location: str, status: int = 302) -> Response:
    """A redirect whose Location is exactly ``location`` (no re-encoding of the third party's URL)."""
    return Response("", status=status, headers={"Location": location, "Cache-Control": "no-store"})


def _page(template: str, status: int = 200, **context: object) -> Response:
    response = Response(render_template(template, **context), status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def _problem(message: str, heading: str = "We can't process this request", status: int = 400,
             signed_in: SignedIn | None = None, **extra: object) -> Response:
    g.error_reason = message
    return _page("customer/problem.html", status, heading=heading, message=message, signed_in=signed_in, **extra)


def _session(db: Session) -> SignedIn | None:
    return current_session(db, request.cookies.get(SESSION_COOKIE), runtime().clock.epoch())


def _with_cookie(response: Response, signed_in: SignedIn) -> Response:
    response.set_cookie(SESSION_COOKIE, signed_in.session_id, secure=True, httponly=True, samesite="Lax", path="/")
    return response


def _csrf_ok(signed_in: SignedIn, form: Mapping[str, str]) -> bool:
    return session_token_ok(signed_in.csrf_token, form.get(FIELD))


def _validate(db: Session, params: Mapping[str, str]) -> ConsentRequest:
    settings = runtime().settings
    request_ = validate_authorization_request(db, params, aliases=settings.authorize_aliases,
                                              honor_hints=settings.honor_auth_end_date_hints)
    g.client_id = request_.client_id
    return request_


def _request_problem(exc: Exception) -> Response:
    if isinstance(exc, RedirectWithError):
        g.error = exc.error
        g.error_reason = str(exc)
        return _redirect(exc.location)
    return _problem(str(exc), "This authorization request cannot be processed")


def _sa_view(sa: ServiceAgreement) -> dict[str, object]:
    address = sa.service_address or {}
    where = ", ".join(str(address[k]) for k in ("street", "city") if address.get(k))
    return {"number": sa.sa_number, "label": f"{sa.commodity.capitalize()} service, SA {sa.sa_number}",
            "address": where}


def _group_views(tokens: tuple[str, ...] | list[str]) -> list[dict[str, str]]:
    return [{"token": t, "label": GROUPS[t][0], "detail": GROUPS[t][1]} for t in DATA_GROUP_PAGE_ORDER if t in tokens]


def _duration(form: Mapping[str, str]) -> tuple[Duration | None, dict[str, str]]:
    choice = form.get("duration") or "indefinite"
    if choice == "indefinite":
        return Duration(None), {}
    if choice != "end_date":
        return None, {"end_date": "Choose how long to share."}
    raw = (form.get("end_date") or "").strip()
    if not raw:
        return None, {"end_date": "Choose an end date, or share indefinitely."}
    if any(ch in raw for ch in "=:"):
        return None, {"end_date": "The end date cannot contain the characters = or :."}
    try:
        return Duration(dt.date.fromisoformat(raw)), {}
    except ValueError:
        return None, {"end_date": "Enter the end date as YYYY-MM-DD."}


def _chosen(form: MultiDict, agreements: list[ServiceAgreement]) -> tuple[list[int], dict[str, str]]:
    """The ticked service agreements (the form carries SA numbers); Select All means every listed one."""
    if form.get("select_all"):
        return [sa.id for sa in agreements], {}
    by_number = {sa.sa_number: sa.id for sa in agreements}
    values = form.getlist("service_agreements")
    if any(v not in by_number for v in values):
        return [], {"service_agreements": "Choose service agreements from the list."}
    return [by_number[v] for v in values], {}


def _ticked(form: MultiDict | None, agreements: list[ServiceAgreement], default: set[str]) -> set[str]:
    if form is None:
        return default
    if form.get("select_all"):
        return {sa.sa_number for sa in agreements}
    return set(form.getlist("service_agreements"))


def _earliest_end_date(now: float) -> str:
    return (local_date(now) + dt.timedelta(days=1)).isoformat()


# --- /myAuthorization: sign-in, consent, redirect back (spec 4.2-4.6) ---------------------------


@blueprint.route("/myAuthorization", methods=["GET"])
@blueprint.route("/myAuthorization/", methods=["GET"])
def authorize() -> Response:
    """The authorization request: a 400 page, an error redirect, the sign-in page or the consent page."""
    with runtime().database.session() as db:
        try:
            consent_request = _validate(db, request.args)
        except (RequestRejected, RedirectWithError) as exc:
            return _request_problem(exc)
        signed_in = _session(db)
        if signed_in is None:
            return _signin_page(consent_request)
        return _consent_page(db, consent_request, signed_in)


@blueprint.route("/myAuthorization/signin", methods=["POST"])
def authorize_sign_in() -> Response:
    """My Energy or Guest Access sign-in within the flow; Cancel redirects with ``access_denied``."""
    form = request.form
    with runtime().database.session() as db:
        try:
            consent_request = _validate(db, form)
        except (RequestRejected, RedirectWithError) as exc:
            return _request_problem(exc)
        if form.get("action") == "cancel":
            return _redirect(error_redirect(consent_request.redirect_uri, "access_denied", consent_request.state))
        mode = "guest" if form.get("mode") == "guest" else "myenergy"
        if not form_token_ok(form):  # login CSRF: the form must come from this browser's own page
            g.error_reason = "the sign-in form's csrf_token does not match this browser's (GET the page first)"
            return _signin_page(consent_request, {"form": EXPIRED}, form, mode, 400)
        now = runtime().clock.epoch()
        try:
            if mode == "guest":
                signed_in = guest_sign_in(db, form.get("account_number", ""), form.get("phone", ""), now)
            else:
                signed_in = sign_in(db, form.get("username", ""), form.get("password", ""), now)
        except SignInFailed as exc:
            g.error_reason = str(exc)
            return _signin_page(consent_request, {exc.field or "form": str(exc)}, form, mode, 400)
        return _with_cookie(_redirect(f"/myAuthorization?{consent_request.query()}", 303), signed_in)


@blueprint.route("/myAuthorization/consent", methods=["POST"])
def authorize_consent() -> Response:
    """Submit creates the authorization and redirects with the code; Cancel redirects with ``access_denied``."""
    rt = runtime()
    settings = rt.settings
    form = request.form
    with rt.database.session() as db:
        try:
            consent_request = _validate(db, form)
        except (RequestRejected, RedirectWithError) as exc:
            return _request_problem(exc)
        if form.get("action") == "cancel":
            return _redirect(error_redirect(consent_request.redirect_uri, "access_denied", consent_request.state))
        signed_in = _session(db)
        if signed_in is None:
            return _redirect(f"/myAuthorization?{consent_request.query()}", 303)
        if not _csrf_ok(signed_in, form):
            return _problem("This form has expired. Start again from the company's website.", signed_in=signed_in)
        now = rt.clock.epoch()
        errors: dict[str, str] = {}
        duration, duration_errors = _duration(form)
        errors.update(duration_errors)
        sa_ids, id_errors = _chosen(form, eligible_service_agreements(db, signed_in.customer_id, now,
                                                                       signed_in.guest_account_id))
        errors.update(id_errors)
        email = None
        if signed_in.guest:
            email = (form.get("email") or "").strip()
            problem = free_text_problem(email, "email address")
            if problem is None and not EMAIL.fullmatch(email):
                problem = "Enter a valid email address."
            if problem:
                errors["email"] = problem
        tp = db.get(ThirdParty, consent_request.third_party_id)
        groups = consented_groups(tp, form.getlist("data_groups"))
        errors = consent_errors(db, tp=tp, customer_id=signed_in.customer_id, data_groups=groups,
                                service_agreement_ids=sa_ids, duration=duration, now=now,
                                guest_account_id=signed_in.guest_account_id,
                                min_auth_end_date=consent_request.hints.min_auth_end_date) | errors
        if errors or duration is None:
            return _consent_page(db, consent_request, signed_in, errors, form, 400)
        try:
            created = create_customer_authorization(
                db, tp=tp, customer_id=signed_in.customer_id, data_groups=groups, service_agreement_ids=sa_ids,
                duration=duration, now=now, resource_base=rt.resource_base_url(),
                guest_account_id=signed_in.guest_account_id, confirmation_email=email,
                redirect_uri=consent_request.redirect_uri, min_auth_end_date=consent_request.hints.min_auth_end_date,
            )
        except ConsentInvalid as exc:
            return _consent_page(db, consent_request, signed_in, exc.errors, form, 400)
        scope = authorization_scope(created.authorization, runtime().scope_spelling)
        assert created.code is not None
        return _redirect(success_redirect(consent_request.redirect_uri, created.code, scope, consent_request.state,
                                          code_param=settings.redirect_code_param,
                                          raw_scope=settings.raw_scope_in_redirect))


def _signin_page(consent_request: ConsentRequest, errors: dict[str, str] | None = None,
                 values: Mapping[str, str] | None = None, tab: str | None = None, status: int = 200) -> Response:
    tab = tab or ("guest" if consent_request.login == "guest" else "myenergy")
    base = {k: v for k, v in consent_request.carried().items() if k != "login"}
    links = {
        "myenergy": "/myAuthorization?" + urlencode(base, quote_via=quote),
        "guest": "/myAuthorization?" + urlencode({**base, "login": "guest"}, quote_via=quote),
    }
    return _page("customer/signin.html", status, action="/myAuthorization/signin", carried=consent_request.carried(),
                 tab=tab, tab_links=links, company=consent_request.display_name, cancel=True,
                 errors=errors or {}, values=values or {}, signed_in=None)


def _consent_page(db: Session, consent_request: ConsentRequest, signed_in: SignedIn,
                  errors: dict[str, str] | None = None, form: MultiDict | None = None, status: int = 200) -> Response:
    now = runtime().clock.epoch()
    agreements = eligible_service_agreements(db, signed_in.customer_id, now, signed_in.guest_account_id)
    replaces = bool(live_authorizations_for(db, consent_request.third_party_id, signed_in.customer_id, now))
    hints = consent_request.hints
    if form is not None:
        duration = form.get("duration") or "indefinite"
        end_date = form.get("end_date")
    elif hints.preferred_auth_end_date is not None:
        duration, end_date = "end_date", local_date(hints.preferred_auth_end_date).isoformat()
    else:
        duration, end_date = "indefinite", None
    min_end = local_date(hints.min_auth_end_date).isoformat() if hints.min_auth_end_date is not None else None
    earliest = max(_earliest_end_date(now), min_end or "")
    chosen_sas = _ticked(form, agreements, set())
    return _page(
        "customer/consent.html", status,
        action="/myAuthorization/consent", carried=consent_request.carried(), company=consent_request.display_name,
        replaces=replaces, errors=errors or {}, show_groups=True, groups=_group_views(consent_request.offered_groups),
        chosen_groups=set(form.getlist("data_groups")) if form is not None else set(),
        agreements=[_sa_view(sa) for sa in agreements], chosen_sas=chosen_sas,
        select_all=bool(form is not None and form.get("select_all")),
        duration=duration, end_date=end_date, min_end_date=min_end, earliest_end_date=earliest,
        ask_email=signed_in.guest, email=form.get("email") if form is not None else None, signed_in=signed_in,
    )


# --- the customer's Share My Data page (spec 4.7, 4.15) ------------------------------------------


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME


@blueprint.route("/customer/signin", methods=["GET", "POST"])
def customer_sign_in() -> Response:
    """My Energy sign-in for the Share My Data page (Guest Access only exists inside /myAuthorization)."""
    target = _safe_next(request.values.get("next"))
    carried = {"next": target}
    if request.method == "GET":
        return _page("customer/signin.html", action="/customer/signin", carried=carried, tab="myenergy",
                     tab_links=None, company=None, cancel=False, errors={}, values={}, signed_in=None)
    form = request.form
    if not form_token_ok(form):
        g.error_reason = "the sign-in form's csrf_token does not match this browser's (GET the page first)"
        return _page("customer/signin.html", 400, action="/customer/signin", carried=carried, tab="myenergy",
                     tab_links=None, company=None, cancel=False, errors={"form": EXPIRED}, values=form, signed_in=None)
    with runtime().database.session() as db:
        try:
            signed_in = sign_in(db, form.get("username", ""), form.get("password", ""), runtime().clock.epoch())
        except SignInFailed as exc:
            g.error_reason = str(exc)
            return _page("customer/signin.html", 400, action="/customer/signin", carried=carried, tab="myenergy",
                         tab_links=None, company=None, cancel=False, errors={exc.field or "form": str(exc)},
                         values=form, signed_in=None)
    return _with_cookie(_redirect(target, 303), signed_in)


@blueprint.route("/customer/signout", methods=["POST"])
def customer_sign_out() -> Response:
    with runtime().database.session() as db:
        signed_in = _session(db)
        if signed_in is not None and _csrf_ok(signed_in, request.form):
            sign_out(db, signed_in.session_id)
    response = _redirect("/customer/signin", 303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return response


def _customer(db: Session) -> SignedIn | Response:
    """The signed-in My Energy customer, or the redirect to sign in (a guest session does not manage)."""
    signed_in = _session(db)
    if signed_in is None or signed_in.guest:
        return _redirect("/customer/signin?" + urlencode({"next": request.full_path.rstrip("?")}), 303)
    return signed_in


def _posted(signed_in: SignedIn) -> Response | None:
    """CSRF check for the management forms."""
    if not _csrf_ok(signed_in, request.form):
        return _problem("This form has expired. Open the page again.", signed_in=signed_in,
                        back_href=HOME, back_label="Back to Share My Data")
    return None


@blueprint.route("/customer/authorizations", methods=["GET"])
def customer_authorizations() -> Response:
    """Current Authorizations (pencil edits, X cancels) and "Add new authorization" with the company list."""
    with runtime().database.session() as db:
        signed_in = _customer(db)
        if isinstance(signed_in, Response):
            return signed_in
        now = runtime().clock.epoch()
        rows = []
        for a in live_customer_authorizations(db, signed_in.customer_id, now):
            end = effective_end(a)
            rows.append({
                "id": a.id, "company": a.third_party.display_name,
                "groups": ", ".join(GROUPS[t][0] for t in DATA_GROUP_PAGE_ORDER if t in a.data_groups),
                "agreements": [f"{sa.commodity.capitalize()} SA {sa.sa_number}" for sa in a.service_agreements],
                "since": local_date(a.created_at).isoformat(),
                "until": "No end date" if end is None else local_date(end - 1).isoformat(),
                "cancelled": a.revoked_reason == CANCELLED,
            })
        companies = companies_for_customer(db, signed_in.customer_id)
        return _page("customer/authorizations.html", rows=rows, companies=companies, signed_in=signed_in,
                     message=MESSAGES.get(request.args.get("done", "")))


@blueprint.route("/customer/authorizations/new", methods=["POST"])
def customer_add_authorization() -> Response:
    """PG&E-initiated flow (spec 4.7): 302 to the company's Third Party Portal URI, or self-access selection."""
    with runtime().database.session() as db:
        signed_in = _customer(db)
        if isinstance(signed_in, Response):
            return signed_in
        refused = _posted(signed_in)
        if refused:
            return refused
        try:
            tp, company = chosen_company(db, signed_in.customer_id, request.form.get("client_id", ""))
        except RequestRejected as exc:
            return _problem(str(exc), signed_in=signed_in, back_href=HOME, back_label="Back to Share My Data")
        g.client_id = tp.client_id
        if company.self_access:
            return _redirect(f"/customer/authorizations/self-access/{tp.client_id}", 303)
        if not tp.portal_uri:
            return _problem(f"{tp.display_name} has not registered a Third Party Portal URI.", signed_in=signed_in,
                            back_href=HOME, back_label="Back to Share My Data")
        return _redirect(tp.portal_uri)


@blueprint.route("/customer/authorizations/self-access/<client_id>", methods=["GET", "POST"])
def customer_self_access(client_id: str) -> Response:
    """A self-access user authorizing itself: service agreements and duration, no redirect (spec 4.7)."""
    rt = runtime()
    with rt.database.session() as db:
        signed_in = _customer(db)
        if isinstance(signed_in, Response):
            return signed_in
        try:
            tp, company = chosen_company(db, signed_in.customer_id, client_id)
        except RequestRejected:
            return _problem("This Self-Access registration is not yours.", status=404, signed_in=signed_in,
                            back_href=HOME, back_label="Back to Share My Data")
        if not company.self_access:
            return _problem("Authorize this company from its own website.", signed_in=signed_in, back_href=HOME)
        g.client_id = tp.client_id
        now = rt.clock.epoch()
        form = request.form if request.method == "POST" else None
        errors: dict[str, str] = {}
        if form is not None:
            refused = _posted(signed_in)
            if refused:
                return refused
            if form.get("action") == "cancel":
                return _redirect(HOME, 303)
            duration, errors = _duration(form)
            sa_ids, id_errors = _chosen(form, eligible_service_agreements(db, signed_in.customer_id, now))
            errors.update(id_errors)
            if not errors and duration is not None:
                try:
                    create_customer_authorization(
                        db, tp=tp, customer_id=signed_in.customer_id, data_groups=tp.data_groups or [],
                        service_agreement_ids=sa_ids, duration=duration, now=now,
                        resource_base=rt.resource_base_url(),
                    )
                    return _redirect(f"{HOME}?done=created", 303)
                except ConsentInvalid as exc:
                    errors = exc.errors
        agreements = eligible_service_agreements(db, signed_in.customer_id, now)
        chosen = _ticked(form, agreements, set())
        return _page(
            "customer/consent.html", 400 if errors else 200,
            action=f"/customer/authorizations/self-access/{tp.client_id}", carried={}, company=tp.display_name,
            replaces=False, errors=errors, show_groups=False, groups=[], chosen_groups=set(),
            agreements=[_sa_view(sa) for sa in agreements], chosen_sas=chosen,
            select_all=bool(form is not None and form.get("select_all")),
            duration=(form.get("duration") if form is not None else None) or "indefinite",
            end_date=form.get("end_date") if form is not None else None, min_end_date=None,
            earliest_end_date=_earliest_end_date(now), ask_email=False, email=None, signed_in=signed_in,
        )


@blueprint.route("/customer/authorizations/<int:authorization_id>/edit", methods=["GET", "POST"])
def customer_edit_authorization(authorization_id: int) -> Response:
    """The pencil: remove service agreements, change the end date (and groups with ``allow_group_edit``)."""
    rt = runtime()
    settings = rt.settings
    with rt.database.session() as db:
        signed_in = _customer(db)
        if isinstance(signed_in, Response):
            return signed_in
        now = rt.clock.epoch()
        try:
            authorization = customer_authorization(db, signed_in.customer_id, authorization_id, now)
        except NotFound:
            return _problem("There is no such current authorization.", "Authorization not found", 404,
                            signed_in=signed_in, back_href=HOME, back_label="Back to Share My Data")
        form = request.form if request.method == "POST" else None
        errors: dict[str, str] = {}
        if form is not None:
            refused = _posted(signed_in)
            if refused:
                return refused
            duration, errors = _duration(form)
            known = list(dict.fromkeys([*authorization.service_agreements,
                                        *eligible_service_agreements(db, signed_in.customer_id, now)]))
            keep, id_errors = _chosen(form, known)
            errors.update(id_errors)
            groups = form.getlist("data_groups") if settings.allow_group_edit else None
            if not errors and duration is not None:
                try:
                    outcome = edit_by_customer(
                        db, signed_in.customer_id, authorization_id, keep_service_agreement_ids=keep,
                        duration=duration, now=now, resource_base=rt.resource_base_url(), data_groups=groups,
                        end_date_edit=settings.end_date_edit, allow_group_edit=settings.allow_group_edit,
                    )
                    done = "cancelled" if outcome.cancelled else "changed" if outcome.changed else "unchanged"
                    return _redirect(f"{HOME}?done={done}", 303)
                except ConsentInvalid as exc:
                    errors = exc.errors
        end = authorization.ends_at
        if form is not None:
            duration_choice, end_date = form.get("duration") or "indefinite", form.get("end_date")
            chosen_sas = _ticked(form, list(authorization.service_agreements), set())
            chosen_groups = set(form.getlist("data_groups"))
        else:
            duration_choice = "indefinite" if end is None else "end_date"
            end_date = None if end is None else local_date(end - 1).isoformat()
            chosen_sas = {sa.sa_number for sa in authorization.service_agreements}
            chosen_groups = set(authorization.data_groups)
        return _page(
            "customer/edit.html", 400 if errors else 200, authorization_id=authorization.id,
            company=authorization.third_party.display_name, errors=errors,
            allow_group_edit=settings.allow_group_edit,
            groups=_group_views(list(authorization.third_party.data_groups or [])), chosen_groups=chosen_groups,
            shared_groups=", ".join(GROUPS[t][0] for t in DATA_GROUP_PAGE_ORDER if t in authorization.data_groups),
            agreements=[_sa_view(sa) for sa in authorization.service_agreements], chosen_sas=chosen_sas,
            duration=duration_choice, end_date=end_date, earliest_end_date=_earliest_end_date(now),
            signed_in=signed_in,
        )


@blueprint.route("/customer/authorizations/<int:authorization_id>/cancel", methods=["GET", "POST"])
def customer_cancel_authorization(authorization_id: int) -> Response:
    """The X: a confirmation page, then cancellation effective at the next Pacific midnight."""
    rt = runtime()
    with rt.database.session() as db:
        signed_in = _customer(db)
        if isinstance(signed_in, Response):
            return signed_in
        now = rt.clock.epoch()
        try:
            authorization = customer_authorization(db, signed_in.customer_id, authorization_id, now)
            if request.method == "POST":
                refused = _posted(signed_in)
                if refused:
                    return refused
                cancel_by_customer(db, signed_in.customer_id, authorization_id, now, rt.resource_base_url())
                return _redirect(f"{HOME}?done=cancelled", 303)
        except NotFound:
            return _problem("There is no such current authorization.", "Authorization not found", 404,
                            signed_in=signed_in, back_href=HOME, back_label="Back to Share My Data")
        return _page("customer/cancel.html", authorization_id=authorization.id,
                     company=authorization.third_party.display_name, signed_in=signed_in)
