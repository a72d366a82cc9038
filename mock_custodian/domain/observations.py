"""What a test reads back from the simulator (spec 1.4): the request log, async jobs, notifications, the sink.

Shared by the ``/__sim/`` API, the CLI and the console; filters are checked and bounded before any query.
"""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mock_custodian.clock import iso
from mock_custodian.errors import ControlError
from mock_custodian.store.models import (
    AsyncJob,
    Notification,
    RequestLog,
    SinkPost,
    ThirdParty,
    ThirdPartyCertificate,
)

MAX_LIST = 5000


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


SINK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


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
