"""Certificate upload checks of spec 3.2 (checklist 17): each refusal with its own clear reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from support.cert_factory import sha1_leaf

from mock_custodian import pki as pkimod
from mock_custodian.domain.certificate_checks import CertificateRefused, TrustAnchors, check_certificate_upload


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> pkimod.DevPKI:
    pki = pkimod.DevPKI(tmp_path_factory.mktemp("pki"))
    pki.ensure([])
    return pki


@pytest.fixture(scope="module")
def anchors(dev: pkimod.DevPKI) -> TrustAnchors:
    return TrustAnchors.for_settings(None, dev)


def _leaf(dev: pkimod.DevPKI, **kwargs) -> x509.Certificate:  # noqa: ANN003
    issuer_cert, issuer_key = dev._issuer()
    key = kwargs.pop("key", None) or pkimod.new_key()
    return pkimod.build_certificate(pkimod._name(kwargs.pop("name", "client")), key.public_key(), issuer_cert,
                                    issuer_key, **{"client_auth": True, **kwargs})


def _pem(*certs: x509.Certificate) -> str:
    return b"".join(pkimod.cert_pem(c) for c in certs).decode()


def _refusal(anchors: TrustAnchors, pem: str, **kwargs) -> str:  # noqa: ANN003
    with pytest.raises(CertificateRefused) as caught:
        check_certificate_upload(pem, anchors, **kwargs)
    return str(caught.value)


def test_a_dev_ca_client_certificate_is_accepted_with_or_without_its_intermediate(dev, anchors) -> None:  # noqa: ANN001
    leaf = _leaf(dev)
    issuer_cert, _ = dev._issuer()
    for pem in (_pem(leaf), _pem(leaf, issuer_cert)):
        checked = check_certificate_upload(pem, anchors)
        assert checked.fingerprint_sha256 == pkimod.fingerprint_sha256(leaf)
        assert checked.warnings == []
        assert checked.pem == _pem(leaf)  # the leaf is what gets registered


def test_rsa_key_under_2048_bits_is_refused(dev, anchors) -> None:  # noqa: ANN001
    reason = _refusal(anchors, _pem(_leaf(dev, key=pkimod.new_key(1024))))
    assert reason == "the certificate's RSA key is 1024 bits; PG&E requires at least 2048 bits"


def test_a_non_rsa_key_is_refused(dev, anchors) -> None:  # noqa: ANN001
    issuer_cert, issuer_key = dev._issuer()
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pkimod.build_certificate(pkimod._name("ec client"), key.public_key(), issuer_cert, issuer_key)
    assert "elliptic-curve (secp256r1) key; PG&E requires an RSA key" in _refusal(anchors, _pem(leaf))


def test_sha1_signature_is_refused(dev, anchors) -> None:  # noqa: ANN001
    reason = _refusal(anchors, _pem(sha1_leaf(dev)))
    assert reason == "the certificate is signed with SHA1; PG&E requires a SHA-2 signature (SHA-256 or stronger)"


def test_expired_and_not_yet_valid_certificates_are_refused_by_real_time(dev, anchors) -> None:  # noqa: ANN001
    now = dt.datetime.now(dt.UTC)
    expired = _leaf(dev, not_before=now - dt.timedelta(days=40), not_after=now - dt.timedelta(days=2))
    assert _refusal(anchors, _pem(expired)).startswith("the certificate expired on ")
    future = _leaf(dev, not_before=now + dt.timedelta(days=3), not_after=now + dt.timedelta(days=300))
    assert _refusal(anchors, _pem(future)).startswith("the certificate is not valid until ")


def test_self_signed_is_refused_unless_allowed(anchors) -> None:  # noqa: ANN001
    key = pkimod.new_key()
    own = pkimod.build_certificate(pkimod._name("self"), key.public_key(), None, key, client_auth=True)
    assert _refusal(anchors, _pem(own)).startswith("self-signed certificates are refused")
    assert check_certificate_upload(_pem(own), anchors, allow_self_signed=True).warnings == []


def test_untrusted_issuer_names_the_issuer_and_the_missing_intermediate(anchors) -> None:  # noqa: ANN001
    rogue_key = pkimod.new_key()
    rogue = pkimod.build_certificate(pkimod._name("Rogue Issuing CA"), rogue_key.public_key(), None, rogue_key,
                                     ca=True, path_length=0)
    key = pkimod.new_key()
    leaf = pkimod.build_certificate(pkimod._name("rogue client"), key.public_key(), rogue, rogue_key, client_auth=True)
    reason = _refusal(anchors, _pem(leaf))
    assert "does not chain to a trusted CA (its issuer is CN=Rogue Issuing CA" in reason
    assert "upload the intermediate after the certificate" in reason


def test_client_auth_eku_missing_warns_by_default_and_refuses_by_setting(dev, anchors) -> None:  # noqa: ANN001
    issuer_cert, issuer_key = dev._issuer()
    key = pkimod.new_key()
    server_only = pkimod.build_certificate(pkimod._name("public-CA style"), key.public_key(), issuer_cert, issuer_key,
                                           server_auth=True)
    eku = server_only.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    checked = check_certificate_upload(_pem(server_only), anchors)
    assert len(checked.warnings) == 1
    assert "lists serverAuth but not clientAuth" in checked.warnings[0]
    assert "stopped issuing clientAuth certificates in 2026" in checked.warnings[0]
    reason = _refusal(anchors, _pem(server_only), client_auth_eku_policy="refuse")
    assert reason == checked.warnings[0]
    # No EKU at all means "any purpose" (RFC 5280): no warning.
    no_eku = pkimod.build_certificate(pkimod._name("no eku"), key.public_key(), issuer_cert, issuer_key)
    assert check_certificate_upload(_pem(no_eku), anchors, client_auth_eku_policy="refuse").warnings == []


def test_wrong_things_uploaded_are_named(dev, anchors) -> None:  # noqa: ANN001
    key = pkimod.new_key()
    assert "contains a private key" in _refusal(anchors, pkimod.key_pem(key).decode())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "me")])).sign(key, hashes.SHA256()))
    assert "certificate signing request (CSR), not a certificate" in _refusal(
        anchors, csr.public_bytes(serialization.Encoding.PEM).decode())
    assert _refusal(anchors, "hello").startswith("no PEM certificate found")
    issuer_cert, _ = dev._issuer()
    assert "is a CA certificate; put your client certificate first" in _refusal(anchors, _pem(issuer_cert, _leaf(dev)))


def test_trusted_ca_bundle_replaces_the_dev_root(dev, tmp_path: Path) -> None:  # noqa: ANN001
    other_key = pkimod.new_key()
    other_root = pkimod.build_certificate(pkimod._name("Other Root"), other_key.public_key(), None, other_key, ca=True)
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(pkimod.cert_pem(other_root))
    only_other = TrustAnchors.for_settings(bundle, dev)
    assert "does not chain to a trusted CA" in _refusal(only_other, _pem(_leaf(dev)))


def test_the_dev_ca_signs_a_csr_and_the_result_passes_the_checks(dev, anchors) -> None:  # noqa: ANN001
    key = pkimod.new_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my-company")])).sign(key, hashes.SHA256()))
    cert, chain = dev.sign_csr(csr.public_bytes(serialization.Encoding.PEM))
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # the developer's key
    assert check_certificate_upload(chain, anchors).warnings == []
    small = pkimod.new_key(1024)
    weak = (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])).sign(small, hashes.SHA256()))
    with pytest.raises(ValueError, match="1024-bit RSA key; PG&E requires at least 2048 bits"):
        dev.sign_csr(weak.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ValueError, match="not a PEM certificate signing request"):
        dev.sign_csr(b"nonsense")
