"""What an authorization may see, as plain values the ESPI writers stream (spec 6.1, 6.8, 7.13).

Loads the rows once inside a session and returns a :class:`FeedPlan` of plain values, so the body can
be streamed after the transaction closed. Used by the synchronous resources and by async packages,
which therefore always agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.authorizations import effective_end, is_live
from mock_custodian.domain.recordings import service_agreement_model
from mock_custodian.domain.windows import DataWindow
from mock_custodian.espi import (
    AccountInfo,
    Address,
    AgreementInfo,
    CustomerFeedItem,
    CustomerInfo,
    DemandResponseEnrollment,
    MeterInfo,
    UsagePointPaths,
    UsagePointRequest,
    bills_for,
    customer_feed,
    has_usage_data,
    meter_readings_of,
    usage_feed,
)
from mock_custodian.store.models import (
    Account,
    Authorization,
    Customer,
    Meter,
    ServiceAgreement,
    ThirdParty,
    authorization_service_agreements,
)
from mock_custodian.synth.billing import DEFAULT_BILL_DELAY, bill_periods, compute_bill
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.lifecycle import Change, overrides_for

CUSTOMER_GROUPS = ("Basic", "Account", "ProgramEnrollment")
# Authorizations whose data a third party's Bulk requests cover: customer (online or paper) and a CCA's
# system authorizations, one per customer account in its territory (spec 6.8, 8.2).
BULK_KINDS = ("customer", "paper", "cca")
MAX_HISTORY_MONTHS = 48
# A streamed feed's pieces: each is one pass through the WSGI server and one GIL-free SSL_write
# (server.TLSSocket); 256 KiB measured best against 64 KiB to 1 MiB (docs/benchmarks.md, issue 17).
STREAM_CHUNK = 256 * 1024
CUSTOMER_ITEMS_CHUNK = 5000  # ids per IN list of customer_items (SQLite allows 32,766 bound values)


@dataclass(frozen=True)
class Publication:
    """When a local day's interval data becomes visible (spec 7.13): D+1 at ``publish_time_local``."""

    publish_hour: int = 6
    publish_minute: int = 0
    mv90_extra_days: int = 2

    @classmethod
    def from_settings(cls, publish_time_local: str, mv90_extra_delay_days: int) -> Publication:
        """From the ``publish_time_local`` ("HH:MM") and ``mv90_extra_delay_days`` settings."""
        hour, _, minute = publish_time_local.partition(":")
        try:
            return cls(int(hour), int(minute or 0), int(mv90_extra_delay_days))
        except ValueError:
            raise ValueError(f"publish_time_local must be HH:MM, not {publish_time_local!r}") from None

    def published_at(self, day_start: float, mv90: bool = False) -> float:
        return _published_at(day_start, 1 + (self.mv90_extra_days if mv90 else 0), self.publish_hour,
                             self.publish_minute)

    def cutoff(self, now: float, mv90: bool = False) -> float:
        """End of the newest published day: data before this instant is visible at ``now``."""
        local = dt.datetime.fromtimestamp(now, PACIFIC)
        today = local.date()
        published_today = (local.hour, local.minute) >= (self.publish_hour, self.publish_minute)
        newest_end = today if published_today else today - dt.timedelta(days=1)
        newest_end -= dt.timedelta(days=self.mv90_extra_days if mv90 else 0)
        return dt.datetime(newest_end.year, newest_end.month, newest_end.day, tzinfo=PACIFIC).timestamp()


@lru_cache(maxsize=4096)
def _published_at(day_start: float, days_after: int, hour: int, minute: int) -> float:
    """Local ``hour:minute`` of the day ``days_after`` the one containing ``day_start``: a pure function of
    its arguments, asked once per IntervalBlock of every feed (four years of days fit the cache)."""
    day = dt.datetime.fromtimestamp(day_start, PACIFIC).date()
    target = day + dt.timedelta(days=days_after)
    return dt.datetime(target.year, target.month, target.day, hour, minute, tzinfo=PACIFIC).timestamp()


