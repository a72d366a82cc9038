"""What the simulator console shows: plain rows and chart points read from the store and the data engine.

The console's handlers call one function here each and render a template; nothing here knows Flask.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.content import Publication
from mock_custodian.domain.lifecycle import changes_by_service_agreement
from mock_custodian.portal.chart import ChartPoint
from mock_custodian.store.models import (
    Account,
    AsyncJob,
    Authorization,
    Customer,
    Fault,
    Notification,
    RequestLog,
    ServiceAgreement,
    ThirdParty,
)
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.lifecycle import overrides_for
from mock_custodian.synth.localtime import day_bounds
from mock_custodian.synth.readings import day_readings

ESTIMATED_QUALITIES = (8, 9)
EDITED_QUALITY = 7


def local(epoch: float | None) -> str:
    """An instant as Pacific local time, to the second (what PG&E's people read)."""
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, PACIFIC).strftime("%Y-%m-%d %H:%M:%S %Z")


def clock_time(epoch: float | None) -> str:
    """Time of day only, to the millisecond (wall-clock times beside a simulated date)."""
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, PACIFIC).strftime("%H:%M:%S.%f")[:-3]


def overview_counts(db: Session) -> dict[str, int]:
    return {
        "third_parties": db.scalar(select(func.count()).select_from(ThirdParty)) or 0,
        "customers": db.scalar(select(func.count()).select_from(Customer)) or 0,
        "service_agreements": db.scalar(select(func.count()).select_from(ServiceAgreement)) or 0,
        "authorizations": db.scalar(select(func.count()).select_from(Authorization)
                                    .where(Authorization.kind.in_(("customer", "paper")))) or 0,
        "requests": db.scalar(select(func.count()).select_from(RequestLog)) or 0,
        "jobs": db.scalar(select(func.count()).select_from(AsyncJob)) or 0,
        "notifications": db.scalar(select(func.count()).select_from(Notification)) or 0,
        "faults": db.scalar(select(func.count()).select_from(Fault)) or 0,
    }


def third_parties(db: Session) -> list[ThirdParty]:
    return list(db.execute(select(ThirdParty).order_by(ThirdParty.client_id)).scalars())


def customers(db: Session) -> list[Customer]:
    return list(db.execute(select(Customer).order_by(Customer.id)).scalars())


def service_agreement(db: Session, key: str) -> ServiceAgreement | None:
    return db.execute(select(ServiceAgreement).where(ServiceAgreement.key == key)).scalar_one_or_none()


def authorizations(db: Session, now: float) -> list[dict[str, Any]]:
    """Customer, paper and CCA authorizations, newest first, with the state PG&E would report."""
    rows = db.execute(select(Authorization).where(Authorization.kind.in_(("customer", "paper", "cca")))
                      .order_by(Authorization.created_at.desc(), Authorization.id.desc())).scalars()
    out = []
    for a in rows:
        if a.revoked_at is not None:
            state = f"revoked ({a.revoked_reason or 'revoked'})"
        elif a.ends_at is not None and a.ends_at <= now:
            state = "expired"
        else:
            state = "active"
        out.append({"id": a.id, "client_id": a.third_party.client_id, "third_party": a.third_party.display_name,
                    "customer": a.customer.name if a.customer else "", "kind": a.kind, "state": state,
                    "service_agreements": [sa.sa_number for sa in a.service_agreements],
                    "data_groups": list(a.data_groups or []), "created": local(a.created_at),
                    "ends": local(a.ends_at) if a.ends_at else "indefinite"})
    return out


def requests(db: Session, *, client_id: str | None, status: int | None, path: str | None,
             limit: int = 200) -> list[RequestLog]:
    """The request log, newest first (filters as the control API's)."""
    query = select(RequestLog).order_by(RequestLog.id.desc()).limit(limit)
    if client_id:
        query = query.where((RequestLog.client_id == client_id) | (RequestLog.claimed_client_id == client_id))
    if status is not None:
        query = query.where(RequestLog.status == status)
    if path:
        query = query.where(RequestLog.path.like(f"%{path}%"))
    return list(db.execute(query).scalars())


def jobs_and_notifications(db: Session) -> tuple[list[AsyncJob], list[Notification], dict[int, str]]:
    clients = dict(db.execute(select(ThirdParty.id, ThirdParty.client_id)).all())
    jobs = list(db.execute(select(AsyncJob).order_by(AsyncJob.id.desc()).limit(200)).scalars())
    notes = list(db.execute(select(Notification).order_by(Notification.id.desc()).limit(200)).scalars())
    return jobs, notes, clients


# --- usage chart ----------------------------------------------------------------------------------------


