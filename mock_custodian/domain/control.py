"""Backends of the test-double control surface (spec 1.4): clock, world, logs, jobs, sink, shortcuts.

Shared by the ``/__sim/`` API and the CLI. Each function takes a session (or the database, for
whole-world operations) and plain values, and raises ``ControlError`` for bad input before it
changes anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC, ClockState, check_instant, parse_instant
from mock_custodian.domain.authorizations import (
    ConsentInvalid,
    Duration,
    NewAuthorization,
    consented_groups,
    create_customer_authorization,
    eligible_service_agreements,
)
from mock_custodian.domain.grants import IssuedTokens, exchange_code
from mock_custodian.domain.world import load_world
from mock_custodian.errors import ControlError, ControlNotFound
from mock_custodian.pki import DevPKI
from mock_custodian.scenario.fields import DATA_GROUPS
from mock_custodian.scenario.parse import Scenario, load_scenario_file, parse_scenario
from mock_custodian.store.db import Database, meta_get
from mock_custodian.store.models import (
    AsyncJob,
    Customer,
    Notification,
    RequestLog,
    SimClock,
    SinkPost,
    ThirdParty,
    ThirdPartyCertificate,
)

SINK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_LIST = 5000


def iso(epoch: float | None) -> str | None:
    """An epoch instant as ISO 8601 UTC with ``Z``, to the millisecond."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- clock -----------------------------------------------------------------------------------------


def clock_view(state: ClockState, real: float) -> dict[str, Any]:
    """What ``GET /__sim/clock`` answers: now in UTC, epoch and Pacific, and how it is kept."""
    now = state.now_epoch(real)
    return {
        "now": iso(now),
        "epoch": now,
        "local": dt.datetime.fromtimestamp(now, PACIFIC).isoformat(timespec="seconds"),
        "frozen": state.frozen_at is not None,
        "offset_s": now - real,
    }


def _clock_row(db: Session) -> SimClock:
    row = db.get(SimClock, 1)
    if row is None:
        row = SimClock(id=1, offset_s=0.0, frozen_at=None)
        db.add(row)
        db.flush()
    return row


def advance_clock(db: Session, seconds: float, real: float) -> None:
    """Move simulated time by ``seconds`` in one statement, so concurrent moves add up.

    A move that would leave the simulated calendar (1970-2999) is refused and nothing changes.
    """
    row = _clock_row(db)
    try:
        check_instant(ClockState(row.offset_s or 0.0, row.frozen_at).now_epoch(real) + seconds)
    except ValueError:
        raise ControlError(f"advancing by {seconds:g} seconds would leave the simulated calendar "
                           "(1970-01-01 to 2999-12-31 UTC); set the clock or reset instead") from None
    db.execute(
        update(SimClock)
        .where(SimClock.id == 1)
        .values(
            offset_s=case((SimClock.frozen_at.is_(None), SimClock.offset_s + seconds), else_=SimClock.offset_s),
            frozen_at=SimClock.frozen_at + seconds,  # NULL stays NULL
        )
    )


def set_clock(db: Session, instant: float, real: float) -> None:
    """Make now equal ``instant``; a frozen clock stays frozen there."""
    row = _clock_row(db)
    if row.frozen_at is not None:
        row.frozen_at = instant
    else:
        row.offset_s = instant - real


def freeze_clock(db: Session, real: float, at: float | None = None) -> None:
    """Stop simulated time (at now, or at ``at``): tests then move it only on purpose."""
    row = _clock_row(db)
    row.frozen_at = at if at is not None else ClockState(row.offset_s or 0.0, row.frozen_at).now_epoch(real)


def thaw_clock(db: Session, real: float) -> None:
    """Let a frozen clock run again from where it stands."""
    row = _clock_row(db)
    if row.frozen_at is not None:
        row.offset_s = row.frozen_at - real
        row.frozen_at = None


