"""Serving through gunicorn with pyOpenSSL-terminated TLS on two listeners.

gunicorn's own TLS uses Python's ``ssl`` module, which aborts the handshake when a presented client
certificate is untrusted or expired. PG&E answers those with HTTP 400 ``Invalid Certificate``; to
reproduce that, this module's worker terminates TLS with pyOpenSSL, requests a certificate on the
API listener with a verify callback that accepts anything, and verifies it in the application.

The worker is gunicorn's threaded worker (``gthread``), whose arbiter heartbeat keeps running while
a request thread streams, so multi-minute responses are not killed after ``timeout`` seconds.
"""

from __future__ import annotations

import errno
import json
import logging
import mmap
import os
import secrets
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import TConn, ThreadWorker
from OpenSSL import SSL

from mock_custodian.pki import DevPKI
from mock_custodian.settings import Settings
from mock_custodian.tls import NO_CERTIFICATE, ClientCertificateVerifier, PeerCertificate

log = logging.getLogger("mock_custodian.server")

HANDSHAKE_TIMEOUT_S = 10.0
_CHUNK = 16384
# A write at least this large (a streamed feed's chunks are 256 KiB) is one SSL_write on a blocking socket:
# OpenSSL encrypts and sends it all in C, without the GIL and without a return to Python per 16 KiB record.
WHOLE_WRITE_MIN = 48 * 1024
# How long a worker that holds more connections than another leaves a new one for that other to
# accept (see ConnectionBoard); past it, it accepts the connection itself.
ACCEPT_DEFER_S = 0.012


class ConnectionBoard:
    """Each worker's open connection count, in memory shared by the arbiter and its workers.

    The workers accept from the same listening sockets, and which one wins a new connection is chance.
    A client with few keep-alive connections (a CI suite, a load test with four processes) then often
    has three or four of them on one worker: one core serves them under one interpreter lock while the
    other idles, and throughput halves from one run to the next. With the board, a worker that holds
    more connections than another leaves a new connection to it (least connections first).

    One slot per worker (``-1``: no worker); the arbiter gives a slot before the fork and frees it when
    the worker exits.
    """

    def __init__(self, slots: int) -> None:
        self._map = mmap.mmap(-1, 8 * slots)  # anonymous and shared: the forked workers see one memory
        self.counts = memoryview(self._map).cast("q")
        for i in range(slots):
            self.counts[i] = -1

    def claim(self, taken: set[int]) -> int:
        """A free slot (not in ``taken``, the live workers' slots) for a worker about to fork."""
        for i in range(len(self.counts)):
            if i not in taken:
                self.counts[i] = 0
                return i
        raise RuntimeError("no free connection-board slot")  # slots are twice the workers

    def free(self, slot: int) -> None:
        self.counts[slot] = -1

    def busier_than_another(self, slot: int) -> bool:
        """Whether some other live worker holds fewer open connections than ``slot``'s."""
        mine = self.counts[slot]
        return any(0 <= count < mine for i, count in enumerate(self.counts) if i != slot)


def _partial_writes(conn: SSL.Connection, allowed: bool) -> bool:
    """Turn OpenSSL's partial writes (pyOpenSSL's default) off or back on; False if pyOpenSSL hides the switch.

    With partial writes on, ``SSL_write`` returns after each 16 KiB record, so a 19 MB feed cost some 1,200
    trips through Python (each with its select when the socket was full); off, on a blocking socket, one
    call writes a whole chunk (issue 17).
    """
    lib, ssl_ptr = getattr(SSL, "_lib", None), getattr(conn, "_ssl", None)
    mode = getattr(lib, "SSL_MODE_ENABLE_PARTIAL_WRITE", None)
    if ssl_ptr is None or mode is None or not hasattr(lib, "SSL_clear_mode"):
        return False
    (lib.SSL_set_mode if allowed else lib.SSL_clear_mode)(ssl_ptr, mode)
    return True


