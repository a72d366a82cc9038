"""The world changing over time (spec 4.15, 7.13): data changes and scheduled account/SA events.

Data changes (gaps, corrections, bill revisions) are declarations; what is served follows from them
and the clock (``synth.lifecycle``). Account events (meter exchange, rate change, turn-off, move-out,
change of company, unlinking, paper authorization) are applied exactly once when the simulated clock
reaches their time, by whichever process looks first (a conditional update claims each one).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.authorizations import (
    CUSTOMER_KINDS,
    ConsentInvalid,
    Duration,
    cancel_by_customer,
    edit_by_customer,
    is_live,
    live_customer_authorizations,
    local_date,
    remove_service_agreement,
)
from mock_custodian.domain.events import ACCOUNT_EVENT_KINDS, CUSTOMER_EVENT_KINDS
from mock_custodian.errors import BadRequest
from mock_custodian.store.db import Raw, Sql, next_id, raw_of
from mock_custodian.store.models import (
    Account,
    AccountEvent,
    Authorization,
    Customer,
    DataChange,
    Meter,
    ServiceAgreement,
    ThirdParty,
)
from mock_custodian.synth.billing import bill_periods
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.lifecycle import CORRECTION_QUALITIES, ESTIMATE_QUALITIES, Change, Correction, Gap

THREE_YEARS = 3 * 365 * 86400
DATA_CHANGE_KINDS = ("gap", "correction", "bill_revision")
# Events after which the SA keeps its authorizations and history (spec 4.15) and those that end access.
ENDING_EVENTS = ("move_out", "change_of_company")


# --- data changes ---------------------------------------------------------------------------------

def to_change(row: DataChange) -> Change:
    p = row.params or {}
    if row.kind == "gap":
        return Gap(int(row.start), int(row.end), int(p.get("estimate_after", 2 * 86400)),
                   int(p.get("final_after", 7 * 86400)), int(p.get("estimate_quality", 8)), row.meter,
                   row.flow_direction)
    return Correction(int(row.start), int(row.end), int(p["at"]), float(p.get("factor", 1.1)),
                      int(p.get("quality", 7)), row.meter, row.flow_direction)


@functools.lru_cache(maxsize=64)
def _any_change(count: int) -> Sql:
    marks = ", ".join(f":i{k}" for k in range(count))
    return Sql(f"SELECT 1 FROM data_changes WHERE service_agreement_id IN ({marks}) LIMIT 1")


def changes_by_service_agreement(db: Session, sa_ids: Iterable[int]) -> dict[int, list[Change]]:
    ids = list(sa_ids)
    out: dict[int, list[Change]] = {}
    if not ids:
        return out
    # Every customer-token resource asks; most SAs have no declared change, which one prebuilt read
    # tells for a fraction of the ORM query's cost (issue 17).
    if raw_of(db).one(_any_change(len(ids)), {f"i{k}": sa for k, sa in enumerate(ids)}) is None:
        return out
    rows = db.execute(select(DataChange).where(DataChange.service_agreement_id.in_(ids))
                      .order_by(DataChange.id)).scalars()
    for row in rows:
        out.setdefault(row.service_agreement_id, []).append(to_change(row))
    return out


def _range(start: float, end: float, now: float) -> None:
    if end <= start:
        raise BadRequest("end must be after start")
    if start < now - THREE_YEARS:
        raise BadRequest("changes reach back at most 3 years (spec 7.13)")


def declare_gap(db: Session, sa: ServiceAgreement, start: float, end: float, now: float, *,
                estimate_after: int = 2 * 86400, final_after: int = 7 * 86400, estimate_quality: int = 8,
                meter: int | None = None, flow_direction: int | None = None) -> DataChange:
    """Intervals missing at first publication, estimated after ``estimate_after``, final after ``final_after``."""
    _range(start, end, now)
    if estimate_quality not in ESTIMATE_QUALITIES:
        raise BadRequest(f"estimate_quality must be one of {ESTIMATE_QUALITIES}")
    if not 0 <= estimate_after < final_after:
        raise BadRequest("estimate_after must be at least 0 and before final_after")
    row = DataChange(service_agreement_id=sa.id, kind="gap", start=start, end=end, meter=meter,
                     flow_direction=flow_direction, declared_at=now,
                     params={"estimate_after": int(estimate_after), "final_after": int(final_after),
                             "estimate_quality": estimate_quality})
    db.add(row)
    return row


def declare_correction(db: Session, sa: ServiceAgreement, start: float, end: float, now: float, *,
                       at: float | None = None, factor: float = 1.1, quality: int = 7, meter: int | None = None,
                       flow_direction: int | None = None, kind: str = "correction") -> DataChange:
    """Published values in [start, end) become ``factor`` times the metered ones from ``at`` (default now)."""
    _range(start, end, now)
    when = now if at is None else at
    if end > when:
        raise BadRequest("a correction changes data already published: end must not be after its time")
    if quality not in CORRECTION_QUALITIES:
        raise BadRequest(f"quality must be one of {CORRECTION_QUALITIES}")
    if not 0 < factor < 100:
        raise BadRequest("factor must be a positive number below 100")
    row = DataChange(service_agreement_id=sa.id, kind=kind, start=start, end=end, meter=meter,
                     flow_direction=flow_direction, declared_at=now,
                     params={"at": int(when), "factor": float(factor), "quality": quality})
    db.add(row)
    return row


def declare_bill_revision(db: Session, sa: ServiceAgreement, within: float, now: float, *, at: float | None = None,
                          factor: float = 1.05) -> DataChange:
    """Reissue the bill of the billing period containing ``within``: its intervals are corrected, so the
    reissued totals still equal the sum of the intervals, and the UsageSummary gets a new ``updated``."""
    model = ServiceAgreementModel.from_dict(sa.profile)
    period = next(iter(bill_periods(model, within, within + 1)), None)
    if period is None:
        raise BadRequest("no billing period contains that instant")
    return declare_correction(db, sa, period[0], period[1], now, at=at, factor=factor, quality=7,
                              kind="bill_revision")


# --- account events -------------------------------------------------------------------------------

def schedule_event(db: Session, kind: str, at: float, *, sa: ServiceAgreement | None = None,
                   account: Account | None = None, params: dict | None = None) -> AccountEvent:
    if kind not in ACCOUNT_EVENT_KINDS:
        raise BadRequest(f"event must be one of {', '.join(ACCOUNT_EVENT_KINDS)}")
    if kind == "unlink_account" and account is None:
        raise BadRequest("unlink_account needs an account")
    if kind != "unlink_account" and sa is None:
        raise BadRequest(f"{kind} needs a service agreement")
    params = dict(params or {})
    if kind == "rate_change":
        schedule = params.get("rate_schedule")
        try:
            ServiceAgreementModel.from_dict({**sa.profile, "rate_schedule": schedule})
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"rate_change: {exc}") from None
    if kind == "paper_authorization" and not params.get("client_id"):
        raise BadRequest("paper_authorization needs client_id")
    event = AccountEvent(kind=kind, at=at, service_agreement_id=sa.id if sa else None,
                         account_id=account.id if account else (sa.account_id if sa else None), params=params)
    db.add(event)
    return event


_ANY_DUE = Sql("SELECT 1 FROM account_events WHERE at <= :now AND applied_at IS NULL LIMIT 1")


def pending_events(db: Session | Raw, now: float) -> bool:
    """Whether any scheduled event is due: one indexed read (plain SQL built once), so every request can ask."""
    return raw_of(db).one(_ANY_DUE, {"now": now}) is not None


def apply_due_events(db: Session, now: float, resource_base: str) -> list[AccountEvent]:
    """Apply every event whose time has come, in time order, each exactly once across processes."""
    due = db.execute(select(AccountEvent).where(AccountEvent.applied_at.is_(None), AccountEvent.at <= now)
                     .order_by(AccountEvent.at, AccountEvent.id)).scalars().all()
    applied = []
    for event in due:
        claimed = db.execute(update(AccountEvent).where(AccountEvent.id == event.id, AccountEvent.applied_at.is_(None))
                             .values(applied_at=now).execution_options(synchronize_session=False))
        if not claimed.rowcount:
            continue
        event.outcome = _apply(db, event, resource_base)
        event.applied_at = now
        applied.append(event)
    return applied


def _local_day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, PACIFIC).date().isoformat()


def _apply(db: Session, event: AccountEvent, resource_base: str) -> dict:
    at = event.at
    sa = db.get(ServiceAgreement, event.service_agreement_id) if event.service_agreement_id else None
    kind = event.kind
    if kind == "meter_exchange":
        # The UsagePoint and its MeterReading IDs (by meter position) carry on; the meter serial changes.
        position = int(event.params.get("meter", 1))
        old = next((m for m in sa.meters if m.position == position and m.removed_at is None), None)
        if old is None:
            return {"error": f"no meter in position {position}"}
        old.removed_at = at
        serial = str(event.params.get("serial") or f"{old.serial_number[:4]}{next_id(db, 'meter_serial', 500001)}")
        db.add(Meter(service_agreement_id=sa.id, position=position, serial_number=serial,
                     meter_type=old.meter_type, interval_length=old.interval_length, installed_at=at))
        return {"removed": old.serial_number, "installed": serial}
    if kind == "rate_change":
        schedule = str(event.params["rate_schedule"])
        sa.profile = {**sa.profile, "rate_schedule": schedule}
        previous, sa.rate_schedule = sa.rate_schedule, schedule
        return {"from": previous, "to": schedule}
    if kind == "temporary_turn_off":
        sa.status = "Inactive"
        return {"status": "Inactive"}
    if kind == "turn_on":
        sa.status = "Active"
        return {"status": "Active"}
    if kind in ENDING_EVENTS:
        sa.status = "Closed"
        sa.service_end = at
        affected = remove_service_agreement(db, sa.id, at, resource_base)
        return {"status": "Closed", "service_end": _local_day(at), "authorizations": affected}
    if kind == "unlink_account":
        account = db.get(Account, event.account_id)
        account.linked = False
        affected: list[int] = []
        for each in account.service_agreements:
            affected += remove_service_agreement(db, each.id, at, resource_base)
        return {"unlinked": account.account_number, "authorizations": sorted(set(affected))}
    if kind == "paper_authorization":
        return _paper_authorization(db, event, sa, at)
    if kind in CUSTOMER_EVENT_KINDS:
        return _customer_action(db, event, at, resource_base)
    return {"error": f"unknown event {kind}"}


def _customer_action(db: Session, event: AccountEvent, at: float, resource_base: str) -> dict:
    """The customer clicks the X (cancel) or the pencil (remove SAs, change the end date) on "My
    authorizations": the same functions and rules as the pages, so the third party sees the same."""
    p = event.params
    customer_id = int(p["customer_id"])
    if p.get("authorization_id") is not None:
        targets = [a for a in [db.get(Authorization, int(p["authorization_id"]))] if a is not None and is_live(a, at)]
    else:
        targets = [a for a in live_customer_authorizations(db, customer_id, at)
                   if p.get("client_id") in (None, a.third_party.client_id)]
    done: dict[str, list] = {"authorizations": [], "errors": []}
    for authorization in targets:
        if event.kind == "cancel_authorization":
            cancel_by_customer(db, customer_id, authorization.id, at, resource_base)
            done["authorizations"].append(authorization.id)
            continue
        removed = set(p.get("remove_service_agreements") or [])
        keep = [sa.id for sa in authorization.service_agreements if sa.key not in removed]
        try:
            edit_by_customer(db, customer_id, authorization.id, keep_service_agreement_ids=keep,
                             duration=_edited_duration(authorization, p.get("end_date"), at), now=at,
                             resource_base=resource_base)
        except ConsentInvalid as exc:
            done["errors"].append({"authorization": authorization.id, **exc.errors})
            continue
        done["authorizations"].append(authorization.id)
    return done


