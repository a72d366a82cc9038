"""Registration milestones (spec 5.3): which tests each user type needs, and approval when all pass."""

from __future__ import annotations

from sqlalchemy.orm import Session

from .models import ThirdParty

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
        and tp.status == "accepted"
        and all(test in milestones for test in REQUIRED_TESTS[tp.user_type])
    ):
        tp.status = "approved"
        tp.approved_at = now
        milestones[APPROVED] = now
        approved_now = True
    tp.milestones = milestones  # reassign so the JSON column is written
    return approved_now
