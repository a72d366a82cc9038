"""Asynchronous Batch requests as durable rows (spec 6.4-6.6): accept, plan, find a package.

A request becomes one :class:`AsyncJob` (what to build and when), one or more :class:`Package` rows
(one ``correlationID`` each; a request over ``max_subscriptions`` subscriptions is split) and one
:class:`Notification` waiting for the build. Everything the build needs (window, feed style,
publication rule, which subscriptions) is frozen into the rows at acceptance, so a package built by
any worker process, after any restart, holds what the request asked for. The job worker
(``mock_custodian.jobs``) builds and delivers; the web layer only accepts and retrieves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from mock_custodian.domain.authorizations import SELF_ACCESS_GROUPS
from mock_custodian.domain.content import (
    BULK_KINDS,
    FeedPlan,
    Publication,
    customer_items,
    subscription_scope,
    usage_plan,
)
from mock_custodian.domain.faults import claim_notification_fault
from mock_custodian.domain.lifecycle import changes_by_service_agreement
from mock_custodian.domain.windows import DataWindow
from mock_custodian.errors import Forbidden, NotFound
from mock_custodian.espi import batch_list_xml
from mock_custodian.store.models import (
    AsyncJob,
    Authorization,
    Customer,
    Notification,
    Package,
    ServiceAgreement,
    ThirdParty,
)
from mock_custodian.vocabulary import RESOURCE_PREFIX

USAGE_GROUPS = ("Usage", "Billing")
CUSTOMER_GROUPS = ("Basic", "Account", "ProgramEnrollment")
DR_GROUPS = ("ProgramEnrollment",)
CCA_GROUPS = ("Usage", "Billing", "Basic", "Account")  # what a CCA's system authorizations carry

# Request kind -> (path resource name, feed written, groups an authorization needs to be included).
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "subscription": ("Subscription", "usage", USAGE_GROUPS),
    "bulk": ("Bulk", "usage", USAGE_GROUPS),
    "customer_info": ("BulkRetailCustomerInfo", "customer", CUSTOMER_GROUPS),
    "dr": ("BulkRetailDRPrgInfo", "dr", DR_GROUPS),
}
CCA_LEGACY_PREFIX = "/GreenButtonConnect/espi/1_1"  # Batch/BulkRetailCustomerInfo without /resource/


@dataclass(frozen=True)
class BuildOptions:
    """How packages are written, frozen at acceptance from the settings of the accepting process."""

    api_base_url: str
    xml_style: str = "pge"
    dst_block_duration: str = "actual"
    publish_time_local: str = "06:00"
    mv90_extra_delay_days: int = 2

    @property
    def resource_base(self) -> str:
        return f"{self.api_base_url}{RESOURCE_PREFIX}"

    def publication(self) -> Publication:
        return Publication.from_settings(self.publish_time_local, self.mv90_extra_delay_days)


def window_dict(window: DataWindow | None) -> dict[str, float | None] | None:
    return None if window is None else asdict(window)


def window_from(raw: dict[str, Any] | None) -> DataWindow | None:
    return None if raw is None else DataWindow(**raw)


def offered_groups(tp: ThirdParty) -> set[str]:
    """The data groups a registration can ever receive: its ticked groups (self-access and CCA: implied)."""
    if tp.user_type == "cca":
        return set(CCA_GROUPS)
    groups = set(tp.data_groups or ())
    if not groups and tp.user_type == "self_access":
        groups = set(SELF_ACCESS_GROUPS)
    return groups


def _grants(authorization: Authorization, groups: Iterable[str]) -> bool:
    granted = set(authorization.data_groups or ())
    return any(g in granted for g in groups)


def plan_for(db: Session, feed: str, subscription_ids: Sequence[int], window: DataWindow | None, now: float,
             *, self_href: str, options: BuildOptions, feed_id: str | None = None) -> FeedPlan:
    """The feed of one package: the same data engine the synchronous resources use (``store.content``).

    ``now`` is the request's own time, so a package shows the data as it stood when it was asked for.
    Call inside a session; the plan holds plain values and streams after the session closes.
    """
    if feed == "usage":
        authorizations = load_authorizations(db, subscription_ids)
        publication = options.publication()
        changes = changes_by_service_agreement(db, [sa.id for a in authorizations for sa in a.service_agreements])
        scopes = [subscription_scope(a, now, publication, changes) for a in authorizations]
        plan = usage_plan(scopes, window or DataWindow(None, None), now, self_href=self_href,
                          resource_base=options.resource_base, publication=publication,
                          dst_block_duration=options.dst_block_duration, xml_style=options.xml_style)
        plan.feed_id = feed_id
        return plan
    items = customer_items(db, subscription_ids)  # plain rows: no ORM object per SA (issue 14)
    if feed == "dr":  # only enrolments: an SA without a DR program has nothing to report
        items = [i for i in items if any(ag.dr_programs for acct in i.customer.accounts for ag in acct.agreements)]
    return FeedPlan("customer", self_href, options.resource_base, now, customer_items=items, dr_only=feed == "dr",
                    xml_style=options.xml_style, feed_id=feed_id)


def load_authorizations(db: Session, ids: Sequence[int], *, customers: bool = False) -> list[Authorization]:
    """Authorizations by id, in the order given, with their SAs (and customers) in a few queries, not a few per row.

    A 100-subscription package took some 300 queries one row at a time; this takes three to six.
    """
    wanted = [int(i) for i in ids]
    if not wanted:
        return []
    options = [selectinload(Authorization.service_agreements).selectinload(ServiceAgreement.meters)
               if customers else selectinload(Authorization.service_agreements)]
    if customers:
        options.append(selectinload(Authorization.customer).selectinload(Customer.accounts))
    rows = db.execute(select(Authorization).where(Authorization.id.in_(wanted)).options(*options)).scalars().all()
    by_id = {a.id: a for a in rows}
    return [by_id[i] for i in wanted if i in by_id]


def package_feed_id(correlation_id: str) -> str:
    """A package's Atom feed id: fixed per package, so every fetch returns identical bytes."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"correlationID:{correlation_id}"))


