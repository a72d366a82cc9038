"""Building a job's packages: stream each plan into a file, then publish it in one transaction.

The bytes are written once, under a name unique to this build attempt, while the data engine streams
them (memory stays flat however large the package). Only the worker still holding the job's lease
may publish: it records the file, size and SHA-256 on the package rows and releases the notification
in the same transaction. A losing or crashed attempt leaves an unreferenced file for ``gc_packages``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from mock_custodian.domain.packages import (
    job_options,
    job_window,
    notification_for,
    package_expires_at,
    package_feed_id,
    plan_for,
)
from mock_custodian.jobs.claims import extend_lease
from mock_custodian.store.db import Database
from mock_custodian.store.models import AsyncJob, Notification, Package, ThirdParty

log = logging.getLogger("mock_custodian.jobs")

BUILD_LEASE_S = 120.0
ORPHAN_AGE_S = 600.0  # real seconds before an unreferenced file counts as left over


@dataclass
class _Written:
    package_id: int
    file: str
    size: int
    sha256: str


def _write(plan_chunks: Callable[[], Iterable[bytes]], target: Path, keep_lease: Callable[[], None]) -> tuple[int, str]:
    """Stream chunks into ``target`` (fsynced), returning size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    tmp = target.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for index, chunk in enumerate(plan_chunks()):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            if index % 64 == 63:
                keep_lease()
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(target)
    return size, digest.hexdigest()


class LeaseLost(RuntimeError):
    """Another worker took the job over (this one was too slow or presumed dead)."""


def build_job(database: Database, job_id: int, owner: str, packages_dir: Path) -> bool:
    """Build every package of a claimed job and release its notification; False if the lease was lost."""
    clock = database.clock()
    packages_dir.mkdir(parents=True, exist_ok=True)
    with database.session() as db:
        job = db.get(AsyncJob, job_id)
        if job is None or job.status != "pending" or job.lease_owner != owner:
            return False
        options, window, accepted_at = job_options(job), job_window(job), job.accepted_at
        packages = db.execute(select(Package).where(Package.job_id == job_id).order_by(Package.part)).scalars().all()
        plans = [(p.id, p.correlation_id, plan_for(db, p.feed, p.subscription_ids, window, accepted_at,
                                                   self_href=f"{options.api_base_url}{p.request_path}",
                                                   options=options, feed_id=package_feed_id(p.correlation_id)))
                 for p in packages]

    def keep_lease() -> None:
        with database.session() as db:
            if not extend_lease(db, AsyncJob, job_id, owner, clock.real_epoch() + BUILD_LEASE_S):
                raise LeaseLost(f"job {job_id}")

    written: list[_Written] = []
    try:
        for package_id, correlation_id, plan in plans:
            name = f"{correlation_id}.{uuid.uuid4().hex[:8]}.xml"
            size, sha = _write(plan.chunks, packages_dir / name, keep_lease)
            written.append(_Written(package_id, name, size, sha))
            keep_lease()
        published = _publish(database, job_id, owner, written)
    except LeaseLost:
        published = False
    if not published:
        for item in written:
            (packages_dir / item.file).unlink(missing_ok=True)
    return published


def build_package(database: Database, package_id: int, owner: str, packages_dir: Path) -> bool:
    """Build one claimed package; the last package of a job to finish publishes the job. False: lease lost.

    Several workers build one request's packages side by side: the plan of one package is loaded in its
    own short session (a few queries), its bytes streamed to a file, then recorded under the lease.
    """
    clock = database.clock()
    packages_dir.mkdir(parents=True, exist_ok=True)
    with database.session() as db:
        package = db.get(Package, package_id)
        if package is None or package.status != "pending" or package.lease_owner != owner:
            return False
        job = db.get(AsyncJob, package.job_id)
        if job is None or job.status != "pending":
            return False
        options, window, job_id = job_options(job), job_window(job), job.id
        plan = plan_for(db, package.feed, package.subscription_ids, window, job.accepted_at,
                        self_href=f"{options.api_base_url}{package.request_path}", options=options,
                        feed_id=package_feed_id(package.correlation_id))
        correlation_id = package.correlation_id

    def keep_lease() -> None:
        with database.session() as db:
            if not extend_lease(db, Package, package_id, owner, clock.real_epoch() + BUILD_LEASE_S):
                raise LeaseLost(f"package {package_id}")

    name = f"{correlation_id}.{uuid.uuid4().hex[:8]}.xml"
    try:
        size, sha = _write(plan.chunks, packages_dir / name, keep_lease)
        recorded = _record_package(database, job_id, owner, _Written(package_id, name, size, sha))
    except LeaseLost:
        recorded = False
    if not recorded:
        (packages_dir / name).unlink(missing_ok=True)
    return recorded


