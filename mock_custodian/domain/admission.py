"""What every certificate-checked API request pays before its handler, in one transaction.

Five pieces of bookkeeping used to cost a transaction each: scheduled events that came due (spec 4.15),
the certificate's owners (spec 3.3, 3.5), the rate-limit count (spec 6.7), registration deadlines
(spec 5.2) and the fault hook's look for a configured fault. They now share one session: the reads
run first (SQLite's driver starts the write transaction at the first write), the writes are a handful
of prebuilt statements, and the commit happens before the request goes on, so every worker sees the
counters at once. A refusal is decided inside the transaction and raised after its commit (a refused
count undoes itself, so nothing half-done is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from mock_custodian.domain.faults import any_fault
from mock_custodian.domain.lifecycle import apply_due_events, pending_events
from mock_custodian.domain.ratelimit import RateDecision, RateLimits, check_and_count
from mock_custodian.domain.registration import advance_registrations
from mock_custodian.domain.registry import certificate_owners
from mock_custodian.store.db import Database
from mock_custodian.vocabulary import ADVANCING


@dataclass(frozen=True)
class Admission:
    """The certificate's owners now (empty: unregistered) and the rate-limit decision (None: not counted)."""

    owners: list[int]
    decision: RateDecision | None
    faults_armed: bool = True  # False: no fault configured, the fault hook need not look


def due_events(database: Database, now: float, resource_base: str) -> None:
    """Scheduled account/SA events take effect once the simulated clock reaches them (spec 4.15)."""
    with database.session() as db:
        if pending_events(db, now):
            apply_due_events(db, now, resource_base)


def admit(database: Database, *, fingerprint: str, now: float, real_now: float, resource_base: str,
          limits: RateLimits | None, vendor_bucket: bool) -> Admission:
    """Due events, certificate owners, the rate count (``limits`` None: off) and deadlines, in one transaction."""
    with database.session() as db:
        if pending_events(db, now):  # one indexed read when nothing is due
            apply_due_events(db, now, resource_base)
        armed = any_fault(db)  # saves the fault hook its own transaction when none is configured
        owners = certificate_owners(db, fingerprint, now)
        if not owners:
            return Admission([], None, armed)
        decision = None
        if limits is not None:
            first = owners[0]
            decision = check_and_count(db, first.tax_id, first.client_id, now, limits, real_now=real_now,
                                       vendor_bucket=vendor_bucket)
            if not decision.allowed:
                return Admission([o.id for o in owners], decision, armed)
        advancing = [o.id for o in owners if o.status in ADVANCING]
        if advancing:
            advance_registrations(db, advancing, now)  # deadlines of spec 5.2, by the simulated clock
    return Admission([o.id for o in owners], decision, armed)
