"""SQLAlchemy models: every piece of simulator state, so workers and restarts agree.

Times are stored as epoch seconds (float) read from the simulated clock, except certificate
validity, which is real time. Names follow PG&E's and ESPI's vocabulary.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class SimMeta(Base):
    """Key/value facts about the loaded world: scenario path and hash, id counters."""

    __tablename__ = "sim_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SimClock(Base):
    """The single row of simulated-clock state shared by every process."""

    __tablename__ = "sim_clock"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_s: Mapped[float] = mapped_column(Float, default=0.0)
    frozen_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ThirdParty(Base):
    """A registration in the Third Party Portal (spec 5.1); client_id = BulkID = ThirdPartyID."""

    __tablename__ = "third_parties"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(32), unique=True)
    client_secret: Mapped[str] = mapped_column(String(64))
    registration_access_token: Mapped[str] = mapped_column(String(64), unique=True)
    application_information_id: Mapped[str] = mapped_column(String(16), unique=True)
    user_type: Mapped[str] = mapped_column(String(16))  # standard | self_access | eef | cca
    status: Mapped[str] = mapped_column(String(16))  # submitted | in_review | accepted | approved | ...
    legal_name: Mapped[str] = mapped_column(String(200))
    # Unique among live registrations (store.registration checks it): an expired or discarded
    # registration's name can be registered again, as PG&E asks.
    display_name: Mapped[str] = mapped_column(String(200), index=True)
    tax_id: Mapped[str] = mapped_column(String(9))
    description: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    business_contact: Mapped[dict] = mapped_column(JSON, default=dict)
    technical_contact: Mapped[dict] = mapped_column(JSON, default=dict)
    redirect_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    portal_uri: Mapped[str | None] = mapped_column(Text, nullable=True)  # thirdPartyUserPortalScreenURI
    scope_selection_uri: Mapped[str | None] = mapped_column(Text, nullable=True)  # legacy "OAuth URL"
    notification_uri: Mapped[str | None] = mapped_column(Text, nullable=True)  # thirdPartyNotifyUri
    notify_daily: Mapped[bool] = mapped_column(Boolean, default=False)
    data_groups: Mapped[list] = mapped_column(JSON, default=list)  # Basic, Account, Billing, Usage, ...
    history_months: Mapped[int] = mapped_column(Integer, default=36)
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    portal_username: Mapped[str | None] = mapped_column(String(100), nullable=True)
    portal_password: Mapped[str | None] = mapped_column(String(255), nullable=True)  # salted hash (store.hashed)
    cca_territory: Mapped[list] = mapped_column(JSON, default=list)  # SA numbers a CCA receives
    # The customer login a Self-Access user signs in with: it picks its own name in the company list.
    self_access_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    milestones: Mapped[dict] = mapped_column(JSON, default=dict)  # name -> epoch completed
    created_at: Mapped[float] = mapped_column(Float)
    client_id_issued_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    accepted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    approved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    terminated_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Third Party Portal lifecycle (spec 5.2): the e-mail link, review, the 90-day deadline.
    security_question: Mapped[str | None] = mapped_column(Text, nullable=True)
    security_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    terms_accepted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    confirmation_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    confirmation_sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    confirmed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    review_due_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: accepted by hand
    expired_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    certificates: Mapped[list[ThirdPartyCertificate]] = relationship(back_populates="third_party")


class ThirdPartyCertificate(Base):
    """A client certificate bound to one registration, matched by SHA-256 over DER (spec 3.3)."""

    __tablename__ = "third_party_certificates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"))
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), index=True)
    pem: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # active | pending | retired
    uploaded_at: Mapped[float] = mapped_column(Float)
    activates_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When a replacement takes over, the certificate it replaces stops working (spec 3.5).
    retires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    warnings: Mapped[list] = mapped_column(JSON, default=list)  # upload-check warnings (clientAuth EKU)

    third_party: Mapped[ThirdParty] = relationship(back_populates="certificates")


class Customer(Base):
    """A PG&E online-account holder (My Energy login), residential or business."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # scenario key
    customer_number: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password: Mapped[str] = mapped_column(String(255))  # salted hash (store.hashed)
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))
    customer_class: Mapped[str] = mapped_column(String(16), default="RES")

    accounts: Mapped[list[Account]] = relationship(back_populates="customer", order_by="Account.id")


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    account_number: Mapped[str] = mapped_column(String(10), unique=True)
    billing_address: Mapped[dict] = mapped_column(JSON, default=dict)
    linked: Mapped[bool] = mapped_column(Boolean, default=True)

    customer: Mapped[Customer] = relationship(back_populates="accounts")
    service_agreements: Mapped[list[ServiceAgreement]] = relationship(
        back_populates="account", order_by="ServiceAgreement.id"
    )


