"""Large writes through ``server.TLSSocket`` (issue 17): one ``SSL_write`` on a blocking socket, then the
connection back as the rest of the worker expects it (non-blocking, partial writes on).

Real TLS over a socket pair, in-process: pyOpenSSL on the server side (as the worker), Python's ``ssl``
as the client.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from mock_custodian.server import WHOLE_WRITE_MIN, TLSSocket
from mock_custodian.tls import NO_CERTIFICATE

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, large enough for one whole write


def _server_context() -> SSL.Context:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    return ctx


class _Client:
    """The peer: reads what it is told to, on its own thread."""

    def __init__(self, raw: socket.socket) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self._raw = raw
        self._ctx = ctx
        self.tls: ssl.SSLSocket | None = None
        self.handshake = threading.Thread(target=self._handshake)
        self.handshake.start()

    def _handshake(self) -> None:
        self.tls = self._ctx.wrap_socket(self._raw, server_hostname="localhost")

    def read(self, size: int) -> threading.Thread:
        self.received = bytearray()

        def run() -> None:
            assert self.tls is not None
            while len(self.received) < size:
                chunk = self.tls.recv(min(65536, size - len(self.received)))
                if not chunk:
                    return
                self.received += chunk

        reader = threading.Thread(target=run)
        reader.start()
        return reader


@pytest.fixture()
def pair() -> Iterator[tuple[TLSSocket, _Client]]:
    server_raw, client_raw = socket.socketpair()
    client_raw.settimeout(30)
    client = _Client(client_raw)
    conn = SSL.Connection(_server_context(), server_raw)
    conn.set_accept_state()
    conn.do_handshake()  # blocking socket here, as before the worker's wrap returns
    client.handshake.join(30)
    server_raw.setblocking(False)  # what TLSTerminator.wrap leaves
    sock = TLSSocket(server_raw, conn, "api", NO_CERTIFICATE)
    yield sock, client
    sock.close()
    client_raw.close()


def test_a_large_write_arrives_whole_and_leaves_the_socket_as_it_found_it(pair) -> None:
    sock, client = pair
    assert len(PAYLOAD) >= WHOLE_WRITE_MIN
    reader = client.read(len(PAYLOAD) + 5)
    sock.sendall(PAYLOAD)
    sock.sendall(b"small")  # written the usual way, after the whole write
    reader.join(30)
    assert bytes(client.received) == PAYLOAD + b"small"
    assert sock._raw.getblocking() is False
    # Partial writes are back on: with the peer no longer reading, one send of more than the socket holds
    # returns what fitted (off, OpenSSL would hold the buffer and raise want-write instead).
    sent = sock._conn.send(PAYLOAD * 8)
    assert 0 < sent < len(PAYLOAD) * 8


def test_a_large_write_with_a_timeout_asked_for_is_written_the_usual_way(pair) -> None:
    sock, client = pair
    sock.settimeout(30.0)  # whole writes block without a deadline: not taken when one was asked for
    reader = client.read(len(PAYLOAD))
    sock.sendall(PAYLOAD)
    reader.join(30)
    assert bytes(client.received) == PAYLOAD
    assert sock._raw.getblocking() is False


def test_a_peer_gone_mid_write_fails_the_write(pair) -> None:
    sock, client = pair
    assert client.tls is not None
    client.tls.close()
    with pytest.raises(OSError):
        for _ in range(64):  # the first writes may still fit in the socket's buffer
            sock.sendall(PAYLOAD)
    assert sock._raw.getblocking() is False


def test_without_pyopenssls_mode_switch_a_large_write_takes_the_usual_path(pair, monkeypatch) -> None:
    """The whole write clears partial writes through pyOpenSSL's private binding; if a release hides it
    (``_partial_writes`` then says so), large answers still go out whole, record by record."""
    from mock_custodian import server

    assert server._partial_writes(object(), False) is False  # no binding to reach: it says so, touches nothing
    sock, client = pair
    monkeypatch.setattr(server, "_partial_writes", lambda _conn, _allowed: False)
    reader = client.read(len(PAYLOAD))
    sock.sendall(PAYLOAD)
    reader.join(30)
    assert bytes(client.received) == PAYLOAD
    assert sock._raw.getblocking() is False