def _record_package(database: Database, job_id: int, owner: str, item: _Written) -> bool:
    """One transaction: the package points at its file; when none of the job's is left, the job is published.

    The package row is written first, so on SQLite this transaction holds the write lock before it counts
    what is left; on PostgreSQL the job row is locked, so two last packages finishing together agree.
    """
    with database.session() as db:
        now = database.clock().epoch()
        taken = db.execute(
            update(Package).where(Package.id == item.package_id, Package.lease_owner == owner,
                                  Package.status == "pending")
            .values(status="built", file=item.file, size=item.size, sha256=item.sha256, built_at=now,
                    lease_owner=None, lease_until=None)
        ).rowcount
        if taken != 1:
            return False
        query = select(AsyncJob).where(AsyncJob.id == job_id)
        if db.bind is not None and db.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        job = db.execute(query).scalar_one_or_none()
        if job is None or job.status != "pending":
            return True
        left = db.execute(select(Package.id).where(Package.job_id == job_id, Package.status == "pending")
                          .limit(1)).first()
        if left is None:
            job.status, job.built_at, job.lease_owner, job.lease_until = "built", now, None, None
            packages = db.execute(select(Package).where(Package.job_id == job_id)
                                  .order_by(Package.part)).scalars().all()
            job.package_path = packages[0].file if packages else None
            _release_notification(db, job, [p.url for p in packages], now)
    return True


def fail_package(database: Database, package_id: int, owner: str, error: str) -> None:
    """A package build that raised fails its whole job (and its notification), never silently dropped."""
    with database.session() as db:
        package = db.get(Package, package_id)
        if package is None or package.lease_owner != owner:
            return
        package.lease_owner = package.lease_until = None
        job = db.get(AsyncJob, package.job_id)
        if job is not None and job.status == "pending":
            _fail(db, job, error, database.clock().epoch())


def _release_notification(db: Any, job: AsyncJob, urls: list[str], now: float) -> None:
    """The job's notification may go now (a daily job's is created here), unless a fault holds it."""
    note = db.execute(select(Notification).where(Notification.job_id == job.id)).scalar_one_or_none()
    if note is None:  # a daily job: its one POST is owed from now on
        note = notification_for(db, db.get(ThirdParty, job.third_party_id), job, urls, now, early_possible=False)
        db.add(note)
    if note.status == "waiting":
        delay = float((note.fault or {}).get("params", {}).get("delay_s", 0)) \
            if (note.fault or {}).get("kind") == "notification_delayed" else 0.0
        note.status, note.next_attempt_at = "pending", now + delay
    elif note.status == "lost":
        log.info("notification for job %s dropped by an injected notification_lost fault", job.id)


def _publish(database: Database, job_id: int, owner: str, written: list[_Written]) -> bool:
    """One transaction: the job is built, its packages point at their files, its notification may go."""
    clock = database.clock()
    with database.session() as db:
        now = clock.epoch()
        taken = db.execute(
            update(AsyncJob).where(AsyncJob.id == job_id, AsyncJob.lease_owner == owner,
                                   AsyncJob.status == "pending")
            .values(status="built", built_at=now, lease_owner=None, lease_until=None,
                    package_path=written[0].file if written else None)
        ).rowcount
        if taken != 1:
            return False
        urls = []
        for item in written:
            package = db.get(Package, item.package_id)
            package.status, package.file, package.size, package.sha256 = "built", item.file, item.size, item.sha256
            package.built_at = now
            urls.append(package.url)
        _release_notification(db, db.get(AsyncJob, job_id), urls, now)
    return True


def fail_job(database: Database, job_id: int, owner: str, error: str) -> None:
    """A build that raised: the job and its notification are marked failed, never silently dropped."""
    with database.session() as db:
        job = db.get(AsyncJob, job_id)
        if job is None or job.lease_owner != owner:
            return
        _fail(db, job, error, database.clock().epoch())


def _fail(db: Any, job: AsyncJob, error: str, now: float) -> None:
    job.status, job.error, job.lease_owner, job.lease_until = "failed", error[:2000], None, None
    for note in db.execute(select(Notification).where(Notification.job_id == job.id)).scalars():
        if note.status in ("waiting", "pending"):
            note.status = "failed"
            note.attempts = [*(note.attempts or []), {"at": now, "status": None,
                                                      "error": f"package could not be built: {error[:500]}"}]


def gc_packages(database: Database, packages_dir: Path, ttl_days: float) -> int:
    """Delete files of packages past their retrieval window, and files no package row names."""
    removed = 0
    now = database.clock().epoch()
    with database.session() as db:
        rows = db.execute(select(Package).where(Package.status == "built")).scalars().all()
        referenced = {p.file for p in rows if p.file}
        for package in rows:
            expires = package_expires_at(package, ttl_days)
            if expires is not None and now >= expires + 86400:  # a day's grace for a clock moved back
                if package.file:
                    (packages_dir / package.file).unlink(missing_ok=True)
                    referenced.discard(package.file)
                package.status, package.file = "expired", None
                removed += 1
    if packages_dir.is_dir():
        real_now = database.clock().real_epoch()
        for path in packages_dir.iterdir():
            if path.name in referenced or path.suffix not in (".xml", ".tmp"):
                continue
            try:
                if real_now - path.stat().st_mtime > ORPHAN_AGE_S:
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed
