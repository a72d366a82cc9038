"""Third-party registrations, their certificates and client authentication (spec 3, 4.8, 5)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from mock_custodian.errors import InvalidClient
from mock_custodian.store.models import ThirdParty, ThirdPartyCertificate
from mock_custodian.vocabulary import CREDENTIALED, RegistrationStatus

# Registration states whose credentials exist and work at some token endpoint.


def owners_of_fingerprint(db: Session, fingerprint: str, now: float) -> list[int]:
    """Ids of registrations for which this certificate is the one in force now (spec 3.3, 3.5)."""
    rows = db.execute(
        select(ThirdPartyCertificate.third_party_id, ThirdPartyCertificate.status,
               ThirdPartyCertificate.activates_at, ThirdPartyCertificate.retires_at)
        .where(ThirdPartyCertificate.fingerprint_sha256 == fingerprint)
        .where(or_(ThirdPartyCertificate.status == "active", ThirdPartyCertificate.status == "pending"))
    ).all()
    owners = []
    for third_party_id, status, activates_at, retires_at in rows:
        if retires_at is not None and retires_at <= now:
            continue  # its replacement has taken over: no overlap (spec 3.5)
        if status == "active" or (activates_at is not None and activates_at <= now):
            owners.append(third_party_id)
    return owners


# The API guard's lookup on every request (issue 17): plain SQL built once, the registration's columns
# the rate count needs joined in, in certificate order (as owners_of_fingerprint returns them).
_OWNERS = text(
    "SELECT c.third_party_id, c.status, c.activates_at, c.retires_at, t.tax_id, t.client_id, t.status "
    "FROM third_party_certificates c JOIN third_parties t ON t.id = c.third_party_id "
    "WHERE c.fingerprint_sha256 = :fingerprint AND c.status IN ('active', 'pending') ORDER BY c.id"
)


@dataclass(frozen=True)
class CertificateOwner:
    """A registration whose certificate is in force now, with what the rate count and deadlines need."""

    id: int
    tax_id: str
    client_id: str
    status: str


def certificate_owners(db: Session, fingerprint: str, now: float) -> list[CertificateOwner]:
    """:func:`owners_of_fingerprint` with each owner's Tax ID, client_id and status, in one statement."""
    owners = []
    for third_party_id, status, activates_at, retires_at, tax_id, client_id, tp_status in db.execute(
            _OWNERS, {"fingerprint": fingerprint}):
        if retires_at is not None and retires_at <= now:
            continue  # its replacement has taken over: no overlap (spec 3.5)
        if status == "active" or (activates_at is not None and activates_at <= now):
            owners.append(CertificateOwner(third_party_id, tax_id, client_id, tp_status))
    return owners


def authenticate_client(db: Session, client_id: str, client_secret: str) -> ThirdParty:
    """HTTP Basic client authentication: 401 ``invalid_client`` for anything wrong."""
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one_or_none()
    if tp is None:
        raise InvalidClient(reason=f"the Basic header's client_id {client_id!r} is not a registered client_id")
    if not hmac.compare_digest(tp.client_secret.encode(), client_secret.encode()):
        raise InvalidClient(reason=f"the Basic header's client_secret is not client {client_id}'s client_secret")
    if tp.status in (RegistrationStatus.SUBMITTED, RegistrationStatus.IN_REVIEW):
        raise InvalidClient(reason=f"client {client_id}'s registration is not accepted yet ({tp.status}); "
                                   "its credentials work from acceptance")
    if tp.status not in CREDENTIALED:
        raise InvalidClient(reason=f"client {client_id}'s registration is {tp.status}; its credentials no longer work")
    return tp
