"""Third-party registrations, their certificates and client authentication (spec 3, 4.8, 5)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mock_custodian.errors import InvalidClient
from mock_custodian.store.db import Raw, Sql, raw_of
from mock_custodian.store.models import ThirdPartyCertificate
from mock_custodian.vocabulary import CREDENTIALED, RegistrationStatus

CONFIRMATION_WINDOW_S = 5 * 86400  # spec 5.2: the e-mail link must be used within 5 days
TESTING_WINDOW_S = 90 * 86400  # spec 5.2: required tests within 90 days of acceptance

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


# The API guard's lookup on every request (issue 17): plain SQL built once, run on the driver connection,
# the registration's columns the rate count and deadlines need joined in, in certificate order (as
# owners_of_fingerprint returns them).
_OWNERS = Sql(
    "SELECT c.third_party_id, c.status, c.activates_at, c.retires_at, t.tax_id, t.client_id, t.status, "
    "t.created_at, t.confirmation_sent_at, t.review_due_at, t.accepted_at "
    "FROM third_party_certificates c JOIN third_parties t ON t.id = c.third_party_id "
    "WHERE c.fingerprint_sha256 = :fingerprint AND c.status IN ('active', 'pending') ORDER BY c.id"
)


@dataclass(frozen=True)
class CertificateOwner:
    """A registration whose certificate is in force now, with what the rate count and deadlines need.

    ``deadline``: when the registration's status moves on by the clock alone (spec 5.2), None if never.
    """

    id: int
    tax_id: str
    client_id: str
    status: str
    deadline: float | None = None


def certificate_owners(db: Session | Raw, fingerprint: str, now: float) -> list[CertificateOwner]:
    """:func:`owners_of_fingerprint` with each owner's Tax ID, client_id, status and next deadline, in one statement."""
    owners = []
    for row in raw_of(db).all(_OWNERS, {"fingerprint": fingerprint}):
        owner = certificate_owner(row, now)
        if owner is not None:
            owners.append(owner)
    return owners


def certificate_owner(row: tuple, now: float) -> CertificateOwner | None:
    """One row of ``_OWNERS``'s columns: its registration if the certificate is in force at ``now``."""
    (third_party_id, status, activates_at, retires_at, tax_id, client_id, tp_status, created_at, sent_at,
     review_due_at, accepted_at) = row
    if retires_at is not None and retires_at <= now:
        return None  # its replacement has taken over: no overlap (spec 3.5)
    if status == "active" or (activates_at is not None and activates_at <= now):
        return CertificateOwner(third_party_id, tax_id, client_id, tp_status,
                                status_deadline(tp_status, created_at, sent_at, review_due_at, accepted_at))
    return None


def status_deadline(status: str, created_at: float, confirmation_sent_at: float | None,
                    review_due_at: float | None, accepted_at: float | None) -> float | None:
    """When a registration in ``status`` moves on by the clock alone (spec 5.2: the e-mail link's 5 days,
    the review, the 90-day testing window); None: never. The first test of ``advance_lifecycle``."""
    if status == "submitted":
        return (confirmation_sent_at or created_at) + CONFIRMATION_WINDOW_S
    if status == "in_review":
        return review_due_at
    if status == "accepted" and accepted_at is not None:
        return accepted_at + TESTING_WINDOW_S
    return None


@dataclass(frozen=True)
class Client:
    """An authenticated client: the registration's id, client_id and status (load the row for more)."""

    id: int
    client_id: str
    status: str


_CLIENT = Sql("SELECT id, client_id, client_secret, status FROM third_parties WHERE client_id = :client_id")


def authenticated_client(db: Session | Raw, client_id: str, client_secret: str) -> Client:
    """HTTP Basic client authentication: 401 ``invalid_client`` for anything wrong.

    One prebuilt read (every token call makes it, issue 17).
    """
    row = raw_of(db).one(_CLIENT, {"client_id": client_id})
    if row is None:
        raise InvalidClient(reason=f"the Basic header's client_id {client_id!r} is not a registered client_id")
    third_party_id, stored_id, stored_secret, status = row
    if not hmac.compare_digest(stored_secret.encode(), client_secret.encode()):
        raise InvalidClient(reason=f"the Basic header's client_secret is not client {client_id}'s client_secret")
    if status in (RegistrationStatus.SUBMITTED, RegistrationStatus.IN_REVIEW):
        raise InvalidClient(reason=f"client {client_id}'s registration is not accepted yet ({status}); "
                                   "its credentials work from acceptance")
    if status not in CREDENTIALED:
        raise InvalidClient(reason=f"client {client_id}'s registration is {status}; its credentials no longer work")
    return Client(third_party_id, stored_id, status)
