"""The Third Party Portal's registrations (spec 5.1-5.2): form validation, the lifecycle and its deadlines.

Submitted --(e-mail link within 5 days)--> In Review --(review)--> Accepted --(tests within 90 days)-->
Approved; a link not used in time discards the submission, a missed testing deadline expires the
registration. Deadlines are applied lazily by :func:`advance_lifecycle` whenever a registration is
touched (every API request over its certificate, every portal page), always by the simulated clock.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.authorizations import revoke_all_for_third_party
from mock_custodian.domain.certificate_checks import (
    CertificateRefused,
    CheckedCertificate,
    TrustAnchors,
    check_certificate_upload,
)
from mock_custodian.domain.milestones import (
    API_CONNECTIVITY,
    APPLICATION_INFORMATION,
    APPROVED,
    OAUTH_TEST,
    REQUIRED_TESTS,
    record_milestone,
    send_approval_email,
)
from mock_custodian.domain.outbox import cancel_future_emails, send_email
from mock_custodian.domain.world import APPLICATION_INFORMATION_ID_START, CLIENT_ID_START, system_authorization
from mock_custodian.errors import Forbidden, NotFound, PGEError
from mock_custodian.pki import DevPKI
from mock_custodian.store.db import next_id
from mock_custodian.store.hashed import check_password, hash_password, token_key
from mock_custodian.store.models import Authorization, PortalSession, ThirdParty, ThirdPartyCertificate, Token
from mock_custodian.vocabulary import ADVANCING, CREDENTIALED, DATA_GROUPS, LIVE, RegistrationStatus

CONFIRMATION_WINDOW_S = 5 * 86400  # spec 5.2: the e-mail link must be used within 5 days
TESTING_WINDOW_S = 90 * 86400  # spec 5.2: required tests within 90 days of acceptance
PORTAL_SESSION_TTL_S = 8 * 3600

LIVE_STATUSES = LIVE
STATUS_LABELS = {
    RegistrationStatus.SUBMITTED: "Submitted (waiting for e-mail confirmation)",
    RegistrationStatus.IN_REVIEW: "In Review",
    RegistrationStatus.ACCEPTED: "Accepted (testing)",
    RegistrationStatus.APPROVED: "Approved",
    RegistrationStatus.ON_HOLD: "On Hold",
    RegistrationStatus.EXPIRED: "Expired",
    RegistrationStatus.DISCARDED: "Discarded (e-mail link not used within 5 days)",
    RegistrationStatus.TERMINATED: "Terminated",
}
USER_TYPE_LABELS = {
    "standard": "Standard User",
    "self_access": "Self-Access User",
    "eef": "Energy Efficiency Finance",
    "cca": "Community Choice Aggregator",
}
_USER_TYPE_ALIASES = {
    "standard": "standard", "standard user": "standard", "standalone": "standard",
    "self_access": "self_access", "self-access": "self_access", "self-access user": "self_access",
    "self access": "self_access",
    "eef": "eef", "energy efficiency finance": "eef",
    "cca": "cca", "community choice aggregator": "cca",
}
_GROUP_ALIASES = {g.lower(): g for g in DATA_GROUPS} | {"program enrollment": "ProgramEnrollment",
                                                         "program_enrollment": "ProgramEnrollment"}
HISTORY_MONTHS = (24, 36, 48)
OAUTH_TYPES = ("standard", "eef")  # the user types that run the consent flow and need its URIs

_EMAIL = re.compile(r"^[^@\s=:]+@[^@\s=:]+\.[^@\s=:]+$")
_FORBIDDEN = re.compile(r"[=:]")

# Field name -> label, in form order; JSON API and form share these names.
FIELD_LABELS: dict[str, str] = {
    "user_type": "User type",
    "legal_name": "Company legal name",
    "display_name": "Display name",
    "tax_id": "Tax ID (EIN)",
    "business_contact_name": "Business contact name",
    "business_contact_email": "Business contact e-mail",
    "business_contact_phone": "Business contact phone",
    "technical_contact_name": "Technical contact name",
    "technical_contact_email": "Technical contact e-mail",
    "technical_contact_phone": "Technical contact phone",
    "portal_username": "Portal user name",
    "portal_password": "Portal password",
    "security_question": "Security question",
    "security_answer": "Security answer",
    "description": "Application description",
    "phone": "Application phone",
    "oauth_url": "OAuth URL (legacy)",
    "third_party_portal_uri": "Third Party Portal URI",
    "redirect_uri": "Redirect URI",
    "notification_uri": "Notification URI",
    "notify_daily": "Notify me as data is ready (Daily)",
    "data_groups": "Customer information you need",
    "history_months": "Historical data requested (months)",
    "visibility": "Visibility",
    "certificate": "SSL certificate",
    "terms_accepted": "Terms and Conditions",
}
FREE_TEXT = ("legal_name", "display_name", "description", "phone", "business_contact_name",
             "business_contact_phone", "technical_contact_name", "technical_contact_phone", "security_question",
             "security_answer", "portal_username")
MAX_LENGTHS = {"display_name": 200, "legal_name": 200, "portal_username": 100, "portal_password": 100,
               "phone": 32, "business_contact_phone": 32, "technical_contact_phone": 32}
EDITABLE = ("display_name", "description", "phone", "business_contact_name", "business_contact_email",
            "business_contact_phone", "technical_contact_name", "technical_contact_email", "technical_contact_phone",
            "oauth_url", "third_party_portal_uri", "redirect_uri", "notification_uri", "notify_daily", "data_groups",
            "history_months", "visibility", "portal_password", "security_question", "security_answer")


# --------------------------------------------------------------------------------------------- errors
class RegistrationInvalid(PGEError):
    """400 from the portal: one message per failing field (spec 5.1: the form re-renders with them)."""

    status = 400

    def __init__(self, fields: dict[str, str]) -> None:
        summary = "; ".join(f"{FIELD_LABELS.get(k, k)}: {v}" for k, v in fields.items())
        super().__init__("invalid_request", summary)
        self.fields = dict(fields)

    def body(self) -> str:
        import json

        return json.dumps({"error": self.error, "error_description": self.description, "fields": self.fields},
                          separators=(",", ":"))


class PortalUnauthorized(PGEError):
    """401 from the portal's JSON API: no or wrong portal sign-in."""

    status = 401

    def __init__(self, description: str = "Sign in with the registration's portal user name and password") -> None:
        super().__init__("unauthorized", description, headers={"WWW-Authenticate": 'Basic realm="Third Party Portal"'})


