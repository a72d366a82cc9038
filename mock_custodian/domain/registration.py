"""The Third Party Portal's registrations (spec 5.1-5.2): form validation, the lifecycle and its deadlines.

Submitted --(e-mail link within 5 days)--> In Review --(review)--> Accepted --(tests within 90 days)-->
Approved; a link not used in time discards the submission, a missed testing deadline expires the
registration. Deadlines are applied lazily by :func:`advance_lifecycle` whenever a registration is
touched (every API request over its certificate, every portal page), always by the simulated clock.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mock_custodian.clock import local_time
from mock_custodian.domain.authorizations import revoke_all_for_third_party
from mock_custodian.domain.certificate_checks import (
    CertificateRefused,
)
from mock_custodian.domain.milestones import (
    APPLICATION_INFORMATION,
    APPROVED,
    REQUIRED_TESTS,
    record_milestone,
    send_approval_email,
)
from mock_custodian.domain.outbox import send_email
from mock_custodian.domain.registration_certificates import (
    certificate_row,
    check_certificate,
    issue_certificate_for_csr,
)
from mock_custodian.domain.registration_form import (
    EDITABLE,
    FIELD_LABELS,
    USER_TYPE_LABELS,
    PortalPolicy,
    RegistrationInvalid,
    contact_email,
    contact_name,
    field_text,
    flatten,
    parse_user_type,
    validate_fields,
)
from mock_custodian.domain.registry import CONFIRMATION_WINDOW_S, TESTING_WINDOW_S
from mock_custodian.domain.world import APPLICATION_INFORMATION_ID_START, CLIENT_ID_START, system_authorization
from mock_custodian.errors import Forbidden, NotFound, PGEError
from mock_custodian.pki import DevPKI
from mock_custodian.store.db import next_id
from mock_custodian.store.hashed import check_password, hash_password
from mock_custodian.store.models import Authorization, ThirdParty, Token
from mock_custodian.vocabulary import ADVANCING, CREDENTIALED, LIVE, RegistrationStatus

LIVE_STATUSES = LIVE


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


# --------------------------------------------------------------------------------------------- lifecycle


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
    pem = field_text(raw, "certificate")
    csr = field_text(raw, "csr")
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
    db.add(certificate_row(tp, checked, now, now, "active"))
    link = confirmation_link(policy.portal_base_url, tp.confirmation_token or "")
    send_email(
        db, contact_email(tp), "Share My Data: confirm your Third Party registration",
        f"Hello {contact_name(tp)},\n\nThank you for registering {tp.display_name} "
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
        db, contact_email(tp), "Share My Data: registration accepted, testing may begin",
        f"Hello {contact_name(tp)},\n\nYour registration {tp.display_name} was accepted. Sign in to the Third "
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
        db, contact_email(tp), "Share My Data: registration expired",
        f"Hello {contact_name(tp)},\n\nYour registration {tp.display_name} (client_id {tp.client_id}) expired "
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
    send_email(db, contact_email(tp), "Share My Data: registration terminated",
               f"Hello {contact_name(tp)},\n\nAs requested, {tp.display_name} (client_id {tp.client_id}) was "
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