class ServiceAgreement(Base):
    """One electric or gas SA; each authorized SA is one ESPI UsagePoint."""

    __tablename__ = "service_agreements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(64), unique=True)  # scenario key
    sa_number: Mapped[str] = mapped_column(String(10), unique=True)
    usage_point_id: Mapped[str] = mapped_column(String(10), unique=True)
    agreement_key: Mapped[str] = mapped_column(String(10), unique=True)  # CustomerAgreement surrogate
    premise_number: Mapped[str] = mapped_column(String(16))
    commodity: Mapped[str] = mapped_column(String(8))  # electric | gas
    status: Mapped[str] = mapped_column(String(16), default="Active")
    service_start: Mapped[float] = mapped_column(Float)
    service_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    service_address: Mapped[dict] = mapped_column(JSON, default=dict)
    customer_class: Mapped[str] = mapped_column(String(16), default="RES")
    rate_schedule: Mapped[str] = mapped_column(String(32))
    read_cycle: Mapped[str] = mapped_column(String(4))
    profile: Mapped[dict] = mapped_column(JSON)  # meter profile config, interpreted by synth
    dr_programs: Mapped[list] = mapped_column(JSON, default=list)

    account: Mapped[Account] = relationship(back_populates="service_agreements")
    meters: Mapped[list[Meter]] = relationship(back_populates="service_agreement", order_by="Meter.position")


class Meter(Base):
    __tablename__ = "meters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed: a package reads the meters of 100 SAs at a time; unindexed, each read scanned every meter.
    service_agreement_id: Mapped[int] = mapped_column(ForeignKey("service_agreements.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1-based, the n in MeterReadingID
    serial_number: Mapped[str] = mapped_column(String(32))
    meter_type: Mapped[str] = mapped_column(String(32))
    interval_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A meter exchange (spec 4.15) removes the old meter and installs a new one in its position.
    installed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    removed_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    service_agreement: Mapped[ServiceAgreement] = relationship(back_populates="meters")


authorization_service_agreements = Table(
    "authorization_service_agreements",
    Base.metadata,
    Column("authorization_id", ForeignKey("authorizations.id"), primary_key=True),
    Column("service_agreement_id", ForeignKey("service_agreements.id"), primary_key=True),
)


class Authorization(Base):
    """AuthorizationID = SubscriptionID = RetailCustomerID (spec 1.3); never reused.

    kind: ``customer`` (consent), ``paper``, ``bulk`` (client-level entry), ``registration``
    (ApplicationInformation entry), ``cca`` (system authorization per territory account).
    """

    __tablename__ = "authorizations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    data_groups: Mapped[list] = mapped_column(JSON, default=list)
    history_months: Mapped[int] = mapped_column(Integer, default=36)
    created_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # None = indefinite
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    replaced_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)

    service_agreements: Mapped[list[ServiceAgreement]] = relationship(
        secondary=authorization_service_agreements, order_by="ServiceAgreement.usage_point_id"
    )
    third_party: Mapped[ThirdParty] = relationship()
    customer: Mapped[Customer | None] = relationship()


class Token(Base):
    """Every bearer and refresh token; ``kind`` is the PG&E token class.

    kinds: client_access, client_refresh, access, refresh. ``endpoint`` is production or test.
    """

    __tablename__ = "tokens"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the value (store.hashed)
    prefix: Mapped[str | None] = mapped_column(String(12), nullable=True)  # the value's first characters
    kind: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(16), default="production")
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"), index=True)
    authorization_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    issued_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    issued_by_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuthorizationCode(Base):
    """A single-use code bound to client, redirect URI and authorization (spec 4.5)."""

    __tablename__ = "authorization_codes"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the code (store.hashed)
    prefix: Mapped[str | None] = mapped_column(String(12), nullable=True)  # the code's first characters
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"))
    authorization_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(String(16), default="production")
    issued_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AsyncJob(Base):
    """An accepted asynchronous Batch request; its package is frozen when built."""

    __tablename__ = "async_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(36), unique=True)
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"))
    request_path: Mapped[str] = mapped_column(Text)
    request_query: Mapped[str] = mapped_column(Text, default="")
    x_transaction: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | built | failed
    accepted_at: Mapped[float] = mapped_column(Float)
    due_at: Mapped[float] = mapped_column(Float, index=True)
    built_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    package_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # subscription | bulk | customer_info | dr (spec 6.8) | daily (spec 6.5); see jobs/ and store/packages.py
    kind: Mapped[str] = mapped_column(String(16), default="bulk")
    # What the build needs, frozen at acceptance: window, feed style, publication rule, base URLs.
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why a build failed