_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_SHORT = re.compile(r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any, field: str = "by") -> float:
    """Seconds from a number, ``90m`` / ``2h`` / ``1.5d`` / ``1w``, or ISO 8601 ``PT2H`` (``-`` moves back).

    Infinite, NaN or longer-than-the-calendar durations are refused, naming ``field``.
    """
    seconds = _duration_seconds(value)
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION_S:
        raise ControlError(f"{field}: {value!r} is not a usable duration (at most 1,000 years either way)")
    return seconds


MAX_DURATION_S = 1000 * 366 * 86400.0


def _duration_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ControlError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ControlError(f"not a duration: {value!r}")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-").strip()
    try:
        return sign * float(text)
    except ValueError:
        pass
    short = _SHORT.match(text.lower())
    if short:
        return sign * float(short["value"]) * _UNITS[short["unit"]]
    iso_match = _DURATION.match(text.upper())
    if iso_match and text.upper() not in ("P", "PT"):
        parts = {k: float(v) for k, v in iso_match.groupdict().items() if v}
        return sign * (parts.get("days", 0) * 86400 + parts.get("hours", 0) * 3600
                       + parts.get("minutes", 0) * 60 + parts.get("seconds", 0))
    raise ControlError(f"not a duration: {value!r} (use seconds, 90m, 2h, 3d, 1w or ISO 8601 like PT2H)")


def parse_instant_value(value: Any, field: str = "instant") -> float:
    """An instant from epoch seconds or ISO 8601 with a zone, as a clear 400 naming ``field`` when it is neither."""
    if isinstance(value, bool) or value is None:
        raise ControlError(f"{field}: not an instant: {value!r}")
    if isinstance(value, int | float):
        try:
            return check_instant(float(value))
        except (ValueError, OverflowError) as exc:
            raise ControlError(f"{field}: not an instant: {value!r}: {exc}") from None
    try:
        return parse_instant(str(value))
    except ValueError as exc:
        raise ControlError(f"{field}: not an instant: {str(value)[:80]!r}: {exc} (use ISO 8601 with Z or an "
                           "offset, or epoch seconds)") from None


# --- the world --------------------------------------------------------------------------------------


def reload_world(database: Database, pki: DevPKI, scenario: Scenario) -> None:
    """Replace everything (world, tokens, clock, logs, faults, sink) with ``scenario``."""
    load_world(database, scenario, pki)


def current_scenario(database: Database, fallback: Path | None) -> Scenario:
    """The scenario loaded now, read again from its file (reset goes back to it)."""
    with database.session() as db:
        path = meta_get(db, "scenario_path")
    if path and Path(path).exists():
        return load_scenario_file(Path(path))
    return load_scenario_file(fallback)


def scenario_from_upload(text: str, data_dir: Path) -> Scenario:
    """Validate uploaded YAML and keep a copy in the data dir, so a later reset can reload it."""
    scenario = parse_scenario(text, "<uploaded scenario>")
    folder = data_dir / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    target.write_text(text, encoding="utf-8")
    scenario.path = str(target)
    return scenario


# --- request log ------------------------------------------------------------------------------------


