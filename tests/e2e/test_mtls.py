"""Mutual TLS as PG&E's gateway does it (spec section 3; checklist 11-16, 19), over real TLS: what only a real
handshake shows. The guard's other decisions run in-process: tests/app/test_certificate_guard.py."""

from __future__ import annotations

import datetime as dt
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import requests
from OpenSSL import SSL
from support import RESOURCE
from support.mtls import assert_invalid_certificate, client_credentials, dev_pki, service_status, write_certificate

from mock_custodian import pki as pkimod
from mock_custodian import testing


def test_no_certificate_gets_http_400_not_a_handshake_failure(demo_server: testing.RunningServer) -> None:
    response = requests.post(
        f"{demo_server.api_base_url}/datacustodian/oauth/v2/token?grant_type=client_credentials",
        auth=("00101", demo_server.third_party("00101")["client_secret"]), verify=demo_server.ca_bundle, timeout=10,
    )
    assert_invalid_certificate(response)
    assert_invalid_certificate(service_status(demo_server, "anything", None))


def test_certificate_without_its_intermediate_is_refused(demo_server: testing.RunningServer) -> None:
    tp = demo_server.third_party("00101")
    assert_invalid_certificate(client_credentials(demo_server, "00101", cert=(tp["certificate"], tp["key"])))


def test_untrusted_issuer_is_refused(demo_server: testing.RunningServer, tmp_path: Path) -> None:
    rogue_key = pkimod.new_key()
    rogue_root = pkimod.build_certificate(pkimod._name("Rogue Root"), rogue_key.public_key(), None, rogue_key,
                                          ca=True, path_length=1)
    key = pkimod.new_key()
    leaf = pkimod.build_certificate(pkimod._name("rogue client"), key.public_key(), rogue_root, rogue_key,
                                    client_auth=True)
    files = write_certificate(tmp_path, "rogue", leaf, key, [rogue_root])
    assert_invalid_certificate(client_credentials(demo_server, "00101", cert=files))


def test_expired_certificate_is_refused_by_real_time(demo_server: testing.RunningServer, tmp_path: Path) -> None:
    dev = dev_pki(demo_server)
    issuer_cert, issuer_key = dev._issuer()
    key = pkimod.new_key()
    now = dt.datetime.now(dt.UTC)
    expired = pkimod.build_certificate(
        pkimod._name("expired client"), key.public_key(), issuer_cert, issuer_key, client_auth=True,
        not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1),
    )
    files = write_certificate(tmp_path, "expired", expired, key, [issuer_cert])
    assert_invalid_certificate(client_credentials(demo_server, "00101", cert=files))


def _handshake(url: str, ca_bundle: str, server_name: str | None = None) -> list:
    """TLS-handshake with pyOpenSSL and return the CA names of the server's CertificateRequest."""
    parsed = urlparse(url)
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.load_verify_locations(ca_bundle)
    ctx.set_verify(SSL.VERIFY_PEER, lambda _c, _x, _e, _d, ok: bool(ok))
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
    sock.setblocking(False)
    deadline = time.monotonic() + 10

    def pump(call, *args):  # noqa: ANN001, ANN202 - retry a non-blocking pyOpenSSL call, bounded in time
        while time.monotonic() < deadline:
            try:
                return call(*args)
            except (SSL.WantReadError, SSL.WantWriteError):
                select.select([sock], [sock], [], 0.2)
        raise TimeoutError("TLS exchange did not finish")

    try:
        conn = SSL.Connection(ctx, sock)
        if server_name:
            conn.set_tlsext_host_name(server_name.encode())
        conn.set_connect_state()
        pump(conn.do_handshake)
        # TLS 1.3 sends CertificateRequest after the server Finished; a read makes the client process it.
        pump(conn.sendall, b"GET /__sim/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = pump(conn.recv, 65536)
                if not chunk:
                    break
                data += chunk
        except (SSL.ZeroReturnError, SSL.SysCallError):
            pass
        assert b"200 OK" in data.split(b"\r\n", 1)[0]
        return conn.get_client_ca_list()
    finally:
        sock.close()


def test_api_listener_requests_a_certificate_and_portal_listener_never_does(demo_server: testing.RunningServer) -> None:
    api_names = _handshake(demo_server.api_base_url, demo_server.ca_bundle)
    assert [n.CN for n in api_names] == [pkimod.ROOT_NAME]
    assert _handshake(demo_server.portal_base_url, demo_server.ca_bundle) == []


def test_portal_pages_are_served_without_a_certificate(demo_server: testing.RunningServer) -> None:
    response = requests.get(f"{demo_server.portal_base_url}/", verify=demo_server.ca_bundle, timeout=10)
    assert response.status_code == 200
    assert "Share My Data" in response.text
    assert "#MyAuthorization" in response.text  # the fragment router of spec 4.2
    # The API host's paths do not exist on the portal host.
    response = requests.get(f"{demo_server.portal_base_url}{RESOURCE}/ReadServiceStatus", verify=demo_server.ca_bundle,
                            timeout=10)
    assert response.status_code == 404
    assert response.text == f"No listener for endpoint: {RESOURCE}/ReadServiceStatus"


def test_portal_host_name_on_the_api_port_behaves_as_the_portal(demo_server: testing.RunningServer) -> None:
    # Host-mapping setups: SNI sharemydata.pge.com on the API listener gets no certificate request.
    assert _handshake(demo_server.api_base_url, demo_server.ca_bundle, server_name="sharemydata.pge.com") == []
    assert _handshake(demo_server.api_base_url, demo_server.ca_bundle, server_name="api.pge.com") != []