def history_seconds(months: int) -> int:
    """HistoryLength of spec 4.13 (24/36/48 months as 63072000/94608000/126144000 s), capped at 48 months.

    The one definition: the scope string's ``HistoryLength`` uses it too.
    """
    return min(months, MAX_HISTORY_MONTHS) * 365 * 86400 // 12


def _next_local_midnight_at_or_after(instant: float) -> float:
    local = dt.datetime.fromtimestamp(instant, PACIFIC)
    day = local.date()
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
    if midnight.timestamp() < instant:
        following = day + dt.timedelta(days=1)
        midnight = dt.datetime(following.year, following.month, following.day, tzinfo=PACIFIC)
    return midnight.timestamp()


def history_start(authorization: Authorization, sa: ServiceAgreement, now: float) -> float:
    """Earliest instant of data this authorization reaches for one SA: whole local days only.

    Measured back from the authorization's creation (spec 5.7); a CCA's from the request date (6.1).
    """
    anchor = now if authorization.kind == "cca" else authorization.created_at
    start = anchor - history_seconds(authorization.history_months)
    return _next_local_midnight_at_or_after(max(start, sa.service_start))


@dataclass(frozen=True)
class UsagePointScope:
    """One authorized SA with the bounds of what may be served (all epoch seconds)."""

    subscription_id: str
    model: ServiceAgreementModel
    sa_number: str
    data_start: float
    data_end: float  # min(authorization end, SA end, publication cutoff)
    changes: tuple[Change, ...] = ()  # declared gaps and corrections (store.lifecycle)
    as_of: float = 0.0  # the instant the scope was taken: which stage each change has reached


@dataclass(frozen=True)
class SubscriptionScope:
    """An authorization as the data endpoints see it: its groups and its usage points."""

    subscription_id: str
    third_party_id: int
    data_groups: frozenset[str]
    usage_points: tuple[UsagePointScope, ...]
    live: bool

    def has(self, *groups: str) -> bool:
        return any(g in self.data_groups for g in groups)

    def usage_point(self, usage_point_id: str) -> UsagePointScope | None:
        return next((u for u in self.usage_points if u.model.usage_point_id == usage_point_id), None)


def subscription_scope(authorization: Authorization, now: float, publication: Publication,
                       changes: dict[int, list[Change]] | None = None) -> SubscriptionScope:
    """What one authorization reaches at ``now``; call inside the session that loaded it.

    ``changes`` (SA id -> declared changes) saves a query per authorization when many are scoped at once.
    """
    from sqlalchemy.orm import object_session

    from mock_custodian.domain.lifecycle import changes_by_service_agreement

    end = effective_end(authorization)
    session = object_session(authorization)
    if changes is None:
        changes = changes_by_service_agreement(session, [sa.id for sa in authorization.service_agreements]) \
            if session is not None else {}
    points = []
    for sa in authorization.service_agreements:
        model = service_agreement_model(session, sa)
        data_end = min(x for x in (end, sa.service_end, publication.cutoff(now, model.mv90)) if x is not None)
        points.append(UsagePointScope(str(authorization.id), model, sa.sa_number, history_start(authorization, sa, now),
                                      data_end, tuple(changes.get(sa.id, ())), now))
    return SubscriptionScope(
        subscription_id=str(authorization.id),
        third_party_id=authorization.third_party_id,
        data_groups=frozenset(authorization.data_groups or ()),
        usage_points=tuple(sorted(points, key=lambda p: p.model.usage_point_id)),
        live=is_live(authorization, now),
    )


def changed_blocks(point: UsagePointScope, start: float, end: float, publication: Publication) -> tuple[dict, dict]:
    """Overrides and ``updated`` times of the blocks the declared changes alter within [start, end)."""
    if not point.changes:
        return {}, {}
    mv90 = point.model.mv90
    return overrides_for(point.model, point.changes, start, end, point.as_of,
                         lambda day_start: publication.published_at(day_start, mv90))


