"""Third-party registrations, their certificates and client authentication (spec 3, 4.8, 5)."""

from __future__ import annotations

import hmac

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..errors import InvalidClient
from .models import ThirdParty, ThirdPartyCertificate

# Registration states whose credentials exist and work at some token endpoint.
CREDENTIALED = ("accepted", "approved", "on_hold")


def owners_of_fingerprint(db: Session, fingerprint: str, now: float) -> list[int]:
    """Ids of registrations for which this certificate is the one in force now (spec 3.3, 3.5)."""
    rows = db.execute(
        select(ThirdPartyCertificate.third_party_id, ThirdPartyCertificate.status,
               ThirdPartyCertificate.activates_at)
        .where(ThirdPartyCertificate.fingerprint_sha256 == fingerprint)
        .where(or_(ThirdPartyCertificate.status == "active", ThirdPartyCertificate.status == "pending"))
    ).all()
    owners = []
    for third_party_id, status, activates_at in rows:
        if status == "active" or (activates_at is not None and activates_at <= now):
            owners.append(third_party_id)
    return owners


def authenticate_client(db: Session, client_id: str, client_secret: str) -> ThirdParty:
    """HTTP Basic client authentication: 401 ``invalid_client`` for anything wrong."""
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one_or_none()
    if tp is None or not hmac.compare_digest(tp.client_secret.encode(), client_secret.encode()):
        raise InvalidClient()
    if tp.status not in CREDENTIALED:
        raise InvalidClient()
    return tp
