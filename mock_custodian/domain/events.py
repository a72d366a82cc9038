"""Scheduled events: their kinds, a customer's scheduled actions, and the events a consent brings.

A scenario may anchor events to each consent a customer gives (``after_consent``): they are declared
once at load and scheduled as each consent happens. Consent (``domain.authorizations``) schedules
them and ``domain.lifecycle`` applies every due event, so both build on this module, not on each other.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from mock_custodian.errors import BadRequest
from mock_custodian.store.db import meta_get, meta_set
from mock_custodian.store.models import Account, AccountEvent, Authorization, ServiceAgreement

ACCOUNT_EVENT_KINDS = (
    "meter_exchange", "rate_change", "temporary_turn_off", "turn_on", "move_out", "change_of_company",
    "unlink_account", "paper_authorization",
)
# The customer's own actions on "My authorizations" (the X, the pencil), scheduled like account events.
CUSTOMER_EVENT_KINDS = ("cancel_authorization", "edit_authorization")
# Meta key of the events a scenario anchors to each consent (``after_consent``), scheduled as consents happen.
CONSENT_EVENTS_KEY = "consent_events"


def schedule_customer_event(db: Session, kind: str, at: float, *, customer_id: int,
                            params: dict | None = None) -> AccountEvent:
    """A customer's cancel or edit at ``at``: on ``params["authorization_id"]``, else on every live
    authorization of the customer (with ``params["client_id"]``'s third party only, when given)."""
    if kind not in CUSTOMER_EVENT_KINDS:
        raise BadRequest(f"event must be one of {', '.join(CUSTOMER_EVENT_KINDS)}")
    event = AccountEvent(kind=kind, at=at, params={**(params or {}), "customer_id": customer_id})
    db.add(event)
    return event


def declare_consent_event(db: Session, kind: str, delay: float, *, customer_id: int, client_id: str | None = None,
                          sa: ServiceAgreement | None = None, account: Account | None = None,
                          params: dict | None = None) -> None:
    """An event ``delay`` seconds after each consent the customer gives (to ``client_id`` only, when given).

    Kept as a declaration; :func:`schedule_consent_events` turns it into a scheduled event per consent.
    """
    if kind not in ACCOUNT_EVENT_KINDS + CUSTOMER_EVENT_KINDS:
        raise BadRequest(f"event must be one of {', '.join(ACCOUNT_EVENT_KINDS + CUSTOMER_EVENT_KINDS)}")
    declared = json.loads(meta_get(db, CONSENT_EVENTS_KEY) or "[]")
    declared.append({"kind": kind, "delay": float(delay), "customer_id": customer_id, "client_id": client_id,
                     "sa_id": sa.id if sa else None, "account_id": account.id if account else None,
                     "params": dict(params or {})})
    meta_set(db, CONSENT_EVENTS_KEY, json.dumps(declared))


def schedule_consent_events(db: Session, authorization: Authorization, now: float) -> list[AccountEvent]:
    """A consent just happened: schedule the events declared relative to it (customer actions target it)."""
    declared = json.loads(meta_get(db, CONSENT_EVENTS_KEY) or "[]")
    client_id = authorization.third_party.client_id if authorization.third_party else None
    out = []
    for entry in declared:
        if entry["customer_id"] != authorization.customer_id or entry["client_id"] not in (None, client_id):
            continue
        at = now + entry["delay"]
        if entry["kind"] in CUSTOMER_EVENT_KINDS:
            event = schedule_customer_event(db, entry["kind"], at, customer_id=authorization.customer_id,
                                            params={**entry["params"], "authorization_id": authorization.id})
        else:
            event = AccountEvent(kind=entry["kind"], at=at, service_agreement_id=entry["sa_id"],
                                 account_id=entry["account_id"], params=dict(entry["params"]))
            db.add(event)
        out.append(event)
    return out