def usage_request(point: UsagePointScope, groups: frozenset[str], window: DataWindow,
                  publication: Publication, *, include_usage: bool = True,
                  include_summaries: bool = True) -> UsagePointRequest | None:
    """The data engine's request for one usage point: the window clamped to what may be served.

    Declared gaps and corrections enter as overrides (bills are computed from the same values).
    ``updated-*`` windows select days by their Atom ``updated`` time: the day's publication, or its
    latest change.
    """
    start = point.data_start if window.published_min is None else max(point.data_start, window.published_min)
    end = point.data_end if window.published_max is None else min(point.data_end, window.published_max)
    usage = "Usage" in groups and include_usage
    billing = "Billing" in groups
    # Overrides must cover whole billing periods too, so bills always equal their (changed) intervals.
    overrides, updated = changed_blocks(point, point.data_start, point.data_end, publication)
    request = UsagePointRequest(
        subscription_id=point.subscription_id,
        sa=point.model,
        start=start,
        end=end,
        usage=usage,
        billing=billing,
        program_enrollment="ProgramEnrollment" in groups,
        include_usage_summaries=include_summaries and (usage or billing or "Usage" in groups),
        overrides=overrides or None,
    )
    if window.by_updated:
        request = _by_updated(request, point, window, publication, updated)
    return request


def _by_updated(request: UsagePointRequest, point: UsagePointScope, window: DataWindow,
                publication: Publication, updated: dict) -> UsagePointRequest:
    lo = window.updated_min if window.updated_min is not None else float("-inf")
    hi = window.updated_max if window.updated_max is not None else float("inf")
    latest: dict[int, float] = {}
    for (_meter, _flow, day_start), when in updated.items():
        latest[day_start] = max(latest.get(day_start, when), when)
    first = _next_local_midnight_at_or_after(request.start)
    # Changed days are dated by their latest change; every other day by its publication, which grows
    # with the day: scan only from a little before ``lo`` and stop at the first day published after
    # ``hi`` (a daily package's three-year window is then a few days of work per SA, not 1,095).
    days = [d for d, when in latest.items() if first <= d < request.end and lo <= when < hi]
    margin = (3 + publication.mv90_extra_days) * 86400
    cursor = first if lo == float("-inf") else _next_local_midnight_at_or_after(max(first, lo - margin))
    while cursor < request.end:
        when = publication.published_at(cursor, point.model.mv90)
        if when >= hi:
            break
        if when >= lo and int(cursor) not in latest:
            days.append(int(cursor))
        local = dt.datetime.fromtimestamp(cursor, PACIFIC).date() + dt.timedelta(days=1)
        cursor = dt.datetime(local.year, local.month, local.day, tzinfo=PACIFIC).timestamp()
    return replace(request, days=frozenset(days))


