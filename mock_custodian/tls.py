"""Client-certificate verification and the mutual-TLS guard of spec section 3.

The TLS layer requests a client certificate and accepts whatever arrives; verification happens
here, in the application, so an untrusted, expired, chainless or unregistered certificate is
answered with PG&E's HTTP 400 ``Invalid Certificate`` instead of a handshake abort. Certificate
validity always uses real time, never the simulated clock.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import crypto

ENVIRON_KEY = "mock_custodian.client_certificate"
SURFACE_KEY = "mock_custodian.surface"


@dataclass(frozen=True)
class PeerCertificate:
    """What the TLS layer (or a trusted proxy) learned about the client's certificate."""

    present: bool
    verified: bool = False
    fingerprint_sha256: str | None = None
    subject: str | None = None
    error: str | None = None
    source: str = "tls"  # tls | proxy-header
    chain_length: int | None = None  # certificates the client sent (1: the leaf without its chain)

    @property
    def usable(self) -> bool:
        return self.present and self.verified


NO_CERTIFICATE = PeerCertificate(
    present=False,
    error="no client certificate was presented; configure your HTTP client with your registered certificate, "
    "its intermediate and its key (e.g. requests' cert=(chain.pem, key.pem), curl --cert chain.pem --key key.pem)",
)


class ClientCertificateVerifier:
    """Verifies a presented chain against the trust bundle, as PG&E's gateway would."""

    def __init__(self, trusted_pem: bytes, allow_self_signed: bool = False) -> None:
        self._roots = x509.load_pem_x509_certificates(trusted_pem)
        self._store = crypto.X509Store()
        for root in self._roots:
            self._store.add_cert(crypto.X509.from_cryptography(root))
        self.allow_self_signed = allow_self_signed

    def verify(self, leaf: x509.Certificate, chain: list[x509.Certificate]) -> PeerCertificate:
        fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
        subject = leaf.subject.rfc4514_string()
        if self.allow_self_signed and leaf.issuer == leaf.subject:
            now = dt.datetime.now(dt.UTC)
            if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
                return PeerCertificate(True, False, fingerprint, subject, "certificate has expired or is not yet valid")
            return PeerCertificate(True, True, fingerprint, subject)
        intermediates = [crypto.X509.from_cryptography(c) for c in chain if c != leaf]
        context = crypto.X509StoreContext(self._store, crypto.X509.from_cryptography(leaf), chain=intermediates)
        try:
            context.verify_certificate()
        except crypto.X509StoreContextError as exc:
            reason = _reason(exc)
            if not intermediates and "unable to get local issuer certificate" in str(exc):
                reason = (f"the certificate was sent without its intermediate: its issuer "
                          f"{leaf.issuer.rfc4514_string()} is not a trusted root, and the client sent no other "
                          "certificate. Present the chain file (leaf first, then the intermediate)")
            return PeerCertificate(True, False, fingerprint, subject, reason, chain_length=1 + len(intermediates))
        return PeerCertificate(True, True, fingerprint, subject, chain_length=1 + len(intermediates))


_HINTS = {
    "unable to get local issuer certificate": (
        "the certificate does not chain to a trusted CA; if an intermediate issued it, send the intermediate "
        "too (present the chain file, leaf first)"
    ),
    "self-signed certificate": "self-signed certificates are refused",
    "self signed certificate": "self-signed certificates are refused",
    "certificate has expired": "the certificate has expired",
    "certificate is not yet valid": "the certificate is not yet valid",
}


def _reason(exc: crypto.X509StoreContextError) -> str:
    """OpenSSL's verdict in words a third party can act on."""
    message = str(exc.args[0]) if exc.args else str(exc)
    for needle, hint in _HINTS.items():
        if needle in message:
            return hint
    return f"certificate verification failed: {message}"


def certificate_from_proxy_header(value: str) -> PeerCertificate:
    """A certificate a trusted reverse proxy verified and forwarded (URL-escaped PEM, e.g. nginx)."""
    text = unquote(value).strip()
    if not text or text == "(null)":
        return NO_CERTIFICATE
    try:
        cert = x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        return PeerCertificate(True, False, error="the proxy header does not hold a PEM certificate",
                               source="proxy-header")
    now = dt.datetime.now(dt.UTC)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return PeerCertificate(True, False, fingerprint, cert.subject.rfc4514_string(),
                               "certificate has expired or is not yet valid", "proxy-header")
    return PeerCertificate(True, True, fingerprint, cert.subject.rfc4514_string(), source="proxy-header")


def proxy_header_problem(header: str | None, trusted: list[str]) -> str | None:
    """Why a proxy-header configuration must not start, or None.

    A header with no trusted address would let any process that can reach the port pose as any third
    party knowing only its public certificate; the operator names the proxy's address.
    """
    if not header:
        return None
    if not trusted:
        return (f"client_cert_header is {header!r} but client_cert_header_trusted_ips is empty: name the "
                "reverse proxy's address (MOCK_CUSTODIAN_CLIENT_CERT_HEADER_TRUSTED_IPS=10.0.0.5)")
    for entry in trusted:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"client_cert_header_trusted_ips: {entry!r} is not an IP address or network"
    return None


def address_trusted(remote_addr: str | None, trusted: list[str]) -> bool:
    """Whether a peer address is one of the configured trusted proxies (addresses or networks)."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
