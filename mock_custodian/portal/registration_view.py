"""What the Third Party Portal's pages (and ``mock-custodian third-party show``) display about a registration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mock_custodian.clock import local_time
from mock_custodian.domain.milestones import (
    APPROVED,
    REQUIRED_TESTS,
)
from mock_custodian.domain.registration import CONFIRMATION_WINDOW_S, TESTING_WINDOW_S
from mock_custodian.domain.registration_certificates import certificate_state, certificates_of
from mock_custodian.domain.registration_form import USER_TYPE_LABELS
from mock_custodian.store.models import ThirdParty
from mock_custodian.vocabulary import CREDENTIALED, RegistrationStatus

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
    for cert in certificates_of(db, tp):
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