def request_log(
    db: Session,
    *,
    since_id: int | None = None,
    client_id: str | None = None,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    surface: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Logged requests, oldest first, with the certificate each presented and what it was answered."""
    query = select(RequestLog).order_by(RequestLog.id)
    if since_id is not None:
        query = query.where(RequestLog.id > since_id)
    if client_id:
        query = query.where(or_(RequestLog.client_id == client_id, RequestLog.claimed_client_id == client_id))
    if method:
        query = query.where(RequestLog.method == method.upper())
    if status is not None:
        query = query.where(RequestLog.status == status)
    if surface:
        query = query.where(RequestLog.surface == surface)
    if path:
        query = query.where(or_(RequestLog.path.like(_like(path), escape="\\"),
                                RequestLog.path.like(_like(path.rstrip("/") + "/"), escape="\\")))
    rows = list(db.execute(query.limit(min(max(limit, 1), MAX_LIST))).scalars())
    certificates = _certificates(db, {r.certificate_sha256 for r in rows if r.certificate_sha256})
    return [
        {
            "id": r.id,
            "at": iso(r.at),
            "surface": r.surface,
            "method": r.method,
            "path": r.path,
            "query": r.query,
            "headers": r.headers,
            "certificate": certificates.get(r.certificate_sha256) if r.certificate_sha256 else None,
            "client_id": r.client_id,
            "claimed_client_id": r.claimed_client_id,
            "status": r.status,
            "error": r.error,
            "reason": r.reason,
        }
        for r in rows
    ]


def _like(glob: str) -> str:
    """A path glob (``*`` any run of characters, ``?`` one) as a SQL LIKE pattern."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _certificates(db: Session, fingerprints: set[str]) -> dict[str, dict[str, Any]]:
    """Fingerprint -> who it is registered to and its subject (None for an unregistered certificate)."""
    out: dict[str, dict[str, Any]] = {f: {"sha256": f, "registered_to": None, "subject": None} for f in fingerprints}
    if not fingerprints:
        return out
    rows = db.execute(
        select(ThirdPartyCertificate.fingerprint_sha256, ThirdPartyCertificate.pem, ThirdParty.client_id)
        .join(ThirdParty, ThirdParty.id == ThirdPartyCertificate.third_party_id)
        .where(ThirdPartyCertificate.fingerprint_sha256.in_(fingerprints))
    ).all()
    for fingerprint, pem, client_id in rows:
        try:
            subject = x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()
        except ValueError:
            subject = None
        out[fingerprint] = {"sha256": fingerprint, "registered_to": client_id, "subject": subject}
    return out


def clear_request_log(db: Session) -> int:
    return db.query(RequestLog).delete() or 0


# --- async jobs and notifications (the engine of spec 6.4-6.5 honours `release`) --------------------


def _client_ids(db: Session) -> dict[int, str]:
    return dict(db.execute(select(ThirdParty.id, ThirdParty.client_id)).all())


def list_jobs(db: Session, status: str | None = None, client_id: str | None = None) -> list[dict[str, Any]]:
    clients = _client_ids(db)
    query = select(AsyncJob).order_by(AsyncJob.id)
    if status:
        query = query.where(AsyncJob.status == status)
    jobs = [j for j in db.execute(query).scalars() if not client_id or clients.get(j.third_party_id) == client_id]
    return [
        {
            "id": j.id,
            "correlation_id": j.correlation_id,
            "client_id": clients.get(j.third_party_id),
            "request_path": j.request_path,
            "request_query": j.request_query,
            "x_transaction": j.x_transaction,
            "kind": getattr(j, "kind", None),
            "status": j.status,
            "accepted_at": iso(j.accepted_at),
            "due_at": iso(j.due_at),
            "built_at": iso(j.built_at),
            "error": getattr(j, "error", None),
        }
        for j in jobs
    ]


def list_notifications(db: Session, client_id: str | None = None) -> list[dict[str, Any]]:
    clients = _client_ids(db)
    rows = db.execute(select(Notification).order_by(Notification.id)).scalars()
    return [
        {
            "id": n.id,
            "client_id": clients.get(n.third_party_id),
            "uri": n.uri,
            "body": n.body,
            "x_transaction": n.x_transaction,
            "kind": getattr(n, "kind", None),
            "status": n.status,
            "created_at": iso(n.created_at),
            "next_attempt_at": iso(n.next_attempt_at),
            "delivered_at": iso(getattr(n, "delivered_at", None)),
            "fault": getattr(n, "fault", None),  # the notification fault honoured, if any (store.faults)
            "attempts": list(n.attempts or []),
        }
        for n in rows
        if not client_id or clients.get(n.third_party_id) == client_id
    ]


def release(db: Session, now: float) -> dict[str, list]:
    """Make every waiting job and notification due now.

    Pending ``AsyncJob`` rows get ``due_at = now`` and pending ``Notification`` rows get
    ``next_attempt_at = now`` (only when later than now); the job runner, which takes whatever is due,
    then builds packages and sends notifications without waiting out ``async_delay_s`` or retry gaps.
    """
    jobs = list(db.execute(select(AsyncJob).where(AsyncJob.status == "pending", AsyncJob.due_at > now)).scalars())
    for job in jobs:
        job.due_at = now
    notes = list(
        db.execute(
            select(Notification).where(Notification.status == "pending", Notification.next_attempt_at > now)
        ).scalars()
    )
    for note in notes:
        note.next_attempt_at = now
    return {"jobs": [j.correlation_id for j in jobs], "notifications": [n.id for n in notes]}


# --- record-only notification sink ------------------------------------------------------------------


def check_sink_name(name: str) -> str:
    if not SINK_NAME.match(name):
        raise ControlError("a sink name is 1-64 letters, digits, '.', '_' or '-'")
    return name


def record_sink_post(db: Session, name: str, *, now: float, surface: str, query: str, headers: dict[str, str],
                     content_type: str | None, body: bytes, certificate_sha256: str | None) -> SinkPost:
    post = SinkPost(sink=check_sink_name(name), received_at=now, surface=surface, query=query, headers=headers,
                    content_type=content_type, body=body.decode("utf-8", errors="replace"),
                    certificate_sha256=certificate_sha256)
    db.add(post)
    db.flush()
    return post


def sink_posts(db: Session, name: str | None = None) -> list[dict[str, Any]]:
    query = select(SinkPost).order_by(SinkPost.id)
    if name is not None:
        query = query.where(SinkPost.sink == check_sink_name(name))
    return [
        {
            "id": p.id,
            "sink": p.sink,
            "received_at": iso(p.received_at),
            "content_type": p.content_type,
            "headers": p.headers,
            "query": p.query,
            "body": p.body,
            "certificate_sha256": p.certificate_sha256,
        }
        for p in db.execute(query).scalars()
    ]


def clear_sink(db: Session, name: str) -> int:
    return db.query(SinkPost).where(SinkPost.sink == check_sink_name(name)).delete() or 0


# --- direct authorization (tests that do not care about consent) ------------------------------------


def third_party(db: Session, client_id: str) -> ThirdParty:
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one_or_none()
    if tp is None:
        raise ControlNotFound(f"no third party with client_id {client_id!r}")
    return tp


def customer_by_ref(db: Session, ref: str) -> Customer:
    customer = db.execute(
        select(Customer).where(or_(Customer.key == ref, Customer.username == ref))
    ).scalar_one_or_none()
    if customer is None:
        raise ControlNotFound(f"no customer with key or user name {ref!r}")
    return customer


def set_notification_uri(db: Session, client_id: str, uri: Any) -> ThirdParty:
    """Point a registration's notification URI elsewhere (e.g. at the sink); PG&E requires https (spec 3.7)."""
    tp = third_party(db, client_id)
    if not isinstance(uri, str) or urlsplit(uri).scheme != "https" or not urlsplit(uri).hostname:
        raise ControlError(f"notification_uri must be an absolute https URL (got {uri!r})")
    tp.notification_uri = uri
    return tp


def customers(db: Session) -> list[dict[str, Any]]:
    """Every customer with accounts and SAs: the keys and numbers tests pass to authorizations."""
    from mock_custodian.domain.world import situations

    described = situations(db)["customers"]
    out = []
    for person in db.execute(select(Customer).order_by(Customer.id)).scalars():
        out.append({
            "key": person.key, "username": person.username, "name": person.name, "class": person.customer_class,
            "situation": described.get(person.key), "email": person.email,
            "phone": person.phone,  # guest access signs in with account number and phone
            "accounts": [{
                "account_number": account.account_number, "linked": account.linked,
                "service_agreements": [{
                    "key": sa.key, "sa_number": sa.sa_number, "usage_point_id": sa.usage_point_id,
                    "commodity": sa.commodity, "status": sa.status, "rate_schedule": sa.rate_schedule,
                    "meters": len(sa.meters),
                } for sa in account.service_agreements],
            } for account in person.accounts],
        })
    return out


def create_authorization(
    db: Session,
    *,
    customer: str,
    client_id: str,
    service_agreements: list[str] | None,
    data_groups: list[str] | None,
    end_date: str | None,
    now: float,
    resource_base: str,
    exchange: bool,
    settings: Any,
) -> tuple[NewAuthorization, IssuedTokens | None]:
    """What a completed consent leaves behind, without the browser, through the consent backend itself.

    The same rules and effects as Submit on the consent page (spec 4.4, 4.14: validation, one live
    authorization per customer and third party, the replaced one's notification, the e-mail), then
    the code exchanged exactly as the token endpoint does unless ``exchange`` is false.
    """
    tp = third_party(db, client_id)
    if tp.user_type not in ("standard", "eef", "self_access"):
        raise ControlError(f"{client_id} is a {tp.user_type} registration: only Standard, EEF and Self-Access "
                           "registrations are authorized by customers (a CCA receives its territory)")
    if tp.status != "approved":
        raise ControlError(f"{client_id}'s registration is {tp.status}, not Approved: customers can authorize only "
                           "approved registrations (rehearse with the OAuth Test harness until then)")
    person = customer_by_ref(db, customer)
    owned = [sa for account in person.accounts for sa in account.service_agreements]
    eligible = {sa.id for sa in eligible_service_agreements(db, person.id, now)}
    if service_agreements is None:
        sa_ids = sorted(eligible)
    else:
        if not isinstance(service_agreements, list) or not service_agreements:
            raise ControlError("service_agreements must be a non-empty list (SA keys, SA numbers or usage point ids)")
        by_ref = {ref: sa for sa in owned for ref in (sa.key, sa.sa_number, sa.usage_point_id)}
        sa_ids = []
        for ref in service_agreements:
            sa = by_ref.get(str(ref))
            if sa is None:
                raise ControlError(f"customer {customer!r} has no service agreement {ref!r} (use its key, SA number "
                                   "or usage point id; GET /__sim/customers lists them)")
            if sa.id not in sa_ids:
                sa_ids.append(sa.id)
    if data_groups is None:
        groups = list(tp.data_groups or [])
    elif not isinstance(data_groups, list) or not all(isinstance(g, str) for g in data_groups):
        raise ControlError("data_groups must be a list of group names")
    else:
        unknown = [g for g in data_groups if g not in DATA_GROUPS]
        if unknown:
            raise ControlError(f"unknown data group(s) {unknown}; PG&E's are {', '.join(DATA_GROUPS)}")
        groups = data_groups
    groups = consented_groups(tp, groups)
    try:
        duration = Duration(dt.date.fromisoformat(end_date) if end_date else None)
    except (TypeError, ValueError):
        raise ControlError(f"end_date must be YYYY-MM-DD (got {end_date!r})") from None
    redirect_uri = tp.redirect_uri if tp.user_type != "self_access" else None
    try:
        created = create_customer_authorization(
            db, tp=tp, customer_id=person.id, data_groups=groups, service_agreement_ids=sa_ids, duration=duration,
            now=now, resource_base=resource_base, redirect_uri=redirect_uri,
        )
    except ConsentInvalid as exc:
        raise ControlError("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
    issued = None
    if exchange and created.code is not None and redirect_uri is not None:
        issued = exchange_code(db, tp, code=created.code, redirect_uri=redirect_uri, endpoint="production", now=now,
                               code_ttl=settings.code_ttl, access_ttl=settings.access_token_ttl,
                               refresh_ttl=settings.refresh_token_ttl)
    return created, issued


# --- credentials export -----------------------------------------------------------------------------


def client_folder(pki: DevPKI, db: Session, client_id: str) -> Path:
    third_party(db, client_id)
    folder = pki.client_folder(client_id)
    if not (folder / "cert.pem").exists():
        raise ControlNotFound(f"no certificate files for {client_id}")
    return folder


def pkcs12_bundle(folder: Path, intermediate: Path, name: str, password: str | None) -> bytes:
    """A PKCS#12 of a client's key, certificate and intermediate (for Java, .NET, Go's pkcs12 readers)."""
    key = serialization.load_pem_private_key((folder / "key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    chain = x509.load_pem_x509_certificates(intermediate.read_bytes())
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, chain, encryption)  # type: ignore[arg-type]