class TLSSocket:
    """A socket-like object over a pyOpenSSL connection, shaped for gunicorn's reader and writer.

    The raw socket stays non-blocking; blocking behaviour (and timeouts) is emulated with select,
    which pyOpenSSL does not do itself.
    """

    def __init__(self, raw: socket.socket, conn: SSL.Connection, surface: str, peer: PeerCertificate) -> None:
        self._raw = raw
        self._conn = conn
        self._timeout: float | None = None
        self.surface = surface
        self.peer_certificate = peer

    # -- what gunicorn calls -------------------------------------------------------------------
    def fileno(self) -> int:
        return self._raw.fileno()

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def getpeername(self) -> Any:
        return self._raw.getpeername()

    def getsockname(self) -> Any:
        return self._raw.getsockname()

    def _wait(self, readable: bool, deadline: float | None) -> None:
        if self._timeout == 0.0:
            raise BlockingIOError(errno.EAGAIN, "would block")
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        fds = ([self._raw], [], []) if readable else ([], [self._raw], [])
        ready = select.select(*fds, remaining)
        if not any(ready):
            raise TimeoutError("timed out")

    def _deadline(self) -> float | None:
        return None if not self._timeout else time.monotonic() + self._timeout

    def recv(self, size: int) -> bytes:
        deadline = self._deadline()
        while True:
            try:
                return self._conn.recv(size)
            except SSL.WantReadError:
                self._wait(True, deadline)
            except SSL.WantWriteError:
                self._wait(False, deadline)
            except SSL.ZeroReturnError:
                return b""
            except SSL.SysCallError as exc:
                if exc.args and exc.args[0] in (-1, 0):
                    return b""  # peer closed without close_notify
                raise ConnectionResetError(errno.ECONNRESET, str(exc)) from exc
            except SSL.Error as exc:
                raise ConnectionResetError(errno.ECONNRESET, str(exc)) from exc

    def send(self, data: bytes) -> int:
        deadline = self._deadline()
        view = memoryview(data)[:_CHUNK]
        while True:
            try:
                return self._conn.send(view)
            except SSL.WantWriteError:
                self._wait(False, deadline)
            except SSL.WantReadError:
                self._wait(True, deadline)
            except SSL.Error as exc:
                raise BrokenPipeError(errno.EPIPE, str(exc)) from exc

    def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent = self.send(view)
            view = view[sent:]

    def _write_whole(self, data: bytes) -> None:
        """One ``SSL_write`` for all of ``data`` (partial writes off, blocking socket); after a want-read or
        want-write (an interrupted send) the same buffer is offered again, as OpenSSL requires."""
        while True:
            try:
                sent = self._conn.send(data)
            except SSL.WantWriteError:
                self._wait(False, None)
                continue
            except SSL.WantReadError:
                self._wait(True, None)
                continue
            except SSL.Error as exc:
                raise BrokenPipeError(errno.EPIPE, str(exc)) from exc
            if sent >= len(data):
                return
            data = memoryview(data)[sent:]

    def sendall(self, data: bytes) -> None:
        """Write everything. A large write, when no timeout was asked for (gunicorn asks none while it writes
        a response), is one call on a blocking socket; the socket and the mode are restored after it."""
        if len(data) >= WHOLE_WRITE_MIN and self._timeout is None and _partial_writes(self._conn, False):
            try:
                self._raw.setblocking(True)
                self._write_whole(data)
            finally:
                self._raw.setblocking(False)
                _partial_writes(self._conn, True)
            return
        self._send_all(data)

    def shutdown(self, how: int) -> None:
        try:
            self._conn.shutdown()
        except SSL.Error:
            pass
        self._raw.shutdown(how)

    def close(self) -> None:
        self._raw.close()


class TLSTerminator:
    """Builds the two pyOpenSSL contexts and performs the handshake for one accepted socket."""

    def __init__(self, settings: Settings, pki: DevPKI, portal_port: int) -> None:
        self.portal_port = portal_port
        self.portal_names = {n.lower() for n in settings.portal_host_names}
        trusted = Path(settings.trusted_ca_bundle) if settings.trusted_ca_bundle else pki.ca_bundle
        self.verifier = ClientCertificateVerifier(trusted.read_bytes(), settings.allow_self_signed)
        self.api_context = self._context(pki, trusted, request_client_cert=True)
        self.portal_context = self._context(pki, trusted, request_client_cert=False)
        # A resumed session carries the leaf but not the intermediate the client sent, so the chain check
        # would refuse it (issue 20): the API listener offers no resumption at all (no session cache, no
        # tickets; a full handshake every time). The portal, which asks for no certificate, keeps both.
        self.api_context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        self.api_context.set_options(SSL.OP_NO_TICKET)
        self.api_context.set_tlsext_servername_callback(self._on_server_name)

    @staticmethod
    def _context(pki: DevPKI, trusted: Path, request_client_cert: bool) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # PG&E: TLS 1.2 or higher
        ctx.use_certificate_chain_file(str(pki.server_chain))
        ctx.use_privatekey_file(str(pki.server_key))
        ctx.check_privatekey()
        ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
        # Kept even without a cache: OpenSSL fails handshakes that verify the peer without one. Distinct
        # per listener, so a portal session is never accepted for the API.
        ctx.set_session_id(b"mock-custodian-api" if request_client_cert else b"mock-custodian-portal")
        if request_client_cert:
            # Ask for a certificate but never fail the handshake over it: the app decides.
            ctx.set_verify(SSL.VERIFY_PEER, lambda *_args: True)
            ctx.load_client_ca(str(trusted).encode())
        else:
            ctx.set_verify(SSL.VERIFY_NONE)
        return ctx

    def _on_server_name(self, conn: SSL.Connection) -> None:
        name = conn.get_servername()
        if name and name.decode("ascii", "replace").lower() in self.portal_names:
            conn.set_context(self.portal_context)
            conn.set_verify(SSL.VERIFY_NONE)
            conn.set_app_data("portal")

    def wrap(self, raw: socket.socket, server_address: Any) -> TLSSocket:
        port = server_address[1] if isinstance(server_address, tuple) else None
        surface = "portal" if port == self.portal_port else "api"
        conn = SSL.Connection(self.api_context if surface == "api" else self.portal_context, raw)
        conn.set_accept_state()
        raw.setblocking(False)
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        while True:
            try:
                conn.do_handshake()
                break
            except (SSL.WantReadError, SSL.WantWriteError) as exc:
                remaining = deadline - time.monotonic()
                want_read = isinstance(exc, SSL.WantReadError)
                ready = select.select([raw] if want_read else [], [] if want_read else [raw], [],
                                      max(0.0, remaining))
                if remaining <= 0 or not any(ready):
                    raise ConnectionResetError(errno.ECONNRESET, "TLS handshake timed out") from None
            except SSL.Error as exc:
                raise ConnectionResetError(errno.ECONNRESET, f"TLS handshake failed: {exc}") from None
        if conn.get_app_data() == "portal":
            surface = "portal"
        peer = self._peer_certificate(conn) if surface == "api" else NO_CERTIFICATE
        return TLSSocket(raw, conn, surface, peer)

    def _peer_certificate(self, conn: SSL.Connection) -> PeerCertificate:
        leaf = conn.get_peer_certificate(as_cryptography=True)
        if leaf is None:
            return NO_CERTIFICATE
        chain: list[x509.Certificate] = conn.get_peer_cert_chain(as_cryptography=True) or []
        return self.verifier.verify(leaf, chain)


