"""The app in-process (Flask's test client), with a client certificate placed where the TLS worker puts it.

``mock_custodian.server.TLSTerminator`` verifies the peer's certificate during the handshake and hangs the
result on the socket (``surface`` and ``peer_certificate``); ``app._SurfaceMiddleware`` copies both from
``environ["gunicorn.socket"]`` into the WSGI environ. A stand-in socket with those two attributes makes a
test-client request look exactly like one that arrived over mutual TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from flask import Flask
from flask.testing import FlaskClient

from mock_custodian import tls
from mock_custodian.app import create_app
from mock_custodian.cli.common import open_data_dir
from mock_custodian.pki import DevPKI
from mock_custodian.settings import Settings, load_settings

CONTROL_TOKEN = "in-process-control-token"


@dataclass
class FakeSocket:
    """What the TLS worker's socket tells the app: which listener, which verified certificate."""

    surface: str
    peer_certificate: tls.PeerCertificate


def peer(certificate: Path | str | None) -> tls.PeerCertificate:
    """A certificate as the handshake would report it once verified (a PEM file), or none."""
    if certificate is None:
        return tls.NO_CERTIFICATE
    cert = x509.load_pem_x509_certificate(Path(certificate).read_bytes())
    return tls.PeerCertificate(True, True, cert.fingerprint(hashes.SHA256()).hex(), cert.subject.rfc4514_string())


def environ(surface: str = "api", certificate: Path | str | None = None,
            remote_addr: str = "127.0.0.1") -> dict[str, Any]:
    """``environ_base`` for a test-client request on ``surface`` presenting ``certificate``."""
    return {"gunicorn.socket": FakeSocket(surface, peer(certificate)), "REMOTE_ADDR": remote_addr}


@dataclass
class InProcess:
    app: Flask
    settings: Settings
    data_dir: Path

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def cert(self, client_id: str) -> Path:
        """The PEM certificate a scenario third party registered (issued by the dev PKI at load)."""
        return DevPKI(self.data_dir / "certs").client_folder(client_id) / "cert.pem"


def build(data_dir: Path, **overrides: Any) -> InProcess:
    """A prepared data dir (schema, dev PKI, demo scenario) and the app over it, no server."""
    values: dict[str, Any] = {"data_dir": data_dir, "control_token": CONTROL_TOKEN, "rate_limits_enabled": False,
                              "job_worker": False}
    values.update(overrides)
    settings = load_settings(values, environ={})
    database = open_data_dir(settings, create=True).database
    return InProcess(create_app(settings, database), settings, data_dir)
