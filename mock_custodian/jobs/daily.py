"""Daily packages (spec 6.5) for third parties that ticked "Notify me as data is ready (Daily)".

Each local day at ``daily_package_time`` (07:00 Pacific by default, after the 06:00 publication) a
third party gets one POST listing its Bulk package (usage and billing, when any subscription grants
them) and, when any grants Basic, Account or ProgramEnrollment (always for a CCA), its
BulkRetailCustomerInfo package. The Bulk package holds whatever changed in the 24 hours before the
package time, at most 3 years back: the newest published day's IntervalBlocks, corrected days, and
bills issued or revised in that span. It is an ``updated-*`` window (spec 6.2) over each
subscription, so it follows exactly what ``updated-min``/``updated-max`` requests return.

Exactly once: per third party a :class:`DailyPackageSchedule` row holds the newest package instant
already handled, advanced by compare-and-swap in the same transaction that records the day's job.
When the clock jumps forward several days, every skipped day is produced in order, oldest first (at
most ``MAX_CATCH_UP_DAYS``; older ones would have expired before anyone could fetch them). A third
party that is not entitled at a package time (unticked, not Approved, no Notification URI) is
skipped silently and its schedule still advances, so ticking the box later never backfills.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import asdict

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.packages import (
    CUSTOMER_GROUPS,
    RESOURCE_PREFIX,
    USAGE_GROUPS,
    bulk_authorization_ids,
    window_dict,
)
from mock_custodian.domain.windows import DataWindow
from mock_custodian.jobs.config import WorkerConfig
from mock_custodian.store.db import Database, meta_get
from mock_custodian.store.models import AsyncJob, DailyPackageSchedule, Package, ThirdParty
from mock_custodian.vocabulary import RegistrationStatus

log = logging.getLogger("mock_custodian.jobs")

MAX_CATCH_UP_DAYS = 31
CORRECTIONS_YEARS = 3  # how far back a daily package carries changed days (spec 6.5, 7.13)


def _at(day: dt.date, hour: int, minute: int) -> float:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=PACIFIC).timestamp()


def package_instants(after: float, until: float, hour: int, minute: int) -> list[float]:
    """Every local day's package instant in (``after``, ``until``], ascending (DST-aware)."""
    if until <= after:
        return []
    day = dt.datetime.fromtimestamp(after, PACIFIC).date()
    out = []
    while True:
        instant = _at(day, hour, minute)
        if instant > until:
            return out
        if instant > after:
            out.append(instant)
        day += dt.timedelta(days=1)


def latest_instant(at: float, hour: int, minute: int) -> float:
    """The newest package instant at or before ``at``."""
    day = dt.datetime.fromtimestamp(at, PACIFIC).date()
    instant = _at(day, hour, minute)
    return instant if instant <= at else _at(day - dt.timedelta(days=1), hour, minute)


def entitled(tp: ThirdParty) -> bool:
    """Daily packages only for an Approved registration that ticked the box and can be notified."""
    return bool(tp.notify_daily) and tp.status == RegistrationStatus.APPROVED and bool(tp.notification_uri)


def schedule_daily(database: Database, config: WorkerConfig) -> int:
    """Record the daily jobs now due, each exactly once across every worker; returns how many."""
    now = database.clock().epoch()
    with database.session() as db:
        loaded_at = float(meta_get(db, "loaded_at") or 0.0)
        third_parties = [(tp.id, tp.created_at) for tp in db.execute(select(ThirdParty)).scalars()]
    created = 0
    for tp_id, created_at in third_parties:
        try:
            created += _schedule_one(database, config, tp_id, max(loaded_at, created_at or 0.0), now)
        except IntegrityError:
            continue  # another worker created the schedule row first: it handles this round
    return created


def _schedule_one(database: Database, config: WorkerConfig, tp_id: int, baseline: float, now: float) -> int:
    hour, minute = config.daily_hour, config.daily_minute
    with database.session() as db:
        state = db.get(DailyPackageSchedule, tp_id)
        if state is None:
            db.add(DailyPackageSchedule(third_party_id=tp_id, last_package_at=latest_instant(baseline, hour, minute)))
            return 0
        last = state.last_package_at
        due = package_instants(last, now, hour, minute)
        if not due:
            return 0
        swapped = db.execute(
            update(DailyPackageSchedule)
            .where(DailyPackageSchedule.third_party_id == tp_id, DailyPackageSchedule.last_package_at == last)
            .values(last_package_at=due[-1])
        ).rowcount
        tp = db.get(ThirdParty, tp_id)
        if swapped != 1 or tp is None or not entitled(tp):
            return 0
        if len(due) > MAX_CATCH_UP_DAYS:
            log.warning("clock jumped %d days: daily packages of %s produced for the last %d only",
                        len(due), tp.client_id, MAX_CATCH_UP_DAYS)
        count = 0
        for instant in due[-MAX_CATCH_UP_DAYS:]:
            count += record_daily_job(db, tp, instant, config)
        return count


def record_daily_job(db: Session, tp: ThirdParty, at: float, config: WorkerConfig) -> int:
    """The day's job and its packages (built and notified by the worker); 0 when nothing qualifies."""
    # Two columns per row, not 100,000 authorization objects for a CCA's territory.
    usage_ids = bulk_authorization_ids(db, tp.id, at, USAGE_GROUPS)
    customer_ids = bulk_authorization_ids(db, tp.id, at, CUSTOMER_GROUPS)
    if not usage_ids and not customer_ids:
        return 0
    options = config.build_options
    previous = latest_instant(at - 1, config.daily_hour, config.daily_minute)
    # Changed in (previous package, this package], at most 3 years back: the newest published day,
    # corrected days and bills issued or revised; the same rule as an updated-min/updated-max request.
    window = DataWindow(published_min=at - CORRECTIONS_YEARS * 365 * 86400, published_max=at + 1,
                        updated_min=previous + 1, updated_max=at + 1)
    size = config.max_subscriptions
    planned = [("Bulk", "usage", usage_ids[i:i + size]) for i in range(0, len(usage_ids), size)]
    planned += [("BulkRetailCustomerInfo", "customer", customer_ids[i:i + size])
                for i in range(0, len(customer_ids), size)]
    correlation_ids = [str(uuid.uuid4()) for _ in planned]
    job = AsyncJob(
        correlation_id=correlation_ids[0], third_party_id=tp.id,
        request_path=f"{RESOURCE_PREFIX}/Batch/Bulk/{tp.client_id}", request_query="", x_transaction=None,
        status="pending", accepted_at=at, due_at=at, kind="daily",
        params={"window": window_dict(window), "options": asdict(options), "feed": "usage",
                "package_day": dt.datetime.fromtimestamp(at, PACIFIC).date().isoformat()},
    )
    db.add(job)
    db.flush()
    for part, (correlation_id, (resource, feed, ids)) in enumerate(zip(correlation_ids, planned, strict=True),
                                                                   start=1):
        path = f"{RESOURCE_PREFIX}/Batch/{resource}/{tp.client_id}"
        db.add(Package(correlation_id=correlation_id, job_id=job.id, third_party_id=tp.id, part=part, feed=feed,
                       resource=resource, resource_id=tp.client_id, request_path=path,
                       url=f"{options.api_base_url}{path}?correlationID={correlation_id}", subscription_ids=ids,
                       status="pending"))
    return 1