class _TLSConn(TConn):
    terminator: TLSTerminator

    def init(self) -> None:
        if self.initialized:
            return
        if not isinstance(self.sock, TLSSocket):
            self.sock = self.terminator.wrap(self.sock, self.server)
        super().init()


class TLSThreadWorker(ThreadWorker):
    """gunicorn's threaded worker with pyOpenSSL termination (see the module docstring), accepting
    least-connections first across workers (:class:`ConnectionBoard`)."""

    terminator: TLSTerminator | None = None
    board: ConnectionBoard | None = None
    board_slot = -1
    _open = 0
    _accept_paused_until = 0.0  # monotonic: a new connection is left to a less busy worker until then
    _counts_at_pause: bytes | None = None  # the board when this worker last left a connection waiting

    @property
    def nr_conns(self) -> int:  # type: ignore[override]
        """gunicorn's count of open connections, published on the board as it changes."""
        return self._open

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        self._open = value
        if self.board is not None and self.board_slot >= 0:
            self.board.counts[self.board_slot] = value

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and time.monotonic() < self._accept_paused_until:
            return  # gunicorn's loop re-enables accepting each turn: not while the pause lasts
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        pause = self._accept_paused_until - time.monotonic()
        super().wait_for_and_dispatch_events(min(timeout, pause) if pause > 0 else timeout)

    def _leave_to_another(self) -> bool:
        """Whether to leave the waiting connection to a worker with fewer (pausing accepts briefly).

        After a pause, a connection still waiting while no worker's count moved is one nobody else
        took (a worker stuck in a long request): this worker takes it.
        """
        board = self.board
        if board is None or self.board_slot < 0:
            return False
        counts = bytes(board.counts.cast("B"))
        if counts == self._counts_at_pause or not board.busier_than_another(self.board_slot):
            self._counts_at_pause = None
            return False
        self._counts_at_pause = counts
        self._accept_paused_until = time.monotonic() + ACCEPT_DEFER_S
        super().set_accept_enabled(False)
        return True

    def accept(self, listener: socket.socket) -> None:
        if self._leave_to_another():
            return
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            conn = _TLSConn(self.cfg, client_sock, client_addr, listener.getsockname())
            conn.terminator = self.terminator  # type: ignore[assignment]
            self.enqueue_req(conn)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise


