"""A registration's client certificates (spec 3.3-3.5, 5.1): upload checks, CSR signing, replacement, state.

An uploaded certificate is checked against the configured trust anchors; a CSR is signed by the dev
PKI; a replacement activates after ``cert_activation_delay`` while the old one keeps working.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mock_custodian.clock import local_time
from mock_custodian.domain.certificate_checks import (
    CertificateRefused,
    CheckedCertificate,
    check_certificate_upload,
)
from mock_custodian.domain.outbox import cancel_future_emails, send_email
from mock_custodian.domain.registration_form import PortalPolicy, RegistrationInvalid, contact_email, contact_name
from mock_custodian.pki import DevPKI
from mock_custodian.store.models import ThirdParty, ThirdPartyCertificate


# --------------------------------------------------------------------------------------------- certificates
def check_certificate(pem: str, policy: PortalPolicy) -> CheckedCertificate:
    return check_certificate_upload(pem, policy.anchors, allow_self_signed=policy.allow_self_signed,
                                    client_auth_eku_policy=policy.client_auth_eku_policy)


def issue_certificate_for_csr(pki: DevPKI, csr_pem: str) -> str:
    """The dev CA's client certificate for a developer's CSR, as a chain PEM (leaf + intermediate)."""
    try:
        _, chain = pki.sign_csr(csr_pem.encode())
    except ValueError as exc:
        raise RegistrationInvalid({"csr": str(exc)}) from None
    return chain.decode()


def certificate_row(tp: ThirdParty, checked: CheckedCertificate, now: float, activates_at: float,
                     status: str) -> ThirdPartyCertificate:
    return ThirdPartyCertificate(
        third_party_id=tp.id, fingerprint_sha256=checked.fingerprint_sha256, pem=checked.pem, status=status,
        uploaded_at=now, activates_at=activates_at, warnings=list(checked.warnings),
    )


def certificate_state(cert: ThirdPartyCertificate, now: float) -> str:
    """active | pending | retired, as of ``now`` (a pending one becomes active at ``activates_at``)."""
    if cert.status == "retired" or (cert.retires_at is not None and cert.retires_at <= now):
        return "retired"
    if cert.status == "pending" and (cert.activates_at is None or cert.activates_at > now):
        return "pending"
    return "active"


def replace_certificate(db: Session, tp: ThirdParty, pem: str, now: float,
                        policy: PortalPolicy) -> ThirdPartyCertificate:
    """Manage Registration > Edit > SSL Certificate Information > Update (spec 3.5).

    With ``cert_activation_delay`` 0 the new certificate works at once and the old one stops; otherwise
    the old one works until the new one activates, with no overlap. A second upload while one is
    pending replaces the pending one.
    """
    try:
        checked = check_certificate(pem, policy)
    except CertificateRefused as exc:
        raise RegistrationInvalid({"certificate": str(exc)}) from None
    activates_at = now + max(0, policy.cert_activation_delay)
    for cert in certificates_of(db, tp):
        state = certificate_state(cert, now)
        if state == "pending":
            cert.status = "retired"
            cert.retires_at = now
            cancel_future_emails(db, now, cert.fingerprint_sha256)
        elif state == "active":
            cert.retires_at = activates_at
            if activates_at <= now:
                cert.status = "retired"
    if activates_at <= now:
        new = certificate_row(tp, checked, now, now, "active")
    else:
        new = certificate_row(tp, checked, now, activates_at, "pending")
    db.add(new)
    db.flush()
    contact = contact_email(tp)
    if contact:
        send_email(
            db, contact, "Share My Data: SSL certificate update complete",
            f"Hello {contact_name(tp)},\n\nThe SSL certificate you uploaded for {tp.display_name} is now in "
            f"use for API calls (SHA-256 fingerprint {checked.fingerprint_sha256}, subject {checked.subject}).\n"
            "From now on, calls must present this certificate; the previous one is refused.\n\n"
            "PG&E Share My Data (mock-custodian)\n",
            activates_at,
        )
    return new


def certificates_of(db: Session, tp: ThirdParty) -> list[ThirdPartyCertificate]:
    return list(db.execute(select(ThirdPartyCertificate).where(ThirdPartyCertificate.third_party_id == tp.id)
                           .order_by(ThirdPartyCertificate.id)).scalars())


def describe_unregistered_certificate(db: Session, fingerprint: str, subject: str | None, now: float) -> str:
    """Why a verified certificate is not accepted: replaced, not yet active, or never registered."""
    rows = list(db.execute(select(ThirdPartyCertificate, ThirdParty.client_id)
                           .join(ThirdParty, ThirdParty.id == ThirdPartyCertificate.third_party_id)
                           .where(ThirdPartyCertificate.fingerprint_sha256 == fingerprint)))
    short = fingerprint[:16]
    for cert, client_id in rows:
        state = certificate_state(cert, now)
        if state == "pending":
            return (f"this certificate (SHA-256 {short}...) is client {client_id}'s replacement certificate and "
                    f"is not active until {local_time(cert.activates_at)}; keep presenting the current one until "
                    "then")
        if state == "retired":
            return (f"this certificate (SHA-256 {short}...) was replaced for client {client_id} at "
                    f"{local_time(cert.retires_at)}; present the certificate registered now")
    return (f"the certificate (SHA-256 {short}..., subject {subject or 'unknown'}) chains to a trusted CA but is "
            "not registered to any client; present the certificate you uploaded in the Third Party Portal "
            "(matching is by SHA-256 fingerprint, not by subject)")
