"""ESPI resources under ``/GreenButtonConnect/espi/1_1/resource`` (spec 2.2 rows 11-29 and 37, 6.8, 8).

Each handler authenticates the bearer (``api.auth``), resolves what the authorization reaches
(``store.content``), and streams the data engine's writers. Checks run in PG&E's order: certificate
(app guard), rate limit, credential presence, validity and class, ownership, data group, parameters.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mock_custodian import espi
from mock_custodian.api.auth import AT, CAT, Bearer, require_bearer, require_own_authorization
from mock_custodian.domain.authorizations import authorization_status, expires_at, revoke_by_third_party
from mock_custodian.domain.content import (
    FeedPlan,
    Publication,
    SubscriptionScope,
    UsagePointScope,
    customer_item,
    history_start,
    subscription_scope,
    usage_plan,
)
from mock_custodian.domain.scope import ScopeSpelling, authorization_scope
from mock_custodian.domain.windows import DataWindow, WindowError, parse_window
from mock_custodian.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from mock_custodian.espi import ReadingTypeSpec, UsagePointPaths
from mock_custodian.store.db import row_id
from mock_custodian.store.models import Authorization, ServiceAgreement, ThirdParty
from mock_custodian.synth.billing import Bill
from mock_custodian.synth.localtime import local_date
from mock_custodian.synth.readings import day_readings
from mock_custodian.vocabulary import RESOURCE_PREFIX, RegistrationStatus
from mock_custodian.web.context import runtime

blueprint = Blueprint("resources", __name__, url_prefix=RESOURCE_PREFIX)

ATOM = "application/atom+xml;charset=UTF-8"
CUSTOMER_INFO_GROUPS = ("Basic", "Account", "ProgramEnrollment")

# The ReadingTypes PG&E's feeds can reference (spec 7.4): (uom, intervalLength, flowDirection).
KNOWN_READING_TYPES = (
    (72, 3600, 1), (72, 3600, 19), (72, 3600, 4), (72, 900, 1), (72, 900, 19), (72, 900, 4),
    (72, None, 4), (169, 86400, 1), (169, None, 1),
)


def _route(rule: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
    """Every resource tolerates a trailing slash (production clients send one, spec 2.3)."""
    return blueprint.route(rule, methods=list(methods), strict_slashes=False)


# --- shared helpers ------------------------------------------------------------------------------

def _settings_style() -> dict[str, object]:
    s = runtime().settings
    return {"dst_block_duration": s.dst_block_duration, "xml_style": s.xml_style}


def _publication() -> Publication:
    s = runtime().settings
    return Publication.from_settings(s.publish_time_local, s.mv90_extra_delay_days)


def _service_up() -> None:
    """Data endpoints answer 503 while the simulated service status is 0 (spec 2.3)."""
    if runtime().service_status() == 0:
        raise ServiceUnavailable()


def _window(snapshot: bool = False) -> DataWindow:
    s = runtime().settings
    try:
        return parse_window(request.args, runtime().clock.epoch(), default_window=s.default_window,
                            strict=s.strict_dates, lenient=s.lenient_dates,
                            accept_unhyphenated=s.accept_unhyphenated_dates, use_published=not snapshot)
    except WindowError as exc:
        raise BadRequest(str(exc)) from None


def _self_href() -> str:
    """A feed's self link: the request URL without its query, on the configured public base (spec 7.1)."""
    return f"{runtime().api_base_url()}{request.path.rstrip('/')}"


def _stream(chunks: Iterable[bytes], content_type: str = ATOM) -> Response:
    response = Response(iter(chunks), 200, content_type=content_type)
    transaction = request.headers.get("X-Transaction")
    if transaction is not None:
        response.headers["X-Transaction"] = transaction
    return response


def _no_content() -> Response:
    response = Response(b"", 204)
    del response.headers["Content-Type"]
    transaction = request.headers.get("X-Transaction")
    if transaction is not None:
        response.headers["X-Transaction"] = transaction
    return response


