"""The outbox (spec 1.4): every e-mail PG&E would send, kept instead of sent.

An e-mail dated in the future (a review delay, a certificate activating later) stays invisible
until the simulated clock reaches it, so no background job is needed to "send" it.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mock_custodian.store.models import OutboxEmail


def send_email(db: Session, to: str, subject: str, body: str, sent_at: float) -> OutboxEmail:
    """Queue an e-mail as sent at ``sent_at`` (simulated time; may lie in the future)."""
    email = OutboxEmail(to=to, subject=subject, body=body, sent_at=sent_at)
    db.add(email)
    db.flush()
    return email


def delivered_emails(db: Session, now: float, to: str | None = None, limit: int = 200) -> list[OutboxEmail]:
    """E-mails sent by ``now``, newest first; ``to`` filters by recipient (case-insensitive)."""
    query = select(OutboxEmail).where(OutboxEmail.sent_at <= now)
    if to:
        query = query.where(func.lower(OutboxEmail.to) == to.strip().lower())
    query = query.order_by(OutboxEmail.sent_at.desc(), OutboxEmail.id.desc()).limit(max(1, min(limit, 1000)))
    return list(db.execute(query).scalars())


def cancel_future_emails(db: Session, now: float, body_contains: str) -> int:
    """Withdraw not-yet-sent e-mails whose body holds a marker (e.g. a superseded certificate's fingerprint)."""
    result = db.execute(
        delete(OutboxEmail).where(OutboxEmail.sent_at > now).where(OutboxEmail.body.contains(body_contains))
    )
    return result.rowcount or 0


def email_as_dict(email: OutboxEmail) -> dict[str, object]:
    return {"id": email.id, "to": email.to, "subject": email.subject, "body": email.body, "sent_at": email.sent_at}