@dataclass
class FeedPlan:
    """A usage or customer feed ready to stream: plain values only, no session needed.

    ``block_updated`` maps IntervalBlock hrefs altered by declared changes to their ``updated`` time;
    every other block is dated by its day's publication, and a UsageSummary by its bill's issue or, if
    later, the last change inside its period (a revised bill).
    """

    kind: str  # usage | customer
    self_href: str
    resource_base: str
    now: float
    usage_points: list[UsagePointRequest] = field(default_factory=list)
    customer_items: list[CustomerFeedItem] = field(default_factory=list)
    dr_only: bool = False
    updated_window: tuple[float, float] | None = None
    publication: Publication = field(default_factory=Publication)
    dst_block_duration: str = "actual"
    xml_style: str = "pge"
    feed_id: str | None = None
    block_updated: dict[str, float] = field(default_factory=dict)
    _bill_times: dict[str, tuple[float, float]] | None = field(default=None, repr=False)
    _mv90_points: frozenset[str] = field(default=frozenset(), repr=False)
    _schedules: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict, repr=False)  # by id(request)

    def __post_init__(self) -> None:
        # Looked up once per block while streaming: keep it a set lookup, not a scan of the usage points.
        self._mv90_points = frozenset(r.sa.usage_point_id for r in self.usage_points if r.sa.mv90)

    def is_empty(self) -> bool:
        """PG&E answers 204 when a feed would carry no data (spec 6.3)."""
        if self.kind == "customer":
            return not self.customer_items
        return not any(has_usage_data(self._filtered(r), self.now) for r in self.usage_points)

    def _filtered(self, request: UsagePointRequest) -> UsagePointRequest:
        if self.updated_window is None:
            return request
        lo, hi = self.updated_window
        times = self.bill_times()
        paths = UsagePointPaths(self.resource_base, request.subscription_id, request.sa.usage_point_id)
        # Periods are selected by their dates first: only the bills kept are computed (a daily package's
        # three-year window would otherwise compute 36 bills per SA to keep none or one).
        given = {b.start: b for b in request.bills} if request.bills is not None else {}
        kept = [given.get(start) or compute_bill(request.sa, start, end, issued, request.overrides)
                for start, end, issued in self._schedule(request)
                if lo <= times.get(f"{paths.usage_summaries}/{start}", (issued, issued))[1] < hi]
        return replace(request, bills=kept)

    def chunks(self, chunk_size: int = STREAM_CHUNK) -> Iterator[bytes]:
        """The feed's bytes in pieces of about ``chunk_size``."""
        if self.kind == "customer":
            return customer_feed(self.customer_items, resource_base=self.resource_base, self_href=self.self_href,
                                 now=self.now, feed_id=self.feed_id, dr_only=self.dr_only, style=self.xml_style,
                                 chunk_size=chunk_size)
        return usage_feed(
            [self._filtered(r) for r in self.usage_points], resource_base=self.resource_base,
            self_href=self.self_href, now=self.now, feed_id=self.feed_id, entry_times=self.entry_times,
            dst_block_duration=self.dst_block_duration, style=self.xml_style, chunk_size=chunk_size,
        )

    def entry_times(self, href: str) -> tuple[float, float] | None:
        """``(published, updated)`` of an entry; None for entries dated ``now``. ``updated-*`` selects on these."""
        if "/IntervalBlock/" in href:
            day_start = float(href.rsplit("/", 1)[1])
            mv90 = bool(self._mv90_points) and href.split("/UsagePoint/", 1)[1].split("/", 1)[0] in self._mv90_points
            published = self.publication.published_at(day_start, mv90)
            return published, self.block_updated.get(href, published)
        if "/UsageSummary/" in href:
            return self.bill_times().get(href)
        return None

    def _schedule(self, request: UsagePointRequest) -> list[tuple[int, int, int]]:
        """``bill_schedule`` of one of this plan's requests, computed once (``bill_times`` and ``_filtered``)."""
        schedule = self._schedules.get(id(request))
        if schedule is None:
            schedule = self._schedules[id(request)] = bill_schedule(request, self.now)
        return schedule

    def bill_times(self) -> dict[str, tuple[float, float]]:
        """UsageSummary href -> (issued, updated): a change inside the period after issue revises the bill."""
        if self._bill_times is None:
            changed: dict[str, list[tuple[int, float]]] = {}
            for href, when in self.block_updated.items():
                prefix = href.split("/MeterReading/", 1)[0]
                changed.setdefault(prefix, []).append((int(href.rsplit("/", 1)[1]), when))
            self._bill_times = {}
            for r in self.usage_points:
                paths = UsagePointPaths(self.resource_base, r.subscription_id, r.sa.usage_point_id)
                days = changed.get(paths.usage_point, [])
                for start, end, issued in self._schedule(r):
                    revised = max((w for d, w in days if start <= d < end), default=0.0)
                    self._bill_times[f"{paths.usage_summaries}/{start}"] = (float(issued), max(float(issued), revised))
        return self._bill_times


def bill_schedule(request: UsagePointRequest, now: float) -> list[tuple[int, int, int]]:
    """``(start, end, issued_at)`` of the bills ``bills_for`` would return, without computing them."""
    if request.bills is not None:
        return [(b.start, b.end, b.issued_at) for b in bills_for(request, now)]
    if not (request.include_usage_summaries and (request.usage or request.billing)):
        return []
    out = []
    for start, end in bill_periods(request.sa, request.start, min(request.end, now)):
        issued = end + DEFAULT_BILL_DELAY
        if issued > now:
            break
        if request.summary_starts is None or start in request.summary_starts:
            out.append((start, end, issued))
    return out


