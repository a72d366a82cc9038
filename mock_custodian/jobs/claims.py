"""Leases: how several worker processes share due work without doing any piece twice.

A row is claimed by writing ``lease_owner``/``lease_until`` under a condition that only an unclaimed
(or abandoned: lease ran out) row satisfies. On SQLite the conditional UPDATE is atomic (writers are
serialised); on PostgreSQL candidates are read with ``FOR UPDATE SKIP LOCKED`` so concurrent workers
take different rows instead of queueing on the same ones. Leases are real seconds: a worker killed
with -9 leaves its lease to run out, and another worker (or the restarted one) takes the row over.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from mock_custodian.store.models import AsyncJob, Notification, Package


def _free(model: Any, real_now: float) -> Any:
    return or_(model.lease_until.is_(None), model.lease_until < real_now)


def _claim(db: Session, model: Any, due: Any, order: Any, owner: str, real_now: float, lease_s: float,
           limit: int) -> list[int]:
    """Ids of up to ``limit`` due rows this owner now holds (committed by the caller's session)."""
    query = select(model.id).where(due, _free(model, real_now)).order_by(order, model.id).limit(limit)
    postgres = db.bind is not None and db.bind.dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True)
    taken = []
    for row_id in db.execute(query).scalars().all():
        done = db.execute(
            update(model).where(model.id == row_id, due, _free(model, real_now))
            .values(lease_owner=owner, lease_until=real_now + lease_s)
        ).rowcount
        if done == 1:
            taken.append(row_id)
    return taken


def claim_due_jobs(db: Session, owner: str, now: float, real_now: float, lease_s: float, limit: int) -> list[int]:
    """Pending jobs whose ``due_at`` has passed on the simulated clock, oldest first."""
    due = and_(AsyncJob.status == "pending", AsyncJob.due_at <= now)
    return _claim(db, AsyncJob, due, AsyncJob.due_at, owner, real_now, lease_s, limit)


def claim_due_packages(db: Session, owner: str, now: float, real_now: float, lease_s: float,
                       limit: int) -> list[int]:
    """Unbuilt packages of pending jobs that are due, oldest job first: each package is its own unit of work."""
    due_jobs = select(AsyncJob.id).where(AsyncJob.status == "pending", AsyncJob.due_at <= now)
    due = and_(Package.status == "pending", Package.job_id.in_(due_jobs))
    return _claim(db, Package, due, Package.job_id, owner, real_now, lease_s, limit)


def claim_due_notifications(db: Session, owner: str, now: float, real_now: float, lease_s: float,
                            limit: int) -> list[int]:
    """Pending notifications whose next attempt is due on the simulated clock, oldest first.

    One destination at a time: a notification waits while another of its third party is in flight
    (leased) or an older one of its third party is due, so each receiver gets its POSTs in order while
    other receivers are served concurrently.
    """
    other = aliased(Notification)
    busy = select(other.id).where(other.third_party_id == Notification.third_party_id, other.id != Notification.id,
                                  other.status == "pending", other.lease_until.is_not(None),
                                  other.lease_until >= real_now)
    older = select(other.id).where(other.third_party_id == Notification.third_party_id, other.id != Notification.id,
                                   other.status == "pending", other.next_attempt_at <= now,
                                   or_(other.next_attempt_at < Notification.next_attempt_at,
                                       and_(other.next_attempt_at == Notification.next_attempt_at,
                                            other.id < Notification.id)))
    due = and_(Notification.status == "pending", Notification.next_attempt_at <= now, ~exists(busy), ~exists(older))
    return _claim(db, Notification, due, Notification.next_attempt_at, owner, real_now, lease_s, limit)


def extend_lease(db: Session, model: Any, row_id: int, owner: str, until: float) -> bool:
    """Keep a long piece of work; False when the lease was lost (another worker may own the row now)."""
    return db.execute(
        update(model).where(model.id == row_id, model.lease_owner == owner).values(lease_until=until)
    ).rowcount == 1
