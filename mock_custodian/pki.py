"""Development PKI: a root CA, an issuing intermediate, and the leaf certificates the mock needs.

PG&E's gateway trusts public roots and expects clients to send their intermediate; the dev PKI
mirrors that shape (root -> issuing intermediate -> leaf) so a client that forgets its chain fails
here exactly as it would in production.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_SIZE = 2048
ROOT_NAME = "Mock Custodian Dev Root CA"
INTERMEDIATE_NAME = "Mock Custodian Dev Issuing CA"
DATA_CUSTODIAN_NAME = "PGE Data Custodian (mock-custodian)"
ORGANIZATION = "mock-custodian development PKI"


def _now() -> dt.datetime:
    # Certificate validity is real time, never the simulated clock.
    return dt.datetime.now(dt.UTC)


def new_key(bits: int = KEY_SIZE) -> rsa.RSAPrivateKey:
    """A fresh RSA key; 2048 bits is PG&E's minimum and the fastest to make."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(common_name: str, organization: str = ORGANIZATION) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Lower-case hex SHA-256 over DER: the value PG&E matches a client certificate by."""
    return cert.fingerprint(hashes.SHA256()).hex()


def build_certificate(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool = False,
    path_length: int | None = None,
    server_names: list[str] | None = None,
    client_auth: bool = False,
    server_auth: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 825,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> x509.Certificate:
    """Sign one certificate with the x509 builder; every knob a test needs is a keyword."""
    start = not_before or (_now() - dt.timedelta(minutes=5))
    end = not_after or (start + dt.timedelta(days=days))
    issuer_name = issuer_cert.subject if issuer_cert is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        usages = []
        if server_auth:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client_auth:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names:
        alt: list[x509.GeneralName] = []
        for host in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key, hash_algorithm or hashes.SHA256())


@dataclass(frozen=True)
class IssuedFiles:
    """Where one issued leaf lives on disk."""

    certificate: Path
    key: Path
    chain: Path
    fingerprint_sha256: str
    pkcs12: Path | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "certificate": str(self.certificate),
            "key": str(self.key),
            "chain": str(self.chain),
            "pkcs12": str(self.pkcs12) if self.pkcs12 else None,
            "fingerprint_sha256": self.fingerprint_sha256,
        }


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    if not cleaned:
        raise ValueError(f"certificate name {name!r} has no usable characters")
    return cleaned


