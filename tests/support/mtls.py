"""Calls over a client certificate and certificate files for the guard's tests (in-process and real TLS)."""

from __future__ import annotations

from pathlib import Path

import requests
from cryptography import x509

from mock_custodian import pki as pkimod
from support import RESOURCE, TOKEN, Server


def client_credentials(server: Server, client_id: str, cert: tuple[str, str] | None = None) -> requests.Response:
    """A client_credentials token request with the client's Basic credentials and a certificate (default: its own)."""
    tp = server.third_party(client_id)
    return requests.post(
        f"{server.api_base_url}{TOKEN}",
        params={"grant_type": "client_credentials"},
        auth=(tp["client_id"], tp["client_secret"]),
        cert=cert if cert is not None else server.cert(client_id),
        verify=server.ca_bundle,
        timeout=10,
    )


def service_status(server: Server, token: str | None, cert) -> requests.Response:  # noqa: ANN001
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server.api_base_url}{RESOURCE}/ReadServiceStatus", headers=headers, cert=cert,
                        verify=server.ca_bundle, timeout=10)


def assert_invalid_certificate(response: requests.Response) -> None:
    """PG&E's answer to a certificate it does not accept: HTTP 400, plain ``Invalid Certificate``."""
    assert response.status_code == 400
    assert response.text == "Invalid Certificate"
    assert response.headers["Content-Type"].startswith("text/plain")


def write_certificate(tmp: Path, name: str, cert: x509.Certificate, key,  # noqa: ANN001
                      chain: list[x509.Certificate]) -> tuple[str, str]:
    """A certificate (with its chain) and its key as the files ``requests``' ``cert=`` takes."""
    cert_path = tmp / f"{name}.pem"
    key_path = tmp / f"{name}-key.pem"
    cert_path.write_bytes(b"".join(pkimod.cert_pem(c) for c in [cert, *chain]))
    key_path.write_bytes(pkimod.key_pem(key))
    return str(cert_path), str(key_path)


def dev_pki(server: Server) -> pkimod.DevPKI:
    return pkimod.DevPKI(server.data_dir / "certs")
