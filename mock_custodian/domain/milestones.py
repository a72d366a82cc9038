"""Registration milestones (spec 5.3): which tests each user type needs, and approval when all pass."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mock_custodian.domain.outbox import send_email
from mock_custodian.store.models import ThirdParty
from mock_custodian.vocabulary import RegistrationStatus

API_CONNECTIVITY = "API Connectivity Test"
OAUTH_TEST = "OAuth Test"
APPLICATION_INFORMATION = "Application Information"
APPROVED = "Approved"

REQUIRED_TESTS: dict[str, tuple[str, ...]] = {
    "standard": (API_CONNECTIVITY, OAUTH_TEST, APPLICATION_INFORMATION),
    "eef": (API_CONNECTIVITY, OAUTH_TEST, APPLICATION_INFORMATION),
    "self_access": (API_CONNECTIVITY,),
    "cca": (API_CONNECTIVITY,),
}


def record_milestone(db: Session, tp: ThirdParty, name: str, now: float, auto_approve: bool = True) -> bool:
    """Mark a test completed (first time only); approve once every required test has passed.

    Returns True when this call approved the registration.
    """
    milestones = dict(tp.milestones or {})
    if name not in milestones:
        milestones[name] = now
    approved_now = False
    if (
        auto_approve
        and tp.status == RegistrationStatus.ACCEPTED
        and all(test in milestones for test in REQUIRED_TESTS[tp.user_type])
    ):
        tp.status = RegistrationStatus.APPROVED
        tp.approved_at = now
        milestones[APPROVED] = now
        approved_now = True
    tp.milestones = milestones  # reassign so the JSON column is written
    if approved_now:
        send_approval_email(db, tp, now)
    return approved_now


def send_approval_email(db: Session, tp: ThirdParty, now: float) -> None:
    """PG&E e-mails that testing is complete when it approves (spec 5.2)."""
    contact = (tp.business_contact or {}).get("email")
    if not contact:
        return
    send_email(
        db, contact, "Share My Data: testing complete, registration approved",
        f"Hello {(tp.business_contact or {}).get('name') or tp.display_name},\n\nTesting for {tp.display_name} "
        f"(client_id {tp.client_id}) is complete and the registration is Approved. Switch your authorization and "
        "token calls to the production endpoints listed in your ApplicationInformation.\n\n"
        "PG&E Share My Data (mock-custodian)\n",
        now,
    )