def _all_empty(db: Session, feed: str, ids: list[int], window: DataWindow | None, now: float, *, self_href: str,
               options: BuildOptions, probe: int = 50) -> bool:
    """Would the whole request hold no data (PG&E's 204)? Stops at the first slice that holds some."""
    for start in range(0, len(ids), probe):
        if not plan_for(db, feed, ids[start:start + probe], window, now, self_href=self_href,
                        options=options).is_empty():
            return False
    return True


@dataclass(frozen=True)
class Accepted:
    """A recorded asynchronous request: its job and the correlationIDs its notification will list."""

    job_id: int
    correlation_ids: tuple[str, ...]


def check_groups(tp: ThirdParty, kind: str, authorization: Authorization | None = None) -> None:
    """403 when the whole request needs a data group that was never granted (spec 6.8 gating).

    A subscription must grant Usage or Billing; customer-information and DR requests need a
    registration that receives those groups. Bulk usage requests leave out what is not granted.
    """
    _, _, groups = KINDS[kind]
    if kind == "subscription":
        if authorization is None or not _grants(authorization, groups):
            raise Forbidden("The customer did not authorize Usage or Billing data for this subscription",
                            "insufficient_scope")
    elif kind in ("customer_info", "dr") and not set(groups) & offered_groups(tp):
        raise Forbidden(f"The registration does not receive {' or '.join(groups)} data", "insufficient_scope")


def subscriptions_for(db: Session, tp: ThirdParty, kind: str, now: float,
                      authorization: Authorization | None = None) -> list[int]:
    """Which subscriptions a request covers, ascending: the token's own one, or the Bulk scope of spec 6.8."""
    _, _, groups = KINDS[kind]
    if kind == "subscription":
        assert authorization is not None
        return [authorization.id]
    return bulk_authorization_ids(db, tp.id, now, groups)


def bulk_authorization_ids(db: Session, third_party_id: int, now: float, groups: Iterable[str]) -> list[int]:
    """Ids of the Bulk scope (``store.content.bulk_authorizations``) granting one of ``groups``, ascending.

    Reads two columns per row instead of loading 100,000 authorization objects for a CCA's territory.
    """
    wanted = set(groups)
    rows = db.execute(
        select(Authorization.id, Authorization.data_groups)
        .where(Authorization.third_party_id == third_party_id, Authorization.kind.in_(BULK_KINDS),
               or_(Authorization.revoked_at.is_(None), Authorization.revoked_at > now),
               or_(Authorization.ends_at.is_(None), Authorization.ends_at > now))
        .order_by(Authorization.id)
    )
    return [row_id for row_id, granted in rows if wanted & set(granted or ())]