class MockCustodianServer(BaseApplication):
    """The gunicorn application: binds the API and portal listeners, forks workers running the app."""

    def __init__(self, settings: Settings, pki: DevPKI, runtime_file: Path) -> None:
        self.settings = settings
        self.pki = pki
        self.runtime_file = runtime_file
        self.control_token_generated = settings.control_api and not settings.control_token
        if self.control_token_generated:
            # One per start, made before the workers fork so they all share it (see api/control.py).
            settings.control_token = secrets.token_urlsafe(24)
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        host = f"[{s.host}]" if ":" in s.host else s.host
        self.cfg.set("bind", [f"{host}:{s.api_port}", f"{host}:{s.portal_port}"])
        self.cfg.set("workers", s.workers)
        self.cfg.set("threads", s.threads)
        self.cfg.set("worker_class", "mock_custodian.server.TLSThreadWorker")
        # The app is imported and built once, here, before the workers fork: each worker is ready as soon
        # as it exists instead of importing Flask, SQLAlchemy and every blueprint itself, two or three
        # processes at once on a small machine (issue 17: restart <= 1 s). Each worker's database engine
        # is replaced after the fork (store.db.Database); nothing else in the app holds a connection.
        self.cfg.set("preload_app", True)
        self.cfg.set("sendfile", False)  # bytes must go through TLS, never os.sendfile on the raw fd
        self.cfg.set("timeout", s.worker_timeout)
        self.cfg.set("graceful_timeout", 5)
        self.cfg.set("keepalive", 5)
        self.cfg.set("accesslog", None)
        self.cfg.set("loglevel", os.environ.get("MOCK_CUSTODIAN_LOG_LEVEL", "warning"))
        self.cfg.set("when_ready", self._when_ready)
        self.cfg.set("pre_fork", self._pre_fork)
        self.cfg.set("child_exit", self._child_exit)
        self.cfg.set("post_worker_init", self._post_worker_init)
        TLSThreadWorker.board = ConnectionBoard(2 * s.workers + 2) if s.workers > 1 else None

    def _when_ready(self, arbiter: Any) -> None:
        """Listeners exist now: learn real ports (port 0 = random) before any worker forks."""
        ports = [lst.sock.getsockname()[1] for lst in arbiter.LISTENERS]
        self.settings.api_port, self.settings.portal_port = ports[0], ports[1]
        runtime = {
            "pid": os.getpid(),
            "api_port": ports[0],
            "portal_port": ports[1],
            "api_base_url": self.settings.resolved_api_base_url(),
            "portal_base_url": self.settings.resolved_portal_base_url(),
            "ca_bundle": str(self.pki.ca_bundle),
            "started_at": time.time(),
            "control_token": self.settings.control_token if self.settings.control_api else None,
        }
        tmp = self.runtime_file.with_suffix(".tmp")
        tmp.touch(mode=0o600)  # it holds the control token
        tmp.write_text(json.dumps(runtime, indent=2))
        tmp.replace(self.runtime_file)
        print(
            f"mock-custodian ready: API {runtime['api_base_url']}  portal {runtime['portal_base_url']}  "
            f"CA bundle {runtime['ca_bundle']}",
            flush=True,
        )
        if self.settings.control_api:
            shown = self.settings.control_token if self.control_token_generated else "(MOCK_CUSTODIAN_CONTROL_TOKEN)"
            print(f"mock-custodian control API: {runtime['portal_base_url']}/__sim/  X-Control-Token: {shown}",
                  flush=True)

    @staticmethod
    def _pre_fork(arbiter: Any, worker: Any) -> None:
        board = TLSThreadWorker.board
        if board is not None:
            worker.board_slot = board.claim({w.board_slot for w in arbiter.WORKERS.values()})

    @staticmethod
    def _child_exit(_arbiter: Any, worker: Any) -> None:
        board = TLSThreadWorker.board
        if board is not None and worker.board_slot >= 0:
            board.free(worker.board_slot)

    def _post_worker_init(self, worker: Any) -> None:
        TLSThreadWorker.terminator = TLSTerminator(self.settings, self.pki, self.settings.portal_port)
        from mock_custodian.store.db import start_checkpoints

        start_checkpoints(self.settings.resolved_database_url())  # SQLite: off the request path (store.db)

    def load(self) -> Any:
        from mock_custodian.app import create_app

        return create_app(self.settings)

    def run(self) -> None:
        """gunicorn's arbiter, also keeping the job worker process alive unless ``job_worker`` is off."""
        arbiter = _Arbiter(self)
        if self.settings.job_worker:
            from mock_custodian.jobs.config import WorkerConfig
            from mock_custodian.jobs.supervisor import JobWorkerPool

            WorkerConfig.from_settings(self.settings)  # a bad notify_* / daily_* setting fails the start
            arbiter.job_worker = JobWorkerPool(self.settings)
        try:
            arbiter.run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
            sys.exit(1)


class _Arbiter(Arbiter):
    """The arbiter's loop (about once a second) also restarts the job worker; stopping stops it too."""

    job_worker: Any = None

    def manage_workers(self) -> None:
        super().manage_workers()
        if self.job_worker is not None:
            self.job_worker.ensure_running()

    def stop(self, graceful: bool = True) -> None:
        if self.job_worker is not None:
            self.job_worker.stop()
        super().stop(graceful)
