"""Certificates a test needs to upload or present: dev-CA leaves with any flaw, built in one call."""

from __future__ import annotations

import warnings
from pathlib import Path

from cryptography import x509
from OpenSSL import crypto

from mock_custodian import pki as pkimod


def leaf(dev: pkimod.DevPKI, name: str = "client", key=None, **kwargs) -> x509.Certificate:  # noqa: ANN001, ANN003
    """A client certificate from the dev intermediate; keywords go to ``pki.build_certificate``."""
    issuer_cert, issuer_key = dev._issuer()
    key = key or pkimod.new_key()
    return pkimod.build_certificate(pkimod._name(name), key.public_key(), issuer_cert, issuer_key,
                                    **{"client_auth": True, **kwargs})


def sha1_leaf(dev: pkimod.DevPKI) -> x509.Certificate:
    """A dev-CA leaf signed with SHA-1 (cryptography refuses to sign one; pyOpenSSL still can)."""
    issuer_cert, issuer_key = dev._issuer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = crypto.PKey()
        key.generate_key(crypto.TYPE_RSA, 2048)
        cert = crypto.X509()
        cert.get_subject().CN = "sha1 client"
        cert.set_issuer(crypto.X509.from_cryptography(issuer_cert).get_subject())
        cert.set_serial_number(7)
        cert.gmtime_adj_notBefore(-60)
        cert.gmtime_adj_notAfter(86400)
        cert.set_pubkey(key)
        cert.sign(crypto.PKey.from_cryptography_key(issuer_key), "sha1")
        return cert.to_cryptography()


def self_signed(name: str = "self") -> x509.Certificate:
    key = pkimod.new_key()
    return pkimod.build_certificate(pkimod._name(name), key.public_key(), None, key, client_auth=True)


def pem(*certs: x509.Certificate) -> str:
    return b"".join(pkimod.cert_pem(c) for c in certs).decode()


def write_pair(folder: Path, name: str, certs: list[x509.Certificate], key) -> tuple[str, str]:  # noqa: ANN001
    """``requests``' ``cert=`` tuple for a chain and key written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert_path.write_text(pem(*certs))
    key_path.write_bytes(pkimod.key_pem(key))
    return str(cert_path), str(key_path)
