"""A third party's credentials as files (spec 3, 4.8): its folder of PEMs and a PKCS#12 bundle for tools.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy.orm import Session

from mock_custodian.domain.control import third_party
from mock_custodian.errors import ControlNotFound
from mock_custodian.pki import DevPKI


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