def accept(db: Session, *, tp: ThirdParty, kind: str, request_path: str, query: str, x_transaction: str | None,
           window: DataWindow | None, now: float, delay_s: float, max_subscriptions: int, options: BuildOptions,
           authorization: Authorization | None = None) -> Accepted | None:
    """Record an asynchronous request, or return None when it would hold no data (PG&E's 204, no POST).

    ``request_path`` is the batch URL's path as the caller used it (the CCA form keeps no /resource/):
    it becomes the feed's self link and, with ``?correlationID=``, each BatchList entry. All rows are
    written in the caller's transaction: nothing is stored half-way.
    """
    resource, feed, _ = KINDS[kind]
    check_groups(tp, kind, authorization)
    ids = subscriptions_for(db, tp, kind, now, authorization)
    self_href = f"{options.api_base_url}{request_path}"
    if not ids or _all_empty(db, feed, ids, window, now, self_href=self_href, options=options):
        return None
    size = max(1, int(max_subscriptions))
    parts = [ids[i:i + size] for i in range(0, len(ids), size)]
    correlation_ids = tuple(str(uuid.uuid4()) for _ in parts)
    job = AsyncJob(
        correlation_id=correlation_ids[0], third_party_id=tp.id, request_path=request_path, request_query=query,
        x_transaction=x_transaction, status="pending", accepted_at=now, due_at=now + max(0.0, delay_s), kind=kind,
        params={"window": window_dict(window), "options": asdict(options), "feed": feed},
    )
    db.add(job)
    db.flush()
    resource_id = str(authorization.id) if authorization is not None else request_path.rstrip("/").rsplit("/", 1)[-1]
    urls = []
    for part, (correlation_id, chunk) in enumerate(zip(correlation_ids, parts, strict=True), start=1):
        url = f"{self_href}?correlationID={correlation_id}"
        urls.append(url)
        db.add(Package(correlation_id=correlation_id, job_id=job.id, third_party_id=tp.id, part=part, feed=feed,
                       resource=resource, resource_id=resource_id, request_path=request_path, url=url,
                       subscription_ids=chunk, status="pending"))
    db.add(notification_for(db, tp, job, urls, now, early_possible=True))
    return Accepted(job.id, correlation_ids)


def notification_for(db: Session, tp: ThirdParty, job: AsyncJob, urls: list[str], now: float, *,
                      early_possible: bool) -> Notification:
    """The BatchList POST owed for a job; it waits for the build unless a fault sends it early (store.faults)."""
    fired = claim_notification_fault(db, client_id=tp.client_id, uri=tp.notification_uri or "", now=now)
    fault = {"id": fired.id, "kind": fired.kind, "params": fired.params} if fired is not None else {}
    status, due = "waiting", job.due_at
    if fault.get("kind") == "notification_lost":
        status = "lost"
    elif fault.get("kind") == "notification_early" and early_possible:
        status, due = "pending", now
    return Notification(
        third_party_id=tp.id, uri=tp.notification_uri or "", body=batch_list_xml(urls).decode(),
        x_transaction=job.x_transaction, status=status, created_at=now, next_attempt_at=due, attempts=[],
        kind="daily" if job.kind == "daily" else "batch", job_id=job.id, fault=fault,
    )


def job_window(job: AsyncJob) -> DataWindow | None:
    return window_from((job.params or {}).get("window"))


def job_options(job: AsyncJob) -> BuildOptions:
    return BuildOptions(**(job.params or {}).get("options", {}))


# --- retrieval ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageFile:
    """What a retrieval streams: the frozen file and the request's ``X-Transaction`` to echo."""

    file: str
    size: int
    x_transaction: str | None


def package_expires_at(package: Package, ttl_days: float) -> float | None:
    """The end of the retrieval window: ``ttl_days`` after the notification (or the build, if never sent)."""
    anchor = package.notified_at if package.notified_at is not None else package.built_at
    return None if anchor is None else anchor + ttl_days * 86400


def find_package(db: Session, *, correlation_id: str, third_party_id: int, resource: str, resource_id: str,
                 now: float, ttl_days: float) -> PackageFile:
    """The package a ``?correlationID=`` GET names (spec 6.4, 6.6).

    Another client's: 403. Unknown, another resource's, not built yet, or expired by the clock: 404.
    """
    try:
        key = str(uuid.UUID(correlation_id.strip()))
    except ValueError:
        raise NotFound() from None
    package = db.execute(select(Package).where(Package.correlation_id == key)).scalar_one_or_none()
    if package is None:
        raise NotFound()
    if package.third_party_id != third_party_id:
        raise Forbidden("The package belongs to another client")
    if package.resource != resource or package.resource_id != resource_id:
        raise NotFound()
    expires = package_expires_at(package, ttl_days)
    if package.status != "built" or package.file is None or expires is None or now >= expires:
        raise NotFound()
    job = db.get(AsyncJob, package.job_id)
    return PackageFile(package.file, int(package.size or 0), job.x_transaction if job is not None else None)