def _feed_or_204(entries: Iterator[bytes], now: float) -> Response:
    """Stream a resource-level feed, or 204 when it would hold no entry (spec 6.3)."""
    first = next(entries, None)
    if first is None:
        return _no_content()

    def all_entries() -> Iterator[bytes]:
        yield first
        yield from entries

    return _stream(espi.feed(all_entries(), self_href=_self_href(), updated=now))


def _require_groups(scope: SubscriptionScope, *groups: str) -> None:
    if not scope.has(*groups):
        raise Forbidden(f"The customer did not authorize {' or '.join(groups)} data for this subscription",
                        "insufficient_scope")


def _subscription(subscription_id: str) -> tuple[Bearer, SubscriptionScope]:
    bearer = require_bearer(AT)
    _service_up()
    own = require_own_authorization(bearer, subscription_id)
    rt = runtime()
    with rt.database.session() as db:
        # The bearer check loaded it with its SAs moments ago: attached as it is, not read again.
        authorization = db.merge(own, load=False)
        scope = subscription_scope(authorization, rt.clock.epoch(), _publication())
    return bearer, scope


def _usage_point(scope: SubscriptionScope, usage_point_id: str) -> UsagePointScope:
    point = scope.usage_point(usage_point_id)
    if point is not None:
        return point
    with runtime().database.session() as db:
        exists = db.execute(
            select(ServiceAgreement.id).where(ServiceAgreement.usage_point_id == usage_point_id)
        ).first()
    if exists:
        raise Forbidden("The usage point is not part of this subscription")
    raise NotFound()


def _meter_reading(point: UsagePointScope, meter_reading_id: str) -> tuple[int, int, ReadingTypeSpec, str]:
    for reading in espi.meter_readings_of(point.model):
        if reading[3] == meter_reading_id:
            return reading
    raise NotFound()


def _entry_response(body: bytes) -> Response:
    return _stream([body])


# --- service status ------------------------------------------------------------------------------

@_route("/ReadServiceStatus")
def read_service_status() -> Response:
    """PG&E's connectivity-test probe: ServiceStatus with currentStatus 1, or 0 in maintenance."""
    require_bearer(CAT)
    return Response(espi.service_status_xml(runtime().service_status()), 200,
                    content_type="application/xml;charset=UTF-8")


# --- Authorization (spec 8) ----------------------------------------------------------------------

def authorization_values(authorization: Authorization, now: float, spelling: ScopeSpelling,
                         resource_base: str, resource_uri_style: str) -> espi.AuthorizationValues:
    """One Authorization row as the §8.1 element values (call inside the row's session)."""
    tp = authorization.third_party
    kind = authorization.kind
    end = expires_at(authorization)
    status = authorization_status(authorization, now)
    customer_uri = None
    if kind == "bulk":
        resource_uri = f"{resource_base}/Batch/Bulk/{tp.client_id}"
        published_start = int(authorization.created_at)
    elif kind == "registration":
        resource_uri = f"{resource_base}/ApplicationInformation/{tp.application_information_id}"
        published_start = int(authorization.created_at)
    else:
        prefix = "Batch/Subscription" if resource_uri_style == "batch" else "Subscription"
        resource_uri = f"{resource_base}/{prefix}/{authorization.id}"
        customer_uri = f"{resource_base}/Batch/RetailCustomer/{authorization.id}"
        starts = [history_start(authorization, sa, now) for sa in authorization.service_agreements]
        published_start = int(min(starts)) if starts else int(authorization.created_at)
    if kind in ("bulk", "registration") and tp.status == RegistrationStatus.TERMINATED:
        status = 0
    return espi.AuthorizationValues(
        authorization_id=str(authorization.id),
        authorized_start=int(authorization.created_at),
        authorized_end=end,
        published_start=published_start,
        status=status,
        scope=authorization_scope(authorization, spelling),
        resource_uri=resource_uri,
        customer_resource_uri=customer_uri,
    )


def _authorization_entry(values: espi.AuthorizationValues, when: float, root: bool, base: str, style: str) -> bytes:
    return espi.authorization_entry(values, resource_base=base, published=when, updated=when, root=root, style=style)