def usage_plan(scopes: Iterable[SubscriptionScope], window: DataWindow, now: float, *, self_href: str,
               resource_base: str, publication: Publication, usage_point_id: str | None = None,
               **style: object) -> FeedPlan:
    """A usage feed over the usage points of ``scopes`` (optionally one usage point) for ``window``."""
    requests: list[UsagePointRequest] = []
    block_updated: dict[str, float] = {}
    for scope in scopes:
        for point in scope.usage_points:
            if usage_point_id is not None and point.model.usage_point_id != usage_point_id:
                continue
            request = usage_request(point, scope.data_groups, window, publication)
            if request is None or request.start >= request.end:
                continue
            requests.append(request)
            _, updated = changed_blocks(point, point.data_start, point.data_end, publication)
            if updated:
                paths = UsagePointPaths(resource_base, point.subscription_id, point.model.usage_point_id)
                ids = {(meter, flow): mr_id for meter, flow, _, mr_id in meter_readings_of(point.model)}
                for (meter, flow, day_start), when in updated.items():
                    block_updated[f"{paths.interval_blocks(ids[(meter, flow)])}/{day_start}"] = when
    updated_window = None
    if window.by_updated:
        updated_window = (window.updated_min if window.updated_min is not None else float("-inf"),
                          window.updated_max if window.updated_max is not None else float("inf"))
    return FeedPlan("usage", self_href, resource_base, now, usage_points=requests, updated_window=updated_window,
                    publication=publication, block_updated=block_updated, **style)  # type: ignore[arg-type]


def _address(raw: dict) -> Address:
    return Address(street=str(raw.get("street", "")), city=str(raw.get("city", "")),
                   zip_code=str(raw.get("zip", "")), state=str(raw.get("state", "CA")))


def _dr(raw: dict) -> DemandResponseEnrollment:
    def when(key: str) -> int | None:
        value = raw.get(key)
        return int(value) if isinstance(value, int | float) else None

    return DemandResponseEnrollment(
        program_name=str(raw.get("program", raw.get("program_name", "SmartAC"))),
        enrollment_status=str(raw.get("status", "enrolled")),
        enrollment_date=when("enrolled_at"),
        de_enrollment_date=when("unenrolled_at"),
        term_date_without_financial=when("term_without_financial_obligation"),
        term_date_regardless_financial=when("term_regardless_of_financial_obligation"),
    )


def customer_item(authorization: Authorization, groups: Iterable[str] | None = None) -> CustomerFeedItem:
    """One authorization's customer data (spec 7.12), for the SAs it covers."""
    customer = authorization.customer
    assert customer is not None
    return _customer_item(authorization.id, groups if groups is not None else authorization.data_groups or (),
                          customer, customer.accounts, authorization.service_agreements,
                          {sa.id: sa.meters for sa in authorization.service_agreements})


def _customer_item(authorization_id: int, groups: Iterable[str], customer: Any, accounts: Iterable[Any],
                   sas: Iterable[Any], meters: dict[int, Sequence[Any]]) -> CustomerFeedItem:
    """The pure part of :func:`customer_item`: ORM objects or Core rows with the same attribute names.

    ``sas`` are the authorization's SAs in its order (by UsagePoint id), ``accounts`` the customer's by id,
    ``meters`` each SA's meters by position.
    """
    by_account: dict[int, list[Any]] = {}
    for sa in sas:
        by_account.setdefault(sa.account_id, []).append(sa)
    infos = []
    for account in accounts:
        chosen = by_account.get(account.id)
        if not chosen:
            continue
        agreements = [
            AgreementInfo(
                usage_point_id=sa.usage_point_id, sa_number=sa.sa_number, customer_class=sa.customer_class,
                sign_date=int(sa.service_start), premise_number=sa.premise_number,
                service_address=_address(sa.service_address), status=sa.status,
                meters=tuple(MeterInfo(m.serial_number, m.meter_type, m.interval_length) for m in meters.get(sa.id, ())
                             if m.removed_at is None),
                dr_programs=tuple(_dr(p) for p in sa.dr_programs or ()), agreement_id=sa.agreement_key,
            )
            for sa in chosen
        ]
        infos.append(AccountInfo(account.account_number, tuple(agreements), _address(account.billing_address)))
    info = CustomerInfo(customer.customer_number, customer.name, tuple(infos))
    return CustomerFeedItem(str(authorization_id), info, tuple(groups))


