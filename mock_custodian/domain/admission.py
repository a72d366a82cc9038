"""What every certificate-checked API request pays before its handler, in one block (issue 17).

Five pieces of bookkeeping used to cost a transaction each: scheduled events that came due (spec 4.15),
the certificate's owners (spec 3.3, 3.5), the rate-limit count (spec 6.7), registration deadlines
(spec 5.2) and the fault hook's look for a configured fault. They now share one block on the
driver connection: one read answers three of them (:func:`admission_facts`: is an event due, is a fault
configured, whose is the certificate) and the count is one statement on SQLite (a few in one
transaction elsewhere, ``domain/ratelimit.py``), committed before the request goes on, so every worker
sees the counters at once. A refusal is decided with the count and raised after it (a refused request
leaves no count but the vendor bucket's, as before).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from mock_custodian.domain.lifecycle import apply_due_events, pending_events
from mock_custodian.domain.ratelimit import RateDecision, RateLimits, check_and_count
from mock_custodian.domain.registration import advance_registrations
from mock_custodian.domain.registry import CertificateOwner, certificate_owner
from mock_custodian.store.db import Database, Raw, Sql, raw_of


@dataclass(frozen=True)
class Admission:
    """The certificate's owners now (empty: unregistered) and the rate-limit decision (None: not counted)."""

    owners: list[int]
    decision: RateDecision | None
    faults_armed: bool = True  # False: no fault configured, the fault hook need not look


# One row per candidate certificate, or a single row of NULLs after the two flags when there is none.
# On the hot path each statement costs more in the driver and the interpreter than in SQLite: one
# statement instead of three.
_FACTS = Sql(
    "SELECT (SELECT 1 FROM account_events WHERE at <= :now AND applied_at IS NULL LIMIT 1), "
    "(SELECT 1 FROM sim_faults LIMIT 1), o.* FROM (SELECT 1 AS one) AS d LEFT JOIN ("
    "SELECT c.id AS certificate_id, c.third_party_id, c.status AS certificate_status, c.activates_at, c.retires_at, "
    "t.tax_id, t.client_id, t.status, t.created_at, t.confirmation_sent_at, t.review_due_at, t.accepted_at "
    "FROM third_party_certificates c JOIN third_parties t ON t.id = c.third_party_id "
    "WHERE c.fingerprint_sha256 = :fingerprint AND c.status IN ('active', 'pending')"
    ") AS o ON 1 = 1 ORDER BY o.certificate_id"
)


@dataclass(frozen=True)
class Facts:
    """``due``: an event waits to be applied; ``armed``: a fault is configured; ``owners`` in certificate order."""

    due: bool
    armed: bool
    owners: list[CertificateOwner]


def admission_facts(db: Session | Raw, fingerprint: str, now: float) -> Facts:
    """Whether an event is due, whether a fault is configured, and the certificate's owners at ``now``: one read."""
    rows = raw_of(db).all(_FACTS, {"now": now, "fingerprint": fingerprint})
    owners = []
    for row in rows:
        if row[2] is not None:
            owner = certificate_owner(row[3:], now)
            if owner is not None:
                owners.append(owner)
    return Facts(rows[0][0] is not None, rows[0][1] is not None, owners)


def due_events(database: Database, now: float, resource_base: str) -> None:
    """Scheduled account/SA events take effect once the simulated clock reaches them (spec 4.15)."""
    with database.session() as db:
        if pending_events(db, now):
            apply_due_events(db, now, resource_base)


def admit(database: Database, *, fingerprint: str, now: float, real_now: float, resource_base: str,
          limits: RateLimits | None, vendor_bucket: bool) -> Admission:
    """Due events, certificate owners, the rate count (``limits`` None: off) and deadlines, in one transaction.

    The reads and the count are prebuilt statements on the driver connection (no ORM); on SQLite the
    count is a single statement that commits by itself (``Database.statements``). The rare work (an
    event came due, a registration's deadline passed) runs through the ORM in its own transaction:
    events before the owners are read again, deadlines after the count's commit.
    """
    with database.statements() as raw:
        facts = admission_facts(raw, fingerprint, now)
        if facts.due:
            due_events(database, now, resource_base)
            facts = admission_facts(raw, fingerprint, now)
        owners = facts.owners
        if not owners:
            return Admission([], None, facts.armed)
        ids = [o.id for o in owners]
        decision = None
        if limits is not None:
            first = owners[0]
            decision = check_and_count(raw, first.tax_id, first.client_id, now, limits, real_now=real_now,
                                       vendor_bucket=vendor_bucket)
            if not decision.allowed:
                return Admission(ids, decision, facts.armed)
    moving = [o.id for o in owners if o.deadline is not None and o.deadline <= now]
    if moving:
        with database.session() as db:
            advance_registrations(db, moving, now)  # deadlines of spec 5.2, by the simulated clock
    return Admission(ids, decision, facts.armed)