class DevPKI:
    """The dev PKI under ``<data_dir>/certs``: created once, reused on every later start."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    # Paths clients and the server use.
    @property
    def ca_bundle(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def intermediate_cert_path(self) -> Path:
        return self.directory / "intermediate.pem"

    @property
    def server_chain(self) -> Path:
        return self.directory / "server" / "chain.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server" / "key.pem"

    def data_custodian_files(self) -> IssuedFiles:
        return self._files(self.directory / "data-custodian")

    def _files(self, folder: Path, with_p12: bool = False) -> IssuedFiles:
        cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
        p12 = folder / "bundle.p12"
        return IssuedFiles(
            certificate=folder / "cert.pem",
            key=folder / "key.pem",
            chain=folder / "chain.pem",
            fingerprint_sha256=fingerprint_sha256(cert),
            pkcs12=p12 if p12.exists() else None,
        )

    def exists(self) -> bool:
        return self.ca_bundle.exists() and (self.directory / "intermediate-key.pem").exists()

    def ensure(self, server_names: list[str]) -> bool:
        """Create whatever is missing; reissue the server certificate when the SAN list grew.

        Returns True when anything was created.
        """
        created = False
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.exists():
            root_key = new_key()
            root = build_certificate(
                _name(ROOT_NAME), root_key.public_key(), None, root_key, ca=True, path_length=1, days=3650
            )
            inter_key = new_key()
            inter = build_certificate(
                _name(INTERMEDIATE_NAME), inter_key.public_key(), root, root_key,
                ca=True, path_length=0, days=3000,
            )
            _write(self.directory / "ca-key.pem", key_pem(root_key), private=True)
            _write(self.ca_bundle, cert_pem(root))
            _write(self.directory / "intermediate-key.pem", key_pem(inter_key), private=True)
            _write(self.intermediate_cert_path, cert_pem(inter))
            created = True
        wanted = sorted(set(["localhost", "127.0.0.1", "::1", *server_names]))
        names_file = self.directory / "server" / "names.txt"
        have = names_file.read_text().split() if names_file.exists() else []
        if created or not self.server_chain.exists() or sorted(have) != wanted:
            self.issue("server", server_names=wanted, folder=self.directory / "server")
            _write(names_file, "\n".join(wanted).encode())
            created = True
        if created or not (self.directory / "data-custodian" / "cert.pem").exists():
            self.issue(DATA_CUSTODIAN_NAME, folder=self.directory / "data-custodian")
            created = True
        return created

    def _issuer(self) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        cert = x509.load_pem_x509_certificate(self.intermediate_cert_path.read_bytes())
        key = serialization.load_pem_private_key((self.directory / "intermediate-key.pem").read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cert, key

    def root(self) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        cert = x509.load_pem_x509_certificate(self.ca_bundle.read_bytes())
        key = serialization.load_pem_private_key((self.directory / "ca-key.pem").read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cert, key

    def issue(
        self,
        name: str,
        *,
        server_names: list[str] | None = None,
        folder: Path | None = None,
        pkcs12_password: bytes | None = None,
        with_p12: bool = False,
    ) -> IssuedFiles:
        """Issue a leaf from the intermediate: a client certificate, or a server one when names are given.

        Writes ``cert.pem`` (leaf), ``chain.pem`` (leaf + intermediate: what a client must send),
        ``key.pem`` and optionally ``bundle.p12`` for Java/.NET clients.
        """
        target = folder or (self.directory / "issued" / _safe_name(name))
        issuer_cert, issuer_key = self._issuer()
        key = new_key()
        cert = build_certificate(
            _name(name, organization=ORGANIZATION if server_names else name),
            key.public_key(), issuer_cert, issuer_key,
            server_names=server_names, server_auth=bool(server_names), client_auth=not server_names,
        )
        _write(target / "key.pem", key_pem(key), private=True)
        _write(target / "cert.pem", cert_pem(cert))
        _write(target / "chain.pem", cert_pem(cert) + cert_pem(issuer_cert))
        p12_path = None
        if with_p12:
            p12_path = target / "bundle.p12"
            encryption = (
                serialization.BestAvailableEncryption(pkcs12_password)
                if pkcs12_password
                else serialization.NoEncryption()
            )
            blob = pkcs12.serialize_key_and_certificates(
                name.encode(), key, cert, [issuer_cert], encryption
            )
            _write(p12_path, blob, private=True)
        return IssuedFiles(target / "cert.pem", target / "key.pem", target / "chain.pem",
                           fingerprint_sha256(cert), p12_path)

    def sign_csr(self, csr_pem: bytes, days: int = 397) -> tuple[x509.Certificate, bytes]:
        """A client certificate for a developer's own CSR (their key never leaves them): cert and chain PEM.

        Raises ``ValueError`` with a reason a developer can act on.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise ValueError("not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)") from None
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify against its own public key")
        key = csr.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"the CSR's key is not RSA; PG&E requires an RSA key of at least {KEY_SIZE} bits")
        if key.key_size < KEY_SIZE:
            raise ValueError(f"the CSR holds a {key.key_size}-bit RSA key; PG&E requires at least {KEY_SIZE} bits")
        if len(csr.subject) == 0:
            raise ValueError("the CSR has an empty subject; give it at least a CN")
        issuer_cert, issuer_key = self._issuer()
        cert = build_certificate(csr.subject, key, issuer_cert, issuer_key, client_auth=True, days=days)
        return cert, cert_pem(cert) + cert_pem(issuer_cert)

    def client_folder(self, client_id: str) -> Path:
        return self.directory / "clients" / client_id

    def ensure_client(self, client_id: str, display_name: str) -> IssuedFiles:
        """The demo third party's certificate: reused across restarts and resets so paths stay valid."""
        folder = self.client_folder(client_id)
        if (folder / "cert.pem").exists() and (folder / "key.pem").exists():
            return self._files(folder)
        return self.issue(f"{display_name} ({client_id})", folder=folder)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if private:  # created 0600, never readable by others even for a moment
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        tmp.chmod(0o600)
    else:
        tmp.write_bytes(data)
    tmp.replace(path)


def load_pem_bundle(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order."""
    return x509.load_pem_x509_certificates(data)