@_route("/Authorization")
def authorization_list() -> Response:
    """Every Authorization of the calling client (spec 8.2): bulk entry, registration entry, then customers.

    Streams in pages so a CCA or a large vendor with many thousands stays flat in memory.
    """
    bearer = require_bearer(CAT)
    _service_up()
    rt = runtime()
    now = rt.clock.epoch()
    spelling, base, style = rt.scope_spelling, rt.resource_base_url(), rt.settings.resource_uri_style
    xml_style = rt.settings.xml_style
    order = {"bulk": 0, "registration": 1}

    def entries() -> Iterator[bytes]:
        with rt.database.session() as db:
            system = db.execute(
                select(Authorization).where(Authorization.third_party_id == bearer.third_party_id,
                                            Authorization.kind.in_(("bulk", "registration")))
            ).scalars().all()
            values = [authorization_values(a, now, spelling, base, style)
                      for a in sorted(system, key=lambda a: order[a.kind])]
            times = [a.updated_at for a in sorted(system, key=lambda a: order[a.kind])]
        for value, when in zip(values, times, strict=True):
            yield _authorization_entry(value, when, False, base, xml_style)
        last = 0
        while True:  # pages of 500, each in its own short transaction
            with rt.database.session() as db:
                page = db.execute(
                    select(Authorization).where(Authorization.third_party_id == bearer.third_party_id,
                                                Authorization.kind.not_in(("bulk", "registration")),
                                                Authorization.id > last)
                    .order_by(Authorization.id).limit(500)
                    .options(selectinload(Authorization.service_agreements))  # one query a page, not a row
                ).scalars().all()
                rendered = [(a.id, authorization_values(a, now, spelling, base, style), a.updated_at) for a in page]
            if not rendered:
                return
            for _, value, when in rendered:
                yield _authorization_entry(value, when, False, base, xml_style)
            last = rendered[-1][0]

    return _stream(espi.feed(entries(), self_href=_self_href(), updated=now))


def _own_authorization_row(db, bearer: Bearer, authorization_id: str) -> Authorization:  # noqa: ANN001
    key = row_id(authorization_id)
    if key is None:
        raise NotFound()
    authorization = db.get(Authorization, key)
    if authorization is None:
        raise NotFound()
    if authorization.third_party_id != bearer.third_party_id:
        raise Forbidden("The authorization belongs to another client")
    return authorization


@_route("/Authorization/<authorization_id>")
def authorization_entry(authorization_id: str) -> Response:
    bearer = require_bearer(CAT)
    _service_up()
    rt = runtime()
    now = rt.clock.epoch()
    with rt.database.session() as db:
        authorization = _own_authorization_row(db, bearer, authorization_id)
        values = authorization_values(authorization, now, rt.scope_spelling, rt.resource_base_url(),
                                      rt.settings.resource_uri_style)
        when = authorization.updated_at
    return _entry_response(_authorization_entry(values, when, True, rt.resource_base_url(), rt.settings.xml_style))


@_route("/Authorization/<authorization_id>", methods=("DELETE",))
def authorization_delete(authorization_id: str) -> Response:
    """TP revocation (spec 8.4): immediate and irreversible; 200 with an empty body, repeatable."""
    bearer = require_bearer(CAT)
    _service_up()
    rt = runtime()
    with rt.database.session() as db:
        tp = db.get(ThirdParty, bearer.third_party_id)
        revoke_by_third_party(db, tp, authorization_id, rt.clock.epoch(), rt.resource_base_url(),
                              notify=bool(getattr(rt.settings, "notify_on_tp_revoke", False)))
    return Response(b"", 200)


# --- subscription tree ---------------------------------------------------------------------------

def _paths(point: UsagePointScope) -> UsagePointPaths:
    return UsagePointPaths(runtime().resource_base_url(), point.subscription_id, point.model.usage_point_id)


def _usage_point_entry(scope: SubscriptionScope, point: UsagePointScope, now: float, root: bool,
                       paths: UsagePointPaths, style: str) -> bytes:
    return espi.usage_point_entry(
        paths, service_kind=1 if point.model.commodity == "gas" else 0, published=now, updated=now,
        tariff_profile=point.model.rate_schedule if scope.has("ProgramEnrollment") else None, root=root,
        style=style,
    )


