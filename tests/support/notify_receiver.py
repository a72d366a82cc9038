"""A third party's notification receiver for tests: real HTTPS on 127.0.0.1, a random port, a dev-CA
server certificate, and a required client certificate (recorded with every POST)."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509

from mock_custodian.pki import DevPKI


@dataclass(frozen=True)
class ReceivedPost:
    path: str
    headers: dict[str, str]
    body: bytes
    client_cert_sha256: str | None
    client_subject: str | None
    at: float


class NotificationReceiver:
    """Start with :meth:`start` (or ``start(listen=False)`` for a port that refuses connections until
    :meth:`listen`). ``statuses`` answers the next POSTs with those codes (then 200); ``delay_s`` stalls."""

    def __init__(self, certs_dir: Path, name: str = "receiver") -> None:
        pki = DevPKI(certs_dir)
        if not pki.exists():
            pki.ensure([])  # a CA of its own: a receiver the data custodian must not trust
        files = pki.issue(f"{name}-{time.monotonic_ns()}", server_names=["127.0.0.1", "localhost"])
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(files.chain), str(files.key))
        self.context.verify_mode = ssl.CERT_REQUIRED  # a POST without the data custodian's certificate fails
        self.context.load_verify_locations(str(pki.ca_bundle))
        self.posts: list[ReceivedPost] = []
        self.refused_handshakes = 0
        self.statuses: list[int] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, listen: bool = True) -> NotificationReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                try:
                    self.request.do_handshake()
                except (ssl.SSLError, OSError):
                    with receiver._lock:
                        receiver.refused_handshakes += 1
                    raise
                super().setup()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                der = self.request.getpeercert(binary_form=True)
                subject = None
                if der:
                    cert = x509.load_der_x509_certificate(der)
                    subject = cert.subject.rfc4514_string()
                post = ReceivedPost(self.path, dict(self.headers.items()), body,
                                    hashlib.sha256(der).hexdigest() if der else None, subject, time.time())
                with receiver._lock:
                    receiver.posts.append(post)
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    delay = receiver.delay_s
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        server.daemon_threads = True
        server.handle_error = lambda *_args: None  # type: ignore[method-assign]  # refused handshakes are counted
        server.allow_reuse_address = True
        server.server_bind()
        server.socket = self.context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        if listen:
            self.listen()
        return self

    def listen(self) -> None:
        """Begin accepting: until now the bound port refused every connection (a receiver that is down)."""
        assert self._server is not None
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/pge/notify"

    # --- waiting ---------------------------------------------------------------------------------
    def wait_for(self, count: int, timeout: float = 15.0,
                 poke: Callable[[], object] | None = None) -> list[ReceivedPost]:
        """Until ``count`` POSTs arrived (bounded); ``poke`` runs between looks (e.g. release due work)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            if poke is not None:
                poke()
            time.sleep(0.05)
        with self._lock:
            raise AssertionError(f"expected {count} notification POST(s) within {timeout}s, got {len(self.posts)}")

    def quiet_for(self, seconds: float) -> list[ReceivedPost]:
        """What arrived after waiting ``seconds`` (to assert that nothing more comes)."""
        time.sleep(seconds)
        with self._lock:
            return list(self.posts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