def customer_items(db: Session, ids: Sequence[int]) -> list[CustomerFeedItem]:
    """The customer data of many authorizations, in the order given, from six Core selects of plain rows.

    A CCA's daily BulkRetailCustomerInfo covers its whole territory: loading each authorization, SA, meter,
    customer and account as an ORM object cost about 1.4 ms per SA, most of the package's build time.
    Authorizations without a customer are left out, as :func:`customer_item` cannot describe them.
    """
    wanted = [int(i) for i in ids]
    items: list[CustomerFeedItem] = []
    for start in range(0, len(wanted), CUSTOMER_ITEMS_CHUNK):  # bounded bind lists, however large a package
        items += _customer_items(db, wanted[start:start + CUSTOMER_ITEMS_CHUNK])
    return items


def _customer_items(db: Session, wanted: list[int]) -> list[CustomerFeedItem]:
    link = authorization_service_agreements
    authorizations = {row.id: row for row in db.execute(
        select(Authorization.id, Authorization.customer_id, Authorization.data_groups)
        .where(Authorization.id.in_(wanted)))}
    customer_ids = sorted({a.customer_id for a in authorizations.values() if a.customer_id is not None})
    if not customer_ids:
        return []
    customers = {row.id: row for row in db.execute(
        select(Customer.id, Customer.customer_number, Customer.name).where(Customer.id.in_(customer_ids)))}
    sa = ServiceAgreement
    sas: dict[int, list[Any]] = {}
    for row in db.execute(
        select(link.c.authorization_id, sa.id, sa.account_id, sa.usage_point_id, sa.sa_number, sa.customer_class,
               sa.service_start, sa.premise_number, sa.service_address, sa.status, sa.dr_programs, sa.agreement_key)
        .join(sa, sa.id == link.c.service_agreement_id)
        .where(link.c.authorization_id.in_(wanted)).order_by(link.c.authorization_id, sa.usage_point_id)
    ):
        sas.setdefault(row.authorization_id, []).append(row)
    # Only accounts holding one of the SAs are described: read them by primary key (accounts.customer_id
    # has no index, and a scan of every account per package grew with the square of the territory).
    account_ids = sorted({row.account_id for rows in sas.values() for row in rows})
    accounts: dict[int, list[Any]] = {}
    for row in db.execute(select(Account.id, Account.customer_id, Account.account_number, Account.billing_address)
                          .where(Account.id.in_(account_ids)).order_by(Account.id)):
        accounts.setdefault(row.customer_id, []).append(row)
    sa_ids = sorted({row.id for rows in sas.values() for row in rows})
    meters: dict[int, list[Any]] = {}
    for start in range(0, len(sa_ids), CUSTOMER_ITEMS_CHUNK):
        for row in db.execute(
            select(Meter.service_agreement_id, Meter.serial_number, Meter.meter_type, Meter.interval_length,
                   Meter.removed_at)
            .where(Meter.service_agreement_id.in_(sa_ids[start:start + CUSTOMER_ITEMS_CHUNK]))
            .order_by(Meter.service_agreement_id, Meter.position, Meter.id)
        ):
            meters.setdefault(row.service_agreement_id, []).append(row)
    items = []
    for authorization_id in wanted:
        row = authorizations.get(authorization_id)
        customer = customers.get(row.customer_id) if row is not None else None
        if customer is None:
            continue
        items.append(_customer_item(authorization_id, row.data_groups or (), customer, accounts.get(customer.id, ()),
                                    sas.get(authorization_id, ()), meters))
    return items


def bulk_authorizations(db: Session, tp: ThirdParty, now: float) -> list[Authorization]:
    """Every data-bearing authorization of a third party in force at ``now``, ascending ID (Bulk scope)."""
    rows = db.execute(
        select(Authorization).where(Authorization.third_party_id == tp.id, Authorization.kind.in_(BULK_KINDS))
        .order_by(Authorization.id)
    ).scalars()
    return [a for a in rows if is_live(a, now)]