@_route("/Subscription/<subscription_id>/UsagePoint")
def usage_points(subscription_id: str) -> Response:
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage", "Billing")
    now = runtime().clock.epoch()
    style = runtime().settings.xml_style
    entries = [_usage_point_entry(scope, p, now, False, _paths(p), style) for p in scope.usage_points]
    return _stream(espi.feed(entries, self_href=_self_href(), updated=now))


@_route("/Subscription/<subscription_id>/UsagePoint/<usage_point_id>")
def usage_point(subscription_id: str, usage_point_id: str) -> Response:
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage", "Billing")
    point = _usage_point(scope, usage_point_id)
    return _entry_response(_usage_point_entry(scope, point, runtime().clock.epoch(), True, _paths(point),
                                              runtime().settings.xml_style))


@_route("/Subscription/<subscription_id>/UsagePoint/<usage_point_id>/MeterReading")
def meter_readings(subscription_id: str, usage_point_id: str) -> Response:
    """One MeterReading per meter and flow direction; an empty feed for a non-interval SA (spec 7.11)."""
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage")
    point = _usage_point(scope, usage_point_id)
    now = runtime().clock.epoch()
    style = runtime().settings.xml_style
    paths = _paths(point)
    entries = [espi.meter_reading_entry(paths, mr_id, rt.id, published=now, updated=now, style=style)
               for _, _, rt, mr_id in espi.meter_readings_of(point.model)]
    return _stream(espi.feed(entries, self_href=_self_href(), updated=now))


@_route("/Subscription/<subscription_id>/UsagePoint/<usage_point_id>/MeterReading/<meter_reading_id>")
def meter_reading(subscription_id: str, usage_point_id: str, meter_reading_id: str) -> Response:
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage")
    point = _usage_point(scope, usage_point_id)
    _, _, rt_spec, mr_id = _meter_reading(point, meter_reading_id)
    now = runtime().clock.epoch()
    return _entry_response(espi.meter_reading_entry(_paths(point), mr_id, rt_spec.id, published=now, updated=now,
                                                    root=True, style=runtime().settings.xml_style))


def _block_plan(scope: SubscriptionScope, point: UsagePointScope, window: DataWindow, now: float) -> FeedPlan:
    return usage_plan([scope], window, now, self_href=_self_href(), resource_base=runtime().resource_base_url(),
                      publication=_publication(), usage_point_id=point.model.usage_point_id, **_settings_style())


@_route("/Subscription/<subscription_id>/UsagePoint/<usage_point_id>/MeterReading/<meter_reading_id>/IntervalBlock")
def interval_blocks(subscription_id: str, usage_point_id: str, meter_reading_id: str) -> Response:
    """One IntervalBlock per local day in the window (T-1 by default); 204 when there is none."""
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage")
    point = _usage_point(scope, usage_point_id)
    meter, flow, _, mr_id = _meter_reading(point, meter_reading_id)
    window = _window()
    now = runtime().clock.epoch()
    plan = _block_plan(scope, point, window, now)
    if not plan.usage_points:
        return _no_content()
    s = runtime().settings
    entries = espi.iter_interval_block_entries(
        plan.usage_points[0], meter, flow, mr_id, resource_base=runtime().resource_base_url(), published=now,
        updated=now, entry_times=plan.entry_times, dst_block_duration=s.dst_block_duration, style=s.xml_style,
    )
    return _feed_or_204(entries, now)


@_route("/Subscription/<subscription_id>/UsagePoint/<usage_point_id>/MeterReading/<meter_reading_id>"
        "/IntervalBlock/<int:block_start>")
def interval_block(subscription_id: str, usage_point_id: str, meter_reading_id: str, block_start: int) -> Response:
    """One day's block, addressed by its local-midnight epoch (spec 7.4); 404 outside what is served."""
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage")
    point = _usage_point(scope, usage_point_id)
    meter, flow, _, mr_id = _meter_reading(point, meter_reading_id)
    if not point.data_start <= block_start < point.data_end:
        raise NotFound()
    block = day_readings(point.model, meter, flow, local_date(block_start))
    if block is None or block.day_start != block_start or not block.values:
        raise NotFound()
    now = runtime().clock.epoch()
    plan = _block_plan(scope, point, DataWindow(float(block_start), float(block_start) + 1), now)
    published, updated = plan.entry_times(f"{_paths(point).interval_blocks(mr_id)}/{block_start}") or (now, now)
    s = runtime().settings
    return _entry_response(espi.interval_block_entry(
        _paths(point), mr_id, block, published=published, updated=updated, dst_block_duration=s.dst_block_duration,
        root=True, style=s.xml_style))