def _unit(model: ServiceAgreementModel) -> tuple[str, float]:
    """Display unit and factor: readings are 10^-3 of ESPI's uom (Wh or therm), shown as kWh or therms."""
    return ("therms", 1e-3) if model.uom == 169 else ("kWh", 1e-6)


def usage_chart(db: Session, sa: ServiceAgreement, now: float, publication: Publication, span: str = "days",
                count: int = 14) -> tuple[list[ChartPoint], str, str]:
    """The SA's published usage (meter 1, delivered) per local day or month, gaps, estimates and corrections
    marked as the data engine serves them at ``now``. Returns (points, unit, note)."""
    model = ServiceAgreementModel.from_dict(sa.profile)
    unit, factor = _unit(model)
    if not model.is_interval:
        return [], unit, "This service agreement has no interval meter (monthly reads only)."
    cutoff = publication.cutoff(now, model.mv90)
    last_day = dt.datetime.fromtimestamp(cutoff, PACIFIC).date() - dt.timedelta(days=1)
    if span == "months":
        first_day = (last_day.replace(day=1) - dt.timedelta(days=31 * (count - 1))).replace(day=1)
    else:
        first_day = last_day - dt.timedelta(days=count - 1)
    start, _ = day_bounds(first_day)
    _, end = day_bounds(last_day)
    changes = changes_by_service_agreement(db, [sa.id]).get(sa.id, [])
    overrides, _ = overrides_for(model, changes, start, end, now,
                                 lambda day_start: publication.published_at(day_start, model.mv90))
    days: list[tuple[dt.date, float, str]] = []
    day = first_day
    while day <= last_day:
        day_start, _ = day_bounds(day)
        if day_start + 86400 <= model.sa_start:
            day += dt.timedelta(days=1)
            continue
        key = (1, 1, day_start)
        block = day_readings(model, 1, 1, day, overrides)
        if key in overrides and block is None:
            days.append((day, 0.0, "missing"))
        elif block is not None:
            qualities = set(block.qualities or ())
            mark = ("estimated" if qualities & set(ESTIMATED_QUALITIES)
                    else "corrected" if EDITED_QUALITY in qualities or key in overrides else "normal")
            days.append((day, sum(block.values) * factor, mark))
        day += dt.timedelta(days=1)
    if span != "months":
        return [ChartPoint(d.strftime("%b %d"), v, m) for d, v, m in days], unit, ""
    months: dict[tuple[int, int], list[Any]] = {}
    rank = {"normal": 0, "corrected": 1, "estimated": 2, "missing": 3}
    for d, v, m in days:
        entry = months.setdefault((d.year, d.month), [0.0, "normal"])
        entry[0] += v
        if m != "missing" and rank[m] > rank[entry[1]]:  # a month with a gap day still has data
            entry[1] = m
    return ([ChartPoint(dt.date(y, mo, 1).strftime("%b %Y"), v, m) for (y, mo), (v, m) in months.items()],
            unit, "Months hold the published days; the current month is partial.")


def account_tree(db: Session) -> list[dict[str, Any]]:
    """Customers -> accounts -> SAs, for the world page."""
    out = []
    for person in customers(db):
        accounts = []
        for account in db.execute(select(Account).where(Account.customer_id == person.id)
                                  .order_by(Account.id)).scalars():
            accounts.append({"number": account.account_number, "linked": account.linked,
                             "service_agreements": [{
                                 "key": sa.key, "sa_number": sa.sa_number, "usage_point_id": sa.usage_point_id,
                                 "commodity": sa.commodity, "status": sa.status, "rate": sa.rate_schedule,
                                 "profile": (sa.profile or {}).get("profile", ""),
                                 "interval": (sa.profile or {}).get("interval_length"),
                             } for sa in account.service_agreements]})
        out.append({"name": person.name, "key": person.key, "username": person.username,
                    "class": person.customer_class, "accounts": accounts})
    return out


def entrance(db: Session) -> dict[str, Any]:
    """What the portal's front page offers a demo: a customer flow to start, and the demo sign-ins."""
    from urllib.parse import urlencode

    starter = db.execute(select(ThirdParty).where(ThirdParty.status == "approved", ThirdParty.user_type == "standard",
                                                  ThirdParty.redirect_uri.is_not(None))
                         .order_by(ThirdParty.client_id)).scalars().first()
    flow = None
    if starter is not None:
        flow = {"name": starter.display_name, "client_id": starter.client_id,
                "url": "/myAuthorization?" + urlencode({"client_id": starter.client_id,
                                                        "redirect_uri": starter.redirect_uri,
                                                        "response_type": "code"})}
    people = [{"username": c.username, "name": c.name} for c in customers(db)[:6]]
    return {"flow": flow, "customers": people}