class Notification(Base):
    """One POST the data custodian owes a third party, with every delivery attempt recorded."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"))
    uri: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    x_transaction: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    created_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float, index=True)
    attempts: Mapped[list] = mapped_column(JSON, default=list)  # [{at, status, error}]
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # batch | daily (packages of job_id) | authorization (spec 6.5 triggers); status also waiting (package
    # not built yet) and lost (an injected notification_lost fault).
    kind: Mapped[str] = mapped_column(String(16), default="authorization")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("async_jobs.id"), nullable=True, index=True)
    # The notification fault honoured ({} none); None until the sender has asked (store.faults).
    fault: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Package(Base):
    """One prepackaged result named by a ``correlationID`` (spec 6.4): frozen bytes in a file, 5-day life.

    A request over ``package_max_subscriptions`` subscriptions is split into several packages of one job.
    """

    __tablename__ = "packages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(36), unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("async_jobs.id"), index=True)
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"))
    part: Mapped[int] = mapped_column(Integer, default=1)
    feed: Mapped[str] = mapped_column(String(16))  # usage | customer | dr
    resource: Mapped[str] = mapped_column(String(32))  # Subscription | Bulk | BulkRetailCustomerInfo | ...
    resource_id: Mapped[str] = mapped_column(String(32))  # SubscriptionID or BulkID
    request_path: Mapped[str] = mapped_column(Text)  # the batch URL's path: the feed's self link (spec 7.1)
    url: Mapped[str] = mapped_column(Text)  # the BatchList resources entry, with ?correlationID=
    subscription_ids: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | built | expired
    file: Mapped[str | None] = mapped_column(Text, nullable=True)  # name under <data_dir>/packages
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    built_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # the 5 days run from here
    # Each package is a unit of work any job worker may claim, so one request's packages build in parallel.
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class DailyPackageSchedule(Base):
    """Per third party, the newest ``daily_package_time`` instant already handled (spec 6.5 daily packages)."""

    __tablename__ = "daily_package_schedule"
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"), primary_key=True)
    last_package_at: Mapped[float] = mapped_column(Float)


class DataChange(Base):
    """A declared change to one SA's published interval data (spec 7.13): a gap later estimated and
    finalised, or a correction (bill revisions are corrections over a billing period). The served values
    are computed from these declarations and the clock (``synth.lifecycle``), never stored."""

    __tablename__ = "data_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_agreement_id: Mapped[int] = mapped_column(ForeignKey("service_agreements.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # gap | correction | bill_revision
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    meter: Mapped[int | None] = mapped_column(Integer, nullable=True)
    flow_direction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    declared_at: Mapped[float] = mapped_column(Float)


class AccountEvent(Base):
    """A scheduled account or SA event of the scenario timeline or control API (spec 4.15), applied once
    when the simulated clock reaches ``at``."""

    __tablename__ = "account_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float, index=True)
    service_agreement_id: Mapped[int | None] = mapped_column(ForeignKey("service_agreements.id"), nullable=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    applied_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[dict] = mapped_column(JSON, default=dict)


class OutboxEmail(Base):
    """Every e-mail PG&E would send (spec 1.4): confirmations, notices, certificate updates."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    to: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[float] = mapped_column(Float)