def _summaries(scope: SubscriptionScope, point: UsagePointScope, window: DataWindow,
               now: float) -> Iterator[tuple[Bill, float, float]]:
    """Issued (or revised) bills in the window with their (published, updated) times."""
    plan = _block_plan(scope, point, window, now)
    if not plan.usage_points:
        return iter(())
    request_ = plan.usage_points[0]
    times = plan.bill_times()
    bills = espi.bills_for(request_, now)
    if window.by_updated:
        lo = window.updated_min if window.updated_min is not None else float("-inf")
        hi = window.updated_max if window.updated_max is not None else float("inf")
    else:
        lo, hi = float("-inf"), float("inf")
    prefix = f"{_paths(point).usage_summaries}/"
    out = []
    for bill in bills:
        published, updated = times.get(f"{prefix}{bill.start}", (bill.issued_at, bill.issued_at))
        if lo <= updated < hi:
            out.append((bill, published, updated))
    return iter(out)


@_route("/Subscription/<subscription_id>/UsagePoint/<usage_point_id>/UsageSummary")
def usage_summaries(subscription_id: str, usage_point_id: str) -> Response:
    """Issued bills whose period overlaps the window; 204 when none (ask for 30 days or more)."""
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage", "Billing")
    point = _usage_point(scope, usage_point_id)
    window = _window()
    now = runtime().clock.epoch()
    billing, style, paths = scope.has("Billing"), runtime().settings.xml_style, _paths(point)
    entries = (espi.usage_summary_entry(paths, bill, published=published, updated=updated, billing=billing,
                                        style=style)
               for bill, published, updated in _summaries(scope, point, window, now))
    return _feed_or_204(entries, now)


@_route("/Subscription/<subscription_id>/UsagePoint/<usage_point_id>/UsageSummary/<int:summary_start>")
def usage_summary(subscription_id: str, usage_point_id: str, summary_start: int) -> Response:
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage", "Billing")
    point = _usage_point(scope, usage_point_id)
    now = runtime().clock.epoch()
    for bill, published, updated in _summaries(scope, point, DataWindow(float(summary_start),
                                                                        float(summary_start) + 1), now):
        if bill.start == summary_start:
            return _entry_response(espi.usage_summary_entry(
                _paths(point), bill, published=published, updated=updated, billing=scope.has("Billing"),
                root=True, style=runtime().settings.xml_style))
    raise NotFound()


# --- shared resources (AT or CAT) ----------------------------------------------------------------

def _reading_type_spec(uom: int, interval_length: int | None, flow: int) -> ReadingTypeSpec:
    return ReadingTypeSpec(uom, interval_length, flow, 7 if uom == 169 else 1)


@_route("/ReadingType")
def reading_types() -> Response:
    require_bearer(AT, CAT)
    _service_up()
    rt = runtime()
    now = rt.clock.epoch()
    base, style = rt.resource_base_url(), rt.settings.xml_style
    entries = [espi.reading_type_entry(_reading_type_spec(*key), resource_base=base, published=now, updated=now,
                                       style=style) for key in KNOWN_READING_TYPES]
    return _stream(espi.feed(entries, self_href=_self_href(), updated=now))


@_route("/ReadingType/<reading_type_id>")
def reading_type(reading_type_id: str) -> Response:
    require_bearer(AT, CAT)
    _service_up()
    try:
        uom, _null, interval, flow = base64.b64decode(reading_type_id, validate=True).decode().split(":")
        key = (int(uom), None if interval == "null" else int(interval), int(flow))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotFound() from None
    if key not in KNOWN_READING_TYPES:
        raise NotFound()
    rt = runtime()
    now = rt.clock.epoch()
    return _entry_response(espi.reading_type_entry(_reading_type_spec(*key), resource_base=rt.resource_base_url(),
                                                   published=now, updated=now, root=True,
                                                   style=rt.settings.xml_style))