class RegistrationConflict(PGEError):
    """409: the action does not fit the registration's current status (e.g. approving a discarded one)."""

    status = 409

    def __init__(self, description: str) -> None:
        super().__init__("conflict", description)


class RegistrationNotFound(PGEError):
    status = 404

    def __init__(self, description: str = "No such registration") -> None:
        super().__init__("not_found", description)


# --------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class PortalPolicy:
    """The settings registration needs, as plain values (the store never reads Settings itself)."""

    anchors: TrustAnchors
    allow_self_signed: bool = False
    client_auth_eku_policy: str = "warn"
    auto_accept: bool = True
    review_delay: int = 0
    cert_activation_delay: int = 0
    portal_base_url: str = "https://sharemydata.pge.com"


def local_time(epoch: float | None) -> str:
    """A Pacific wall-clock rendering for pages and e-mails."""
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, PACIFIC).strftime("%Y-%m-%d %H:%M %Z")


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value).strip()


def parse_bool(value: Any) -> bool | None:
    """Checkbox and JSON spellings of a boolean; None when the value says neither."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n", ""):
        return False
    return None


def flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept nested contacts (``business_contact: {name, email, phone}``) as well as flat field names."""
    out = dict(raw)
    for contact in ("business_contact", "technical_contact"):
        nested = raw.get(contact)
        if isinstance(nested, Mapping):
            for key in ("name", "email", "phone"):
                if key in nested and f"{contact}_{key}" not in out:
                    out[f"{contact}_{key}"] = nested[key]
            out.pop(contact, None)
    aliases = {"portal_uri": "third_party_portal_uri", "scope_selection_uri": "oauth_url",
               "visible": "visibility", "username": "portal_username", "password": "portal_password"}
    for alias, name in aliases.items():
        if alias in out and name not in out:
            out[name] = out.pop(alias)
    return out


