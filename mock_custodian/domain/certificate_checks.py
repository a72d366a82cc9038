"""The checks PG&E runs when a third party uploads its SSL certificate (spec 3.2), each with a clear reason.

A refusal names what is wrong and what to do about it; the clientAuth extended-key-usage check is a
warning or a refusal by setting (public CAs stopped issuing clientAuth certificates in 2026).
Validity is judged by real time, like every certificate question in the simulator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from OpenSSL import crypto

from mock_custodian.pki import DevPKI, cert_pem, fingerprint_sha256

MIN_RSA_BITS = 2048
SHA2 = (hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)
EKU_POLICIES = ("warn", "refuse")


class CertificateRefused(ValueError):
    """An upload PG&E would refuse; the message is the reason shown to the developer."""


@dataclass(frozen=True)
class CheckedCertificate:
    """An accepted upload: the leaf (what is registered and matched by fingerprint) and any warnings."""

    leaf: x509.Certificate
    pem: str
    fingerprint_sha256: str
    subject: str
    not_after: dt.datetime
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrustAnchors:
    """Roots an upload must chain to, and intermediates the portal knows (as a CA's AIA would supply)."""

    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]

    @classmethod
    def for_settings(cls, trusted_ca_bundle: Path | None, pki: DevPKI) -> TrustAnchors:
        """``trusted_ca_bundle`` (default: the dev root) plus the dev PKI's issuing intermediate."""
        roots_path = Path(trusted_ca_bundle) if trusted_ca_bundle else pki.ca_bundle
        roots = x509.load_pem_x509_certificates(roots_path.read_bytes())
        intermediates = []
        if pki.intermediate_cert_path.exists():
            intermediates = x509.load_pem_x509_certificates(pki.intermediate_cert_path.read_bytes())
        return cls(roots, intermediates)


def _key_kind(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"elliptic-curve ({key.curve.name})"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA"
    return type(key).__name__


def _when(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def parse_upload(data: bytes | str) -> list[x509.Certificate]:
    """The certificates of an upload, leaf first; refuses keys, CSRs and anything that is not PEM."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if "PRIVATE KEY-----" in text:
        raise CertificateRefused(
            "the upload contains a private key; upload only the certificate (PEM), never your private key"
        )
    if "-----BEGIN CERTIFICATE REQUEST-----" in text and "-----BEGIN CERTIFICATE-----" not in text:
        raise CertificateRefused(
            "this is a certificate signing request (CSR), not a certificate; have a CA sign it "
            "(here: 'Issue a dev-CA certificate for my CSR') and upload the certificate"
        )
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise CertificateRefused(
            "no PEM certificate found; upload the certificate as PEM text starting with "
            "-----BEGIN CERTIFICATE----- (convert DER with: openssl x509 -inform der -in cert.cer)"
        )
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise CertificateRefused(f"the PEM certificate could not be read: {exc}") from None
    if not certs:
        raise CertificateRefused("no PEM certificate found in the upload")
    return certs


def check_certificate_upload(
    data: bytes | str,
    anchors: TrustAnchors,
    *,
    allow_self_signed: bool = False,
    client_auth_eku_policy: str = "warn",
    now: dt.datetime | None = None,
) -> CheckedCertificate:
    """Run spec 3.2's checks on an uploaded PEM (leaf first, optionally followed by its intermediates).

    Raises :class:`CertificateRefused` with the first failing rule's reason.
    """
    if client_auth_eku_policy not in EKU_POLICIES:
        raise ValueError(f"client_auth_eku_policy must be one of {', '.join(EKU_POLICIES)}")
    certs = parse_upload(data)
    leaf, extras = certs[0], certs[1:]
    moment = now or dt.datetime.now(dt.UTC)  # certificate validity is real time, never the simulated clock

    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca and leaf.issuer != leaf.subject:
        raise CertificateRefused(
            "the first certificate in the upload is a CA certificate; put your client certificate first, "
            "followed by its intermediates"
        )

    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateRefused(
            f"the certificate holds an {_key_kind(key)} key; PG&E requires an RSA key of at least {MIN_RSA_BITS} bits"
        )
    if key.key_size < MIN_RSA_BITS:
        raise CertificateRefused(
            f"the certificate's RSA key is {key.key_size} bits; PG&E requires at least {MIN_RSA_BITS} bits"
        )

    algorithm = leaf.signature_hash_algorithm
    if not isinstance(algorithm, SHA2):
        name = algorithm.name.upper() if algorithm is not None else "an unknown algorithm"
        raise CertificateRefused(
            f"the certificate is signed with {name}; PG&E requires a SHA-2 signature (SHA-256 or stronger)"
        )

    if leaf.not_valid_after_utc < moment:
        raise CertificateRefused(f"the certificate expired on {_when(leaf.not_valid_after_utc)}")
    if leaf.not_valid_before_utc > moment:
        raise CertificateRefused(f"the certificate is not valid until {_when(leaf.not_valid_before_utc)}")

    self_signed = _self_signed(leaf)
    if self_signed and not allow_self_signed:
        raise CertificateRefused(
            "self-signed certificates are refused; use a certificate issued by a CA "
            "(here: the dev CA, e.g. 'Issue a dev-CA certificate for my CSR')"
        )
    if not self_signed:
        _check_chain(leaf, extras, anchors, moment)

    warnings = []
    eku_problem = _client_auth_problem(leaf)
    if eku_problem:
        if client_auth_eku_policy == "refuse":
            raise CertificateRefused(eku_problem)
        warnings.append(eku_problem)
    return CheckedCertificate(
        leaf=leaf,
        pem=cert_pem(leaf).decode(),
        fingerprint_sha256=fingerprint_sha256(leaf),
        subject=leaf.subject.rfc4514_string(),
        not_after=leaf.not_valid_after_utc,
        warnings=warnings,
    )


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # noqa: BLE001 - a signature that does not verify means "not self-signed"
        return False
    return True


def _check_chain(leaf: x509.Certificate, extras: list[x509.Certificate], anchors: TrustAnchors,
                 moment: dt.datetime) -> None:
    store = crypto.X509Store()
    for root in anchors.roots:
        store.add_cert(crypto.X509.from_cryptography(root))
    store.set_time(moment)
    untrusted = [crypto.X509.from_cryptography(c) for c in [*extras, *anchors.intermediates]]
    context = crypto.X509StoreContext(store, crypto.X509.from_cryptography(leaf), chain=untrusted)
    try:
        context.verify_certificate()
    except crypto.X509StoreContextError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        issuer = leaf.issuer.rfc4514_string()
        if "unable to get local issuer" in message or "unable to get issuer" in message:
            raise CertificateRefused(
                f"the certificate does not chain to a trusted CA (its issuer is {issuer}); if an intermediate "
                "issued it, upload the intermediate after the certificate (PEM, leaf first)"
            ) from None
        if "expired" in message:
            raise CertificateRefused(f"a certificate in the chain above {issuer} has expired") from None
        raise CertificateRefused(f"the certificate chain does not verify: {message}") from None


def _client_auth_problem(cert: x509.Certificate) -> str | None:
    """A warning text when the certificate's extended key usage leaves out TLS client authentication."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None  # no EKU at all: usable for any purpose (RFC 5280)
    if ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
        return None
    listed = ", ".join(getattr(u, "_name", None) or u.dotted_string for u in usages) or "nothing"
    return (
        f"the certificate's extended key usage lists {listed} but not clientAuth (TLS client authentication); "
        "public CAs stopped issuing clientAuth certificates in 2026, and a TLS server that checks key usage "
        "refuses such a certificate for mutual TLS. Ask your CA for a client-authentication certificate"
    )