def _shared_singleton(resource_id: int | None, writer: Callable[..., bytes]) -> Response:
    """LocalTimeParameters and ProgramIdMapping: one shared resource with id 1, as a feed or an entry."""
    require_bearer(AT, CAT)
    _service_up()
    if resource_id is not None and resource_id != 1:
        raise NotFound()
    rt = runtime()
    now = rt.clock.epoch()
    body = writer(resource_base=rt.resource_base_url(), published=now, updated=now, root=resource_id is not None,
                  style=rt.settings.xml_style)
    if resource_id is not None:
        return _entry_response(body)
    return _stream(espi.feed([body], self_href=_self_href(), updated=now))


@_route("/LocalTimeParameters")
@_route("/LocalTimeParameters/<int:ltp_id>")
def local_time_parameters(ltp_id: int | None = None) -> Response:
    return _shared_singleton(ltp_id, espi.local_time_parameters_entry)


@_route("/ProgramIdMapping")
@_route("/ProgramIdMapping/<int:mapping_id>")
def program_id_mapping(mapping_id: int | None = None) -> Response:
    return _shared_singleton(mapping_id, espi.program_id_mappings_entry)


# --- synchronous batch ---------------------------------------------------------------------------

@_route("/Batch/Subscription/<subscription_id>/UsagePoint/<usage_point_id>")
def batch_usage_point(subscription_id: str, usage_point_id: str) -> Response:
    """Spec 6.8: one usage point's IntervalBlocks plus overlapping issued UsageSummaries; 204 if neither."""
    _, scope = _subscription(subscription_id)
    _require_groups(scope, "Usage", "Billing")
    point = _usage_point(scope, usage_point_id)
    window = _window()
    now = runtime().clock.epoch()
    plan = usage_plan([scope], window, now, self_href=_self_href(), resource_base=runtime().resource_base_url(),
                      publication=_publication(), usage_point_id=point.model.usage_point_id, **_settings_style())
    if plan.is_empty():
        return _no_content()
    return _stream(plan.chunks())


def _customer_plan(subscription_id: str, groups_needed: tuple[str, ...], dr_only: bool) -> FeedPlan:
    bearer = require_bearer(AT)
    _service_up()
    own = require_own_authorization(bearer, subscription_id)
    rt = runtime()
    now = rt.clock.epoch()
    with rt.database.session() as db:
        authorization = db.get(Authorization, own.id)
        if not any(g in (authorization.data_groups or ()) for g in groups_needed):
            raise Forbidden(f"The customer did not authorize {' or '.join(groups_needed)} data",
                            "insufficient_scope")
        item = customer_item(authorization)
    if dr_only and not any(a.dr_programs for acct in item.customer.accounts for a in acct.agreements):
        return FeedPlan("customer", _self_href(), rt.resource_base_url(), now, dr_only=True)
    return FeedPlan("customer", _self_href(), rt.resource_base_url(), now, customer_items=[item], dr_only=dr_only,
                    xml_style=rt.settings.xml_style)


@_route("/Batch/RetailCustomer/<retail_customer_id>")
def batch_retail_customer(retail_customer_id: str) -> Response:
    """One authorization's customer data (spec 7.12); 403 without Basic, Account or ProgramEnrollment."""
    _window(snapshot=True)  # dates are ignored, but malformed ones are still an error
    return _stream(_customer_plan(retail_customer_id, CUSTOMER_INFO_GROUPS, dr_only=False).chunks())


@_route("/Batch/RetailDRPrgInfo/<retail_customer_id>")
def batch_retail_dr_program_info(retail_customer_id: str) -> Response:
    """Demand-response enrolment of one authorization; needs ProgramEnrollment; 204 when not enrolled."""
    plan = _customer_plan(retail_customer_id, ("ProgramEnrollment",), dr_only=True)
    if plan.is_empty():
        return _no_content()
    return _stream(plan.chunks())