def _https_problem(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return "must not contain spaces"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "is not a well-formed URL"
    if parts.scheme != "https":
        return "must be an https:// URL"
    if not parts.hostname:
        return "must name a host (https://host/path)"
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "has a malformed port"
    if parts.fragment or value.endswith("#"):
        return "must not contain a fragment (#...)"
    return None


def _groups(value: Any) -> tuple[list[str], str | None]:
    if value is None or value == "":
        return [], None
    items = value if isinstance(value, list | tuple) else str(value).replace(";", ",").split(",")
    chosen = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        canonical = _GROUP_ALIASES.get(name.lower())
        if canonical is None:
            return [], f"{name!r} is not one of {', '.join(DATA_GROUPS)}"
        if canonical not in chosen:
            chosen.append(canonical)
    return [g for g in DATA_GROUPS if g in chosen], None


def _live_conflict(db: Session, column: Any, value: str, exclude_id: int | None) -> bool:
    query = select(ThirdParty.id).where(func.lower(column) == value.lower()).where(
        ThirdParty.status.in_(LIVE_STATUSES))
    if exclude_id is not None:
        query = query.where(ThirdParty.id != exclude_id)
    return db.execute(query.limit(1)).first() is not None


def validate_fields(db: Session, raw: Mapping[str, Any], *, user_type: str, partial: bool,
                    exclude_id: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalised values and one error per failing field (spec 5.1's validation rules).

    ``partial`` validates only the fields present (an edit); otherwise every required field must be there.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    present = set(raw) if partial else set(FIELD_LABELS)
    required = {"legal_name", "display_name", "tax_id", "business_contact_name", "business_contact_email",
                "business_contact_phone", "technical_contact_name", "technical_contact_email",
                "technical_contact_phone", "portal_username", "portal_password", "security_question",
                "security_answer", "description", "phone", "notification_uri"}
    if user_type in OAUTH_TYPES:
        required |= {"third_party_portal_uri", "redirect_uri"}

    for name in FIELD_LABELS:
        if name not in present or name in ("user_type", "certificate", "terms_accepted", "notify_daily",
                                            "visibility", "data_groups", "history_months"):
            continue
        value = _text(raw, name)
        if not value:
            if name in required:
                errors[name] = "is required" + (
                    " for Standard and Energy Efficiency Finance users"
                    if name in ("third_party_portal_uri", "redirect_uri") else "")
            else:
                values[name] = None
            continue
        if name in FREE_TEXT and _FORBIDDEN.search(value):
            errors[name] = "must not contain '=' or ':'"
            continue
        if len(value) > MAX_LENGTHS.get(name, 2000):
            errors[name] = f"is longer than {MAX_LENGTHS.get(name, 2000)} characters"
            continue
        if name == "tax_id" and not re.fullmatch(r"\d{9}", value):
            errors[name] = "must be exactly 9 digits (a U.S. Employer Identification Number, no dash)"
            continue
        if name.endswith("_email") and not _EMAIL.match(value):
            errors[name] = "is not a valid e-mail address"
            continue
        if name in ("oauth_url", "third_party_portal_uri", "redirect_uri", "notification_uri"):
            problem = _https_problem(value)
            if problem:
                errors[name] = problem
                continue
        if name == "portal_password" and len(value) < 8:
            errors[name] = "must have at least 8 characters"
            continue
        if name == "display_name" and _live_conflict(db, ThirdParty.display_name, value, exclude_id):
            errors[name] = f"{value!r} is already the display name of another registration; display names are unique"
            continue
        if name == "portal_username" and _live_conflict(db, ThirdParty.portal_username, value, exclude_id):
            errors[name] = f"{value!r} is taken; choose another portal user name"
            continue
        values[name] = value

    for name, default in (("notify_daily", False), ("visibility", True), ("terms_accepted", False)):
        if name in raw:
            parsed = parse_bool(raw.get(name))
            if parsed is None:
                errors[name] = "must be true or false"
            else:
                values[name] = parsed
        elif not partial:
            values[name] = default
    if not partial and not values.get("terms_accepted"):
        errors["terms_accepted"] = ("must be accepted: the Share My Data Terms and Conditions and the CPUC "
                                    "privacy rules")
    if "data_groups" in present and ("data_groups" in raw or not partial):
        groups, problem = _groups(raw.get("data_groups"))
        if problem:
            errors["data_groups"] = problem
        elif not groups and user_type in OAUTH_TYPES:
            errors["data_groups"] = "tick at least one: Basic, Account, Billing, Usage, Program Enrollment"
        else:
            values["data_groups"] = groups
    if "history_months" in present and ("history_months" in raw or not partial):
        text = _text(raw, "history_months")
        if not text:
            errors["history_months"] = "is required: 24, 36 or 48"
        elif not text.isdigit() or int(text) not in HISTORY_MONTHS:
            errors["history_months"] = f"must be 24, 36 or 48 (got {text!r})"
        else:
            values["history_months"] = int(text)
    return values, errors


def parse_user_type(value: Any) -> str | None:
    return _USER_TYPE_ALIASES.get(str(value or "").strip().lower())


# --------------------------------------------------------------------------------------------- certificates
def check_certificate(pem: str, policy: PortalPolicy) -> CheckedCertificate:
    return check_certificate_upload(pem, policy.anchors, allow_self_signed=policy.allow_self_signed,
                                    client_auth_eku_policy=policy.client_auth_eku_policy)


def issue_certificate_for_csr(pki: DevPKI, csr_pem: str) -> str:
    """The dev CA's client certificate for a developer's CSR, as a chain PEM (leaf + intermediate)."""
    try:
        _, chain = pki.sign_csr(csr_pem.encode())
    except ValueError as exc:
        raise RegistrationInvalid({"csr": str(exc)}) from None
    return chain.decode()


def _certificate_row(tp: ThirdParty, checked: CheckedCertificate, now: float, activates_at: float,
                     status: str) -> ThirdPartyCertificate:
    return ThirdPartyCertificate(
        third_party_id=tp.id, fingerprint_sha256=checked.fingerprint_sha256, pem=checked.pem, status=status,
        uploaded_at=now, activates_at=activates_at, warnings=list(checked.warnings),
    )


def certificate_state(cert: ThirdPartyCertificate, now: float) -> str:
    """active | pending | retired, as of ``now`` (a pending one becomes active at ``activates_at``)."""
    if cert.status == "retired" or (cert.retires_at is not None and cert.retires_at <= now):
        return "retired"
    if cert.status == "pending" and (cert.activates_at is None or cert.activates_at > now):
        return "pending"
    return "active"


def replace_certificate(db: Session, tp: ThirdParty, pem: str, now: float,
                        policy: PortalPolicy) -> ThirdPartyCertificate:
    """Manage Registration > Edit > SSL Certificate Information > Update (spec 3.5).

    With ``cert_activation_delay`` 0 the new certificate works at once and the old one stops; otherwise
    the old one works until the new one activates, with no overlap. A second upload while one is
    pending replaces the pending one.
    """
    try:
        checked = check_certificate(pem, policy)
    except CertificateRefused as exc:
        raise RegistrationInvalid({"certificate": str(exc)}) from None
    activates_at = now + max(0, policy.cert_activation_delay)
    for cert in _certificates(db, tp):
        state = certificate_state(cert, now)
        if state == "pending":
            cert.status = "retired"
            cert.retires_at = now
            cancel_future_emails(db, now, cert.fingerprint_sha256)
        elif state == "active":
            cert.retires_at = activates_at
            if activates_at <= now:
                cert.status = "retired"
    if activates_at <= now:
        new = _certificate_row(tp, checked, now, now, "active")
    else:
        new = _certificate_row(tp, checked, now, activates_at, "pending")
    db.add(new)
    db.flush()
    contact = _contact_email(tp)
    if contact:
        send_email(
            db, contact, "Share My Data: SSL certificate update complete",
            f"Hello {_contact_name(tp)},\n\nThe SSL certificate you uploaded for {tp.display_name} is now in "
            f"use for API calls (SHA-256 fingerprint {checked.fingerprint_sha256}, subject {checked.subject}).\n"
            "From now on, calls must present this certificate; the previous one is refused.\n\n"
            "PG&E Share My Data (mock-custodian)\n",
            activates_at,
        )
    return new


def _certificates(db: Session, tp: ThirdParty) -> list[ThirdPartyCertificate]:
    return list(db.execute(select(ThirdPartyCertificate).where(ThirdPartyCertificate.third_party_id == tp.id)
                           .order_by(ThirdPartyCertificate.id)).scalars())


def describe_unregistered_certificate(db: Session, fingerprint: str, subject: str | None, now: float) -> str:
    """Why a verified certificate is not accepted: replaced, not yet active, or never registered."""
    rows = list(db.execute(select(ThirdPartyCertificate, ThirdParty.client_id)
                           .join(ThirdParty, ThirdParty.id == ThirdPartyCertificate.third_party_id)
                           .where(ThirdPartyCertificate.fingerprint_sha256 == fingerprint)))
    short = fingerprint[:16]
    for cert, client_id in rows:
        state = certificate_state(cert, now)
        if state == "pending":
            return (f"this certificate (SHA-256 {short}...) is client {client_id}'s replacement certificate and "
                    f"is not active until {local_time(cert.activates_at)}; keep presenting the current one until "
                    "then")
        if state == "retired":
            return (f"this certificate (SHA-256 {short}...) was replaced for client {client_id} at "
                    f"{local_time(cert.retires_at)}; present the certificate registered now")
    return (f"the certificate (SHA-256 {short}..., subject {subject or 'unknown'}) chains to a trusted CA but is "
            "not registered to any client; present the certificate you uploaded in the Third Party Portal "
            "(matching is by SHA-256 fingerprint, not by subject)")


# --------------------------------------------------------------------------------------------- lifecycle
def _contact_email(tp: ThirdParty) -> str:
    return str((tp.business_contact or {}).get("email") or "")


def _contact_name(tp: ThirdParty) -> str:
    return str((tp.business_contact or {}).get("name") or tp.display_name)


def _allocate_client_id(db: Session) -> str:
    """5 digits, zero-padded (spec 1.3); skips ids a scenario gave explicitly."""
    while True:
        candidate = str(next_id(db, "client_id", CLIENT_ID_START)).zfill(5)
        if db.execute(select(ThirdParty.id).where(ThirdParty.client_id == candidate)).first() is None:
            return candidate


def _allocate_application_information_id(db: Session) -> str:
    while True:
        candidate = str(next_id(db, "application_information_id", APPLICATION_INFORMATION_ID_START))
        exists = db.execute(select(ThirdParty.id).where(ThirdParty.application_information_id == candidate)).first()
        if exists is None:
            return candidate


def confirmation_link(portal_base_url: str, token: str) -> str:
    return f"{portal_base_url.rstrip('/')}/portal/confirm?token={token}"


@dataclass(frozen=True)
class Submission:
    """A stored registration, and the certificate chain the dev CA issued when a CSR stood in for one."""

    third_party: ThirdParty
    issued_certificate_chain: str | None = None


def register(db: Session, raw: Mapping[str, Any], now: float, policy: PortalPolicy,
             pki: DevPKI | None = None) -> Submission:
    """Submit the registration form: validate everything, store it Submitted, e-mail the confirmation link.

    Nothing is stored when any field fails. ``csr`` (with ``pki``) stands in for ``certificate``: the dev
    CA issues the certificate and it is registered.
    """
    raw = flatten(raw)
    user_type = parse_user_type(raw.get("user_type"))
    errors: dict[str, str] = {}
    if user_type is None:
        errors["user_type"] = ("must be one of Standard User, Self-Access User, Energy Efficiency Finance, "
                               "Community Choice Aggregator")
    values, field_errors = validate_fields(db, raw, user_type=user_type or "standard", partial=False)
    errors.update(field_errors)
    pem = _text(raw, "certificate")
    csr = _text(raw, "csr")
    issued_chain = None
    checked = None
    if not pem and csr and pki is not None:
        try:
            issued_chain = issue_certificate_for_csr(pki, csr)
        except RegistrationInvalid as exc:
            errors.update(exc.fields)
        pem = issued_chain or ""
    if not pem:
        errors.setdefault("certificate", "is required: upload your client certificate (PEM), or a CSR for the "
                          "dev CA to sign")
    else:
        try:
            checked = check_certificate(pem, policy)
        except CertificateRefused as exc:
            errors["certificate"] = str(exc)
    if errors:
        raise RegistrationInvalid(errors)
    assert user_type is not None and checked is not None
    tp = ThirdParty(
        client_id=_allocate_client_id(db),
        client_secret=str(uuid.uuid4()),
        registration_access_token=str(uuid.uuid4()),
        application_information_id=_allocate_application_information_id(db),
        user_type=user_type,
        status=RegistrationStatus.SUBMITTED,
        legal_name=values["legal_name"],
        display_name=values["display_name"],
        tax_id=values["tax_id"],
        description=values["description"],
        phone=values["phone"],
        business_contact={k: values[f"business_contact_{k}"] for k in ("name", "email", "phone")},
        technical_contact={k: values[f"technical_contact_{k}"] for k in ("name", "email", "phone")},
        redirect_uri=values.get("redirect_uri"),
        portal_uri=values.get("third_party_portal_uri"),
        scope_selection_uri=values.get("oauth_url"),
        notification_uri=values["notification_uri"],
        notify_daily=bool(values.get("notify_daily")),
        data_groups=values.get("data_groups", []),
        history_months=values["history_months"],
        visible=values.get("visibility", True),
        portal_username=values["portal_username"],
        portal_password=hash_password(values["portal_password"]),
        security_question=values["security_question"],
        security_answer=values["security_answer"],
        cca_territory=[],
        milestones={},
        created_at=now,
        terms_accepted_at=now,
        confirmation_token=secrets.token_urlsafe(24),
        confirmation_sent_at=now,
    )
    db.add(tp)
    db.flush()
    db.add(_certificate_row(tp, checked, now, now, "active"))
    link = confirmation_link(policy.portal_base_url, tp.confirmation_token or "")
    send_email(
        db, _contact_email(tp), "Share My Data: confirm your Third Party registration",
        f"Hello {_contact_name(tp)},\n\nThank you for registering {tp.display_name} "
        f"({USER_TYPE_LABELS[tp.user_type]}) for Share My Data.\n\n"
        f"Confirm your e-mail address within 5 days by opening this link:\n\n{link}\n\n"
        f"The link expires on {local_time(now + CONFIRMATION_WINDOW_S)}. Nothing is processed before it is used; "
        "after that the registration is discarded and the form must be submitted again.\n\n"
        "PG&E Share My Data (mock-custodian)\n",
        now,
    )
    db.flush()
    return Submission(tp, issued_chain)


def confirm(db: Session, token: str, now: float, policy: PortalPolicy) -> ThirdParty:
    """The e-mail link: within 5 days it moves the registration to In Review (and on to Accepted)."""
    tp = None
    if token:
        tp = db.execute(select(ThirdParty).where(ThirdParty.confirmation_token == token)).scalar_one_or_none()
    if tp is None:
        raise RegistrationNotFound("This confirmation link is not valid; use the link from the most recent e-mail")
    advance_lifecycle(db, tp, now)
    if tp.status == RegistrationStatus.DISCARDED:
        raise RegistrationConflict(
            f"This confirmation link expired on {local_time((tp.confirmation_sent_at or 0) + CONFIRMATION_WINDOW_S)} "
            "(links work for 5 days); the registration was discarded: submit the form again")
    if tp.status != RegistrationStatus.SUBMITTED:
        return tp  # already used: the link stays harmless
    tp.status = RegistrationStatus.IN_REVIEW
    tp.confirmed_at = now
    tp.review_due_at = now + max(0, policy.review_delay) if policy.auto_accept else None
    advance_lifecycle(db, tp, now)
    return tp


def accept(db: Session, tp: ThirdParty, at: float) -> None:
    """Acceptance (spec 5.2): credentials shown, bulk and registration entries created, testing may begin."""
    if tp.status not in (RegistrationStatus.SUBMITTED, RegistrationStatus.IN_REVIEW):
        raise RegistrationConflict(f"Only a submitted or in-review registration can be accepted; it is {tp.status}")
    tp.status = RegistrationStatus.ACCEPTED
    tp.accepted_at = at
    tp.client_id_issued_at = at
    tp.review_due_at = None
    if tp.confirmed_at is None:
        tp.confirmed_at = at
    existing = {a.kind for a in db.execute(select(Authorization).where(Authorization.third_party_id == tp.id)
                                           .where(Authorization.kind.in_(("bulk", "registration")))).scalars()}
    for kind in ("bulk", "registration"):
        if kind not in existing:
            db.add(system_authorization(db, tp, kind, at))
    tests = ", ".join(REQUIRED_TESTS[tp.user_type])
    send_email(
        db, _contact_email(tp), "Share My Data: registration accepted, testing may begin",
        f"Hello {_contact_name(tp)},\n\nYour registration {tp.display_name} was accepted. Sign in to the Third "
        "Party Portal to see your client_id, client_secret and registration_access_token in the Registration "
        "Milestone table, and to download PG&E's SSL certificate.\n\n"
        f"Required tests: {tests}. Complete them by {local_time(at + TESTING_WINDOW_S)} (90 days); "
        "otherwise the registration expires and you must register again.\n\n"
        "PG&E Share My Data (mock-custodian)\n",
        at,
    )


def advance_lifecycle(db: Session, tp: ThirdParty, now: float) -> bool:
    """Apply every deadline that has passed by ``now``; returns whether the status changed."""
    start = tp.status
    for _ in range(4):
        confirm_by = (tp.confirmation_sent_at or tp.created_at) + CONFIRMATION_WINDOW_S
        if tp.status == RegistrationStatus.SUBMITTED and confirm_by <= now:
            tp.status = RegistrationStatus.DISCARDED
        elif tp.status == RegistrationStatus.IN_REVIEW and tp.review_due_at is not None and tp.review_due_at <= now:
            accept(db, tp, tp.review_due_at)
        elif (tp.status == RegistrationStatus.ACCEPTED and tp.accepted_at is not None
              and tp.accepted_at + TESTING_WINDOW_S <= now):
            expire(db, tp, tp.accepted_at + TESTING_WINDOW_S, reason="the 90-day testing window ended")
        else:
            break
    return tp.status != start


def advance_registrations(db: Session, third_party_ids: Iterable[int], now: float) -> None:
    """:func:`advance_lifecycle` for several registrations (the API guard's certificate owners)."""
    for third_party_id in third_party_ids:
        tp = db.get(ThirdParty, third_party_id)
        if tp is not None and tp.status in ADVANCING:
            advance_lifecycle(db, tp, now)


def _revoke_tokens(db: Session, tp: ThirdParty, at: float) -> None:
    db.execute(update(Token).where(Token.third_party_id == tp.id).where(Token.revoked_at.is_(None))
               .values(revoked_at=at))


def expire(db: Session, tp: ThirdParty, at: float, reason: str = "expired by an administrator") -> None:
    """Expired (spec 5.2): credentials stop working; the third party must register again (new client_id)."""
    if tp.status not in (*ADVANCING, RegistrationStatus.ON_HOLD):
        raise RegistrationConflict(f"An {tp.status} registration cannot expire")
    tp.status = RegistrationStatus.EXPIRED
    tp.expired_at = at
    _revoke_tokens(db, tp, at)
    missing = [t for t in REQUIRED_TESTS[tp.user_type] if t not in (tp.milestones or {})]
    send_email(
        db, _contact_email(tp), "Share My Data: registration expired",
        f"Hello {_contact_name(tp)},\n\nYour registration {tp.display_name} (client_id {tp.client_id}) expired "
        f"on {local_time(at)}: {reason}. Tests not completed: {', '.join(missing) or 'none'}.\n"
        "Its credentials no longer work. To continue, register again; you will receive a new client_id.\n\n"
        "PG&E Share My Data (mock-custodian)\n",
        at,
    )


def approve(db: Session, tp: ThirdParty, now: float) -> None:
    """Administrative approval (the final review), whether or not every test was recorded."""
    if tp.status not in (RegistrationStatus.ACCEPTED, RegistrationStatus.ON_HOLD):
        raise RegistrationConflict(f"Only an accepted registration can be approved; it is {tp.status}")
    tp.status = RegistrationStatus.APPROVED
    tp.approved_at = now
    tp.milestones = dict(tp.milestones or {}) | {APPROVED: now}
    send_approval_email(db, tp, now)




def hold(db: Session, tp: ThirdParty, now: float) -> None:
    if tp.status not in (RegistrationStatus.ACCEPTED, RegistrationStatus.APPROVED):
        raise RegistrationConflict(f"Only an accepted or approved registration can be put on hold; it is {tp.status}")
    tp.status = RegistrationStatus.ON_HOLD


def resume(db: Session, tp: ThirdParty, now: float) -> None:
    if tp.status != RegistrationStatus.ON_HOLD:
        raise RegistrationConflict(f"Only a registration on hold can resume; it is {tp.status}")
    tp.status = RegistrationStatus.APPROVED if tp.approved_at is not None else RegistrationStatus.ACCEPTED


def terminate(db: Session, tp: ThirdParty, now: float) -> None:
    """Termination: every token is invalidated and every authorization revoked (spec 5.2 default)."""
    if tp.status == RegistrationStatus.TERMINATED:
        raise RegistrationConflict("The registration is already terminated")
    tp.status = RegistrationStatus.TERMINATED
    tp.terminated_at = now
    revoke_all_for_third_party(db, tp, now)
    send_email(db, _contact_email(tp), "Share My Data: registration terminated",
               f"Hello {_contact_name(tp)},\n\nAs requested, {tp.display_name} (client_id {tp.client_id}) was "
               "terminated. Its tokens and authorizations no longer work.\n\nPG&E Share My Data (mock-custodian)\n",
               now)


def update_registration(db: Session, tp: ThirdParty, raw: Mapping[str, Any], now: float) -> list[str]:
    """Manage Registration > Edit (spec 5.2): validated like the form; returns the fields changed.

    History length and data groups apply to authorizations created afterwards (they are copied into
    each authorization when it is made).
    """
    raw = flatten(raw)
    unknown = sorted(k for k in raw if k not in EDITABLE and k != "certificate")
    if unknown:
        raise RegistrationInvalid({k: "cannot be edited" if k in FIELD_LABELS else "is not a registration field"
                                   for k in unknown})
    if tp.status not in LIVE_STATUSES:
        raise RegistrationConflict(f"A {tp.status} registration cannot be edited")
    values, errors = validate_fields(db, raw, user_type=tp.user_type, partial=True, exclude_id=tp.id)
    if errors:
        raise RegistrationInvalid(errors)
    changed = []
    simple = {"display_name": "display_name", "description": "description", "phone": "phone",
              "oauth_url": "scope_selection_uri", "third_party_portal_uri": "portal_uri",
              "redirect_uri": "redirect_uri",
              "notification_uri": "notification_uri", "notify_daily": "notify_daily", "data_groups": "data_groups",
              "history_months": "history_months", "visibility": "visible",
              "security_question": "security_question", "security_answer": "security_answer"}
    for name, column in simple.items():
        if name in values and getattr(tp, column) != values[name]:
            setattr(tp, column, values[name])
            changed.append(name)
    if values.get("portal_password") and not check_password(tp.portal_password, values["portal_password"]):
        tp.portal_password = hash_password(values["portal_password"])
        changed.append("portal_password")
    for contact in ("business_contact", "technical_contact"):
        current = dict(getattr(tp, contact) or {})
        for key in ("name", "email", "phone"):
            name = f"{contact}_{key}"
            if name in values and current.get(key) != values[name]:
                current[key] = values[name]
                changed.append(name)
        setattr(tp, contact, current)
    return changed


# --------------------------------------------------------------------------------------------- portal sign-in
def find_registration(db: Session, client_id_or_username: str) -> ThirdParty:
    """By client_id, or the newest registration with that portal user name."""
    key = (client_id_or_username or "").strip()
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == key)).scalar_one_or_none()
    if tp is None:
        tp = db.execute(select(ThirdParty).where(func.lower(ThirdParty.portal_username) == key.lower())
                        .order_by(ThirdParty.id.desc()).limit(1)).scalar_one_or_none()
    if tp is None:
        raise RegistrationNotFound(f"No registration has client_id or portal user name {key!r}")
    return tp


def authenticate_portal(db: Session, username: str, password: str, now: float) -> ThirdParty:
    """Portal sign-in: one set of credentials per registration, shared by its staff (spec 5.1)."""
    tp = db.execute(select(ThirdParty).where(func.lower(ThirdParty.portal_username) == (username or "").lower())
                    .order_by(ThirdParty.id.desc()).limit(1)).scalar_one_or_none()
    if tp is None or not check_password(tp.portal_password, password):
        raise PortalUnauthorized("Wrong portal user name or password")
    advance_lifecycle(db, tp, now)
    return tp


def reset_password(db: Session, username: str, answer: str, new_password: str) -> ThirdParty:
    """A password reset needs the security answer (spec 5.1)."""
    tp = db.execute(select(ThirdParty).where(func.lower(ThirdParty.portal_username) == (username or "").lower())
                    .order_by(ThirdParty.id.desc()).limit(1)).scalar_one_or_none()
    if tp is None or not tp.security_answer or not hmac.compare_digest(
            tp.security_answer.strip().lower().encode(), (answer or "").strip().lower().encode()):
        raise PortalUnauthorized("Wrong user name or security answer")
    if len(new_password or "") < 8:
        raise RegistrationInvalid({"portal_password": "must have at least 8 characters"})
    tp.portal_password = hash_password(new_password)
    return tp


def start_session(db: Session, tp: ThirdParty, now: float) -> str:
    """A new portal sign-in; returns the cookie value (the database keeps only its SHA-256)."""
    cookie = secrets.token_urlsafe(32)
    session = PortalSession(session_id=token_key(cookie), third_party_id=tp.id,
                            csrf_token=secrets.token_urlsafe(24), created_at=now, expires_at=now + PORTAL_SESSION_TTL_S)
    db.add(session)
    return cookie


def session_registration(db: Session, session_id: str | None, now: float) -> tuple[PortalSession, ThirdParty] | None:
    if not session_id:
        return None
    session = db.get(PortalSession, token_key(session_id))
    if session is None or session.expires_at <= now:
        return None
    tp = db.get(ThirdParty, session.third_party_id)
    if tp is None:
        return None
    advance_lifecycle(db, tp, now)
    return session, tp


def end_session(db: Session, session_id: str | None) -> None:
    if session_id:
        session = db.get(PortalSession, token_key(session_id))
        if session is not None:
            db.delete(session)


# --------------------------------------------------------------------------------------------- views
def milestone_rows(tp: ThirdParty) -> list[dict[str, Any]]:
    """The Registration Milestone table: each step with the time it happened (None: not yet)."""
    milestones = tp.milestones or {}
    rows: list[dict[str, Any]] = [
        {"milestone": "Registration Submitted", "completed_at": tp.created_at},
        # A scenario-loaded registration never saw the e-mail: acceptance implies it.
        {"milestone": "E-mail Confirmed", "completed_at": tp.confirmed_at or tp.accepted_at},
        {"milestone": "Accepted", "completed_at": tp.accepted_at},
    ]
    for test in REQUIRED_TESTS[tp.user_type]:
        rows.append({"milestone": f"{test}: Completed", "completed_at": milestones.get(test)})
    rows.append({"milestone": "Approved", "completed_at": tp.approved_at or milestones.get(APPROVED)})
    if tp.status == RegistrationStatus.EXPIRED:
        rows.append({"milestone": "Expired", "completed_at": tp.expired_at})
    if tp.status == RegistrationStatus.TERMINATED:
        rows.append({"milestone": "Terminated", "completed_at": tp.terminated_at})
    for row in rows:
        row["completed_local"] = local_time(row["completed_at"])
    return rows


def credentials_visible(tp: ThirdParty) -> bool:
    return tp.accepted_at is not None and tp.status in CREDENTIALED


def registration_view(db: Session, tp: ThirdParty, now: float) -> dict[str, Any]:
    """Everything Manage Registration shows, as plain values (the JSON API returns it as is)."""
    deadlines: dict[str, Any] = {}
    if tp.status == RegistrationStatus.SUBMITTED:
        deadlines["confirmation_link_expires_at"] = (tp.confirmation_sent_at or tp.created_at) + CONFIRMATION_WINDOW_S
    if tp.status == RegistrationStatus.IN_REVIEW and tp.review_due_at is not None:
        deadlines["acceptance_due_at"] = tp.review_due_at
    if tp.status == RegistrationStatus.ACCEPTED and tp.accepted_at is not None:
        deadlines["testing_deadline"] = tp.accepted_at + TESTING_WINDOW_S
    certificates = []
    for cert in _certificates(db, tp):
        state = certificate_state(cert, now)
        certificates.append({
            "fingerprint_sha256": cert.fingerprint_sha256,
            "state": state,
            "uploaded_at": cert.uploaded_at,
            "activates_at": cert.activates_at,
            "retires_at": cert.retires_at,
            "warnings": list(cert.warnings or []),
            "pem": cert.pem,
        })
    view: dict[str, Any] = {
        "status": tp.status,
        "status_label": STATUS_LABELS.get(tp.status, tp.status),
        "user_type": USER_TYPE_LABELS[tp.user_type],
        "legal_name": tp.legal_name,
        "display_name": tp.display_name,
        "tax_id": tp.tax_id,
        "description": tp.description,
        "phone": tp.phone,
        "business_contact": tp.business_contact,
        "technical_contact": tp.technical_contact,
        "portal_username": tp.portal_username,
        "oauth_url": tp.scope_selection_uri,
        "third_party_portal_uri": tp.portal_uri,
        "redirect_uri": tp.redirect_uri,
        "notification_uri": tp.notification_uri,
        "notify_daily": bool(tp.notify_daily),
        "data_groups": list(tp.data_groups or []),
        "history_months": tp.history_months,
        "visibility": bool(tp.visible),
        "required_tests": list(REQUIRED_TESTS[tp.user_type]),
        "milestones": milestone_rows(tp),
        "deadlines": deadlines,
        "certificates": certificates,
    }
    if credentials_visible(tp):
        view.update(client_id=tp.client_id, client_secret=tp.client_secret,
                    registration_access_token=tp.registration_access_token,
                    application_information_id=tp.application_information_id, bulk_id=tp.client_id)
    elif tp.accepted_at is not None:
        view.update(client_id=tp.client_id)  # expired or terminated: the id, never the secrets
    return view


__all__ = [
    "API_CONNECTIVITY",
    "APPLICATION_INFORMATION",
    "OAUTH_TEST",
    "PortalPolicy",
    "RegistrationConflict",
    "RegistrationInvalid",
    "RegistrationNotFound",
    "PortalUnauthorized",
    "accept",
    "advance_lifecycle",
    "approve",
    "confirm",
    "expire",
    "register",
    "replace_certificate",
    "terminate",
    "update_registration",
]


# --------------------------------------------------------------------------------------------- ApplicationInformation
def read_application_information(db: Session, application_information_id: str, caller_id: int,
                                 now: float) -> ThirdParty:
    """The caller's own registration by ApplicationInformationID (unknown: 404, another's: 403); records
    ``Application Information: Completed``."""
    tp = db.execute(select(ThirdParty).where(ThirdParty.application_information_id == application_information_id)
                    ).scalar_one_or_none()
    if tp is None:
        missing = NotFound()
        missing.reason = f"no ApplicationInformation has the id {application_information_id!r}"
        raise missing
    caller = db.get(ThirdParty, caller_id)
    if tp.id != caller_id:
        own = caller.application_information_id if caller is not None else "?"
        raise Forbidden(f"ApplicationInformation {application_information_id} belongs to another client; "
                           f"yours is {own}")
    if tp.status not in CREDENTIALED:
        raise Forbidden(f"The registration is {tp.status}")
    record_milestone(db, tp, APPLICATION_INFORMATION, now)
    return tp


def bearer_owner(db: Session, value: str) -> str | None:
    """The client_id a bearer value belongs to (any token class, or a registration access token), for the log."""
    token = db.get(Token, token_key(value))
    if token is not None:
        owner = db.get(ThirdParty, token.third_party_id)
        return owner.client_id if owner is not None else None
    return db.execute(select(ThirdParty.client_id).where(ThirdParty.registration_access_token == value)
                      ).scalar_one_or_none()