def _edited_duration(authorization: Authorization, end_date: str | None, at: float) -> Duration:
    """The end date the pencil submits: the new one (``indefinite``, a date, ``+Nd`` after the edit's
    day), else the current one unchanged."""
    if end_date is None:
        return Duration(None if authorization.ends_at is None else local_date(authorization.ends_at - 1))
    if end_date == "indefinite":
        return Duration(None)
    if end_date.startswith("+"):
        return Duration(local_date(at) + dt.timedelta(days=int(end_date[1:-1])))
    return Duration(dt.date.fromisoformat(end_date))


def _paper_authorization(db: Session, event: AccountEvent, sa: ServiceAgreement, at: float) -> dict:
    """PG&E staff enter a signed paper form: no code, no tokens; data flows only through Bulk (spec 4.15)."""
    client_id = str(event.params["client_id"])
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one_or_none()
    if tp is None:
        return {"error": f"unknown client_id {event.params['client_id']}"}
    account = db.get(Account, sa.account_id)
    customer = db.get(Customer, account.customer_id)
    keys = event.params.get("service_agreements")
    sas = [sa] if not keys else [s for a in customer.accounts for s in a.service_agreements if s.key in keys]
    authorization = Authorization(
        id=next_id(db, "authorization_id", 4095250), third_party_id=tp.id, customer_id=customer.id, kind="paper",
        data_groups=list(event.params.get("data_groups") or ["Usage", "Billing"]), history_months=tp.history_months,
        created_at=at, ends_at=None, updated_at=at,
    )
    authorization.service_agreements = sas
    db.add(authorization)
    db.flush()
    return {"authorization_id": authorization.id}


__all__ = [
    "ACCOUNT_EVENT_KINDS", "CUSTOMER_EVENT_KINDS", "CUSTOMER_KINDS", "DATA_CHANGE_KINDS", "apply_due_events",
    "changes_by_service_agreement", "declare_bill_revision", "declare_correction", "declare_gap", "schedule_event",
    "to_change",
]
