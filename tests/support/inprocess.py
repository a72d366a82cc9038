"""The app in-process (Flask's test client), with a client certificate placed where the TLS worker puts it.

``mock_custodian.server.TLSTerminator`` verifies the peer's certificate during the handshake and hangs the
result on the socket (``surface`` and ``peer_certificate``); ``web.context.SurfaceMiddleware`` copies both from
``environ["gunicorn.socket"]`` into the WSGI environ. A stand-in socket with those two attributes makes a
test-client request look exactly like one that arrived over mutual TLS.

Two ways in:

- ``build(data_dir)`` gives the app and a test client; ``environ(surface, certificate)`` is the
  ``environ_base`` of a request on a surface presenting a certificate.
- ``start(data_dir)`` gives an ``InProcessServer``: the same interface as ``mock_custodian.testing``'s
  ``RunningServer`` (base URLs, credentials, ``cert()``, the control API, ``clock``, ``reset()``,
  ``requests()``...), whose URLs are served by the app in this process. ``requests`` calls to them
  (module functions and sessions alike) are handed to the app by a transport adapter: the client
  certificate given as ``cert=`` is checked by the server's own verifier against the data dir's trust
  bundle, as the TLS layer would. So a test written against a real server runs unchanged, in a
  fraction of the time, wherever what it asserts does not depend on real TLS, processes or workers.
"""

from __future__ import annotations

import email.message
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from flask import Flask
from flask.testing import FlaskClient
from requests.adapters import BaseAdapter, HTTPAdapter

from mock_custodian import testing, tls
from mock_custodian.app import create_app
from mock_custodian.cli.common import open_data_dir
from mock_custodian.pki import DevPKI
from mock_custodian.scenario.parse import BUILTIN_SCENARIOS
from mock_custodian.settings import Settings, load_settings

CONTROL_TOKEN = "in-process-control-token"
DOMAIN = "in-process.test"  # never resolved: requests to it never leave the process


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


# --- a RunningServer whose URLs are the app in this process --------------------------------------------


class InProcessAdapter(BaseAdapter):
    """A ``requests`` transport that hands each request to the app as the TLS worker would.

    The API surface sees the client certificate of ``cert=`` (verified by the server's own
    ``ClientCertificateVerifier`` against the trust bundle: leaf first, the rest its chain); the portal
    asks for none, like the real portal listener.
    """

    def __init__(self, app: Flask, surface: str, verifier: tls.ClientCertificateVerifier) -> None:
        super().__init__()
        self.app = app
        self.surface = surface
        self.verifier = verifier
        self.client = app.test_client(use_cookies=False)  # the requests session keeps the cookies

    def peer(self, cert: Any) -> tls.PeerCertificate:
        if self.surface != "api" or not cert:
            return tls.NO_CERTIFICATE
        chain_file = cert[0] if isinstance(cert, tuple | list) else cert
        chain = x509.load_pem_x509_certificates(Path(chain_file).read_bytes())
        return self.verifier.verify(chain[0], chain)

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        parts = urlsplit(request.url)
        body = request.body.encode() if isinstance(request.body, str) else request.body
        if body is not None and not isinstance(body, bytes):
            body = b"".join(body)  # a generator or file-like body
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        served = self.client.open(
            parts.path or "/", base_url=f"{parts.scheme}://{parts.netloc}", method=request.method,
            query_string=parts.query, headers=headers, data=body or b"",
            environ_base={"gunicorn.socket": FakeSocket(self.surface, self.peer(cert)), "REMOTE_ADDR": "127.0.0.1"},
        )
        content = served.get_data()
        raw = urllib3.HTTPResponse(body=content, headers=list(served.headers.items()), status=served.status_code,
                                   reason=served.status.partition(" ")[2], preload_content=False,
                                   decode_content=False, request_method=request.method)
        message = email.message.Message()
        for name, value in served.headers.items():
            message[name] = value
        raw._original_response = _Original(message)  # what requests reads the Set-Cookie headers from
        response = HTTPAdapter.build_response(self, request, raw)  # type: ignore[arg-type]
        response._content = content
        return response

    def close(self) -> None:
        pass


class _Original:
    """The parts of an ``http.client.HTTPResponse`` that requests' cookie handling reads."""

    def __init__(self, message: email.message.Message) -> None:
        self.msg = message

    def isclosed(self) -> bool:
        return True


_ADAPTERS: dict[str, InProcessAdapter] = {}
_ORIGINAL_GET_ADAPTER = requests.Session.get_adapter
_SERIAL = itertools.count(1)


def _get_adapter(self: requests.Session, url: str) -> BaseAdapter:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url)).lower()
    adapter = _ADAPTERS.get(origin)
    return adapter if adapter is not None else _ORIGINAL_GET_ADAPTER(self, url)


requests.Session.get_adapter = _get_adapter  # type: ignore[method-assign]  # only the in-process origins


@dataclass
class InProcessServer(testing.RunningServer):
    """``RunningServer``'s interface over the app in this process (no gunicorn, TLS, job worker)."""

    app: Any = None
    settings: Any = None

    def stop(self, sig: int = 0, timeout: float = 0.0) -> None:
        for base in (self.api_base_url, self.portal_base_url):
            _ADAPTERS.pop(base, None)

    def log(self) -> str:
        return ""


def start(data_dir: Path | str, *, scenario: Path | str | None = None, settings: dict[str, Any] | None = None
          ) -> InProcessServer:
    """The app over a prepared ``data_dir`` (dev PKI, schema, scenario), reachable with ``requests`` at
    the returned server's base URLs. ``settings`` are Settings fields, as ``testing.start`` takes them;
    rate limits and the job worker are off unless a test turns them on."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    serial = next(_SERIAL)
    api_base, portal_base = f"https://api-{serial}.{DOMAIN}", f"https://portal-{serial}.{DOMAIN}"
    values: dict[str, Any] = {"data_dir": data_dir, "control_token": CONTROL_TOKEN, "rate_limits_enabled": False,
                              "job_worker": False, "api_base_url": api_base, "portal_base_url": portal_base}
    if scenario is not None:
        values["scenario"] = BUILTIN_SCENARIOS.get(str(scenario), scenario)
    values.update(settings or {})
    loaded = load_settings(values, environ={})
    opened = open_data_dir(loaded, create=True, scenario_given=scenario is not None)
    database, pki = opened.database, opened.pki
    app = create_app(loaded, database)
    trusted = Path(loaded.trusted_ca_bundle) if loaded.trusted_ca_bundle else pki.ca_bundle
    verifier = tls.ClientCertificateVerifier(trusted.read_bytes(), loaded.allow_self_signed)
    _ADAPTERS[api_base] = InProcessAdapter(app, "api", verifier)
    _ADAPTERS[portal_base] = InProcessAdapter(app, "portal", verifier)
    # What a CLI command run beside it needs (``server.env``, as testing.start gives it).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_CUSTODIAN_")}
    env.update({f"MOCK_CUSTODIAN_{k.upper()}": testing.env_value(v) for k, v in values.items() if k != "data_dir"})
    server = InProcessServer(process=None, data_dir=data_dir, api_base_url=api_base,  # type: ignore[arg-type]
                             portal_base_url=portal_base, ca_bundle=str(pki.ca_bundle), credentials={},
                             log_path=data_dir / "server.log", env=env, control_token=CONTROL_TOKEN, app=app,
                             settings=loaded)
    server.refresh_credentials()
    server.started_scenario = server.control("GET", "/scenario")
    return server