class CustomerSession(Base):
    """A customer's signed-in browser session on sharemydata.pge.com (My Energy or Guest Access).

    Kept in the database so every gunicorn worker honours it; ``guest_account_id`` limits a guest to the
    one account it proved, and ``csrf_token`` guards the session's form posts.
    """

    __tablename__ = "customer_sessions"
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie value
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    guest_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class PortalSession(Base):
    """A Third Party Portal sign-in (registration staff), in the database so every worker honours it."""

    __tablename__ = "portal_sessions"
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie value
    third_party_id: Mapped[int] = mapped_column(ForeignKey("third_parties.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class RequestLog(Base):
    """What a client sent and what it got back: for tests that verify their own requests."""

    __tablename__ = "request_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float)  # simulated time
    surface: Mapped[str] = mapped_column(String(8))  # api | portal
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    query: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # authenticated
    claimed_client_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # from Basic
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)  # secrets redacted
    error: Mapped[str | None] = mapped_column(String(64), nullable=True)  # PG&E error code returned
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # the mock's precise diagnosis
    # OAuth parameters as received, by place (query, form, json), secrets shortened: the rehearsal
    # pages show them and tell a test step (client_credentials or code exchange) from another.
    parameters: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    worker_pid: Mapped[int] = mapped_column(Integer)
    # For the integration report (mock_custodian/domain/report.py): PG&E paces on wall-clock time, not the
    # simulated clock; tokens are told apart by a short hash, never stored whole.
    real_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    token_fingerprint: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    token_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # tokens.kind of that token
    retry_after: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the Retry-After answered
    chain_length: Mapped[int | None] = mapped_column(Integer, nullable=True)  # certificates the client sent
    # The report starts a few rules from refused answers (403, 400): an index on the status.
    __table_args__ = (Index("ix_request_log_status", "status"),)


class RateCounter(Base):
    """Rolling and daily request counters for the rate limits of spec 6.7."""

    __tablename__ = "rate_counters"
    __table_args__ = (UniqueConstraint("scope", "subject", "window_start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # vendor | client_minute | client_day
    subject: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, default=0)
    # vendor rows: the GCRA "theoretical arrival time" (epoch) of the vendor's next request
    level: Mapped[float] = mapped_column(Float, default=0.0)


class Fault(Base):
    """An injected failure (scaffolding, spec 1.4), shared by every worker; see ``store/faults.py``.

    Request kinds fire on matching inbound requests; ``notification_*`` kinds are claimed by the
    notification sender (``store.faults.claim_notification_fault``) for a matching delivery.
    """

    __tablename__ = "sim_faults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str | None] = mapped_column(Text, nullable=True)  # glob over request path / notify URI
    method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    surface: Mapped[str | None] = mapped_column(String(8), nullable=True)  # api | portal
    times: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None = every match
    probability: Mapped[float] = mapped_column(Float, default=1.0)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    matched: Mapped[int] = mapped_column(Integer, default=0)  # matching requests seen while active
    fired: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    last_fired_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class SinkPost(Base):
    """A POST received by the record-only notification sink ``/__sim/sink/{name}``."""

    __tablename__ = "sim_sink_posts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sink: Mapped[str] = mapped_column(String(64), index=True)
    received_at: Mapped[float] = mapped_column(Float)  # simulated time
    surface: Mapped[str] = mapped_column(String(8))
    query: Mapped[str] = mapped_column(Text, default="")
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    content_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    body: Mapped[str] = mapped_column(Text, default="")
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


Index("ix_request_log_at", RequestLog.at)


class RecordedChannel(Base):
    """One channel of replayed meter data (issue 19), stored once as compact compressed arrays.

    Named by the recording's content digest, which a recorded SA's profile carries.
    """

    __tablename__ = "recorded_channels"
    __table_args__ = (UniqueConstraint("digest", "meter", "flow_direction"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    meter: Mapped[int] = mapped_column(Integer)
    flow_direction: Mapped[int] = mapped_column(Integer)
    interval_length: Mapped[int] = mapped_column(Integer)
    readings: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
