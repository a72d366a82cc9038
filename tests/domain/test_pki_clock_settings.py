"""The dev PKI's shape, the one clock's arithmetic and settings precedence (issue 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from mock_custodian import clock
from mock_custodian.pki import DevPKI
from mock_custodian.settings import load_settings


def _verify_signed_by(child: x509.Certificate, parent: x509.Certificate) -> None:
    key = parent.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), child.signature_hash_algorithm)


def test_dev_pki_is_root_intermediate_leaf(tmp_path: Path) -> None:
    pki = DevPKI(tmp_path / "certs")
    assert pki.ensure(["mock-pge", "api.pge.com"]) is True
    assert pki.ensure(["mock-pge", "api.pge.com"]) is False  # second start reuses everything
    root = x509.load_pem_x509_certificate(pki.ca_bundle.read_bytes())
    chain = x509.load_pem_x509_certificates(pki.server_chain.read_bytes())
    server, intermediate = chain
    _verify_signed_by(intermediate, root)
    _verify_signed_by(server, intermediate)
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for cert in (root, intermediate, server):
        assert cert.public_key().key_size >= 2048
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "mock-pge", "api.pge.com"} <= set(names.get_values_for_type(x509.DNSName))
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    # A new SAN reissues the server certificate, not the CA.
    assert pki.ensure(["mock-pge", "api.pge.com", "sharemydata.pge.com"]) is True
    assert pki.ca_bundle.read_bytes() == root.public_bytes(Encoding.PEM)


def test_certs_issue_cli_client_server_and_p12(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "mock_custodian", "certs", "issue", "--data-dir", str(tmp_path)]
    client = json.loads(subprocess.run([*base, "java-client", "--p12", "--p12-password", "s3cret"],
                                       check=True, capture_output=True, text=True).stdout)
    leaf = x509.load_pem_x509_certificate(Path(client["certificate"]).read_bytes())
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert len(x509.load_pem_x509_certificates(Path(client["chain"]).read_bytes())) == 2
    key, cert, extra = pkcs12.load_key_and_certificates(Path(client["pkcs12"]).read_bytes(), b"s3cret")
    assert cert == leaf and len(extra) == 1 and key is not None
    server = json.loads(subprocess.run([*base, "receiver", "--server", "localhost", "--server", "tp.test"],
                                       check=True, capture_output=True, text=True).stdout)
    cert = x509.load_pem_x509_certificate(Path(server["certificate"]).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "tp.test"}
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_clock_offset_frozen_and_advance() -> None:
    real = 1_800_000_000.0
    state = clock.ClockState()
    assert state.now_epoch(real) == real
    ahead = clock.advanced(state, 3600, real)
    assert ahead.now_epoch(real + 5) == real + 3605  # running clock keeps running
    frozen = clock.frozen(ahead, real)
    assert frozen.now_epoch(real + 999) == real + 3600  # frozen clock stands still
    assert clock.advanced(frozen, 60, real).now_epoch(real + 999) == real + 3660
    assert clock.set_to(state, 1_700_000_000.0, real).now_epoch(real) == 1_700_000_000.0
    assert clock.thawed(frozen, real + 10).now_epoch(real + 10) == real + 3600
    reads = iter([clock.ClockState(offset_s=10.0)])
    assert clock.Clock(lambda: next(reads), real_time=lambda: real).epoch() == real + 10


def test_parse_instant_requires_a_zone() -> None:
    assert clock.parse_instant("2026-03-01T00:00Z") == 1772323200.0
    assert clock.parse_instant("1772323200") == 1772323200.0
    with pytest.raises(ValueError, match="no time zone"):
        clock.parse_instant("2026-03-01T00:00")


def test_settings_precedence_and_coercion() -> None:
    env = {"MOCK_CUSTODIAN_API_PORT": "9443", "MOCK_CUSTODIAN_SAN": "a, b", "MOCK_CUSTODIAN_ALLOW_SELF_SIGNED": "yes",
           "DATABASE_URL": "postgresql://x/y"}
    settings = load_settings({"api_port": 7443, "workers": None}, environ=env)
    assert settings.api_port == 7443  # flag beats environment
    assert settings.workers == 2  # None overrides are ignored
    assert settings.san == ["a", "b"]
    assert settings.allow_self_signed is True
    assert settings.resolved_database_url() == "postgresql://x/y"
    assert settings.resolved_api_base_url() == "https://127.0.0.1:7443"
    with pytest.raises(ValueError, match="MOCK_CUSTODIAN_API_PORT"):
        load_settings(environ={"MOCK_CUSTODIAN_API_PORT": "many"})
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings({"no_such": 1}, environ={})
