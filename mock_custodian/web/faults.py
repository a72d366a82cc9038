"""Applying injected faults to inbound requests (scaffolding, spec 1.4; rules in ``domain/faults.py``).

A before-request hook, run after the certificate guard so a fault scoped to a client can match the
certificate's owner, claims the fault that fires (if any) and acts: an error answer, a delay, an
expired token, or a mark for the WSGI middleware, which alone can drop a connection or cut a
response part-way. ``/__sim/`` itself is never faulted.
"""

from __future__ import annotations

import errno
import http
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mock_custodian.domain.faults import FiredFault, claim_request_fault
from mock_custodian.errors import InjectedFault
from mock_custodian.store.hashed import token_key
from mock_custodian.store.models import ThirdParty, Token
from mock_custodian.web.context import is_sim_request, runtime, surface

log = logging.getLogger("mock_custodian.faults")

FAULT_KEY = "mock_custodian.fault"
DEFAULT_CUT_BYTES = 1024
DROPPED_STATUS = 0  # what the request log records for a connection closed without an answer


def install(app: Flask) -> None:
    """The connection-level middleware; the hook, :func:`apply_fault`, runs on each host after its guard."""
    app.wsgi_app = FaultMiddleware(app.wsgi_app)  # type: ignore[method-assign]


def _client_ids(db: Session) -> set[str]:
    """Who the request is from: its certificate's owners, and the client_id it claims."""
    ids: set[str] = set()
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username:
        ids.add(auth.username)
    for name in ("client_id", "clientId"):
        if request.args.get(name):
            ids.add(request.args[name])
    owners = getattr(g, "certificate_owner_ids", None)
    if owners:
        ids.update(db.execute(select(ThirdParty.client_id).where(ThirdParty.id.in_(owners))).scalars())
    return ids


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def apply_fault() -> Response | None:
    """Claim the fault that fires for this request, if any, and act on it."""
    if is_sim_request() or not g.get("faults_armed", True):
        return None  # the guard's transaction found no fault configured
    rt = runtime()
    bearer = _bearer()
    now = rt.clock.epoch()
    with rt.database.session() as db:
        fault = claim_request_fault(
            db, method=request.method, path=request.path, surface=surface(),
            client_ids=_LazyIds(lambda: _client_ids(db)), has_bearer=bearer is not None, now=now,
        )
        if fault is not None and fault.kind == "token_expired":
            db.execute(update(Token).where(Token.token == token_key(bearer), Token.expires_at > now)
                       .values(expires_at=now))
    if fault is None:
        return None
    log.info("%s on %s %s", fault.reason, request.method, request.path)
    delay_ms = fault.params.get("delay_ms") or 0
    if delay_ms:
        time.sleep(delay_ms / 1000.0)  # real latency, on purpose: the client's timeouts are real
    g.error = "injected_fault"
    g.error_reason = fault.reason
    return _act(fault)


class _LazyIds:
    """A set of client ids computed only if some fault is scoped to a client."""

    def __init__(self, compute: Callable[[], set[str]]) -> None:
        self._compute = compute
        self._value: set[str] | None = None

    def __contains__(self, item: object) -> bool:
        if self._value is None:
            self._value = self._compute()
        return item in self._value


def _act(fault: FiredFault) -> Response | None:
    kind = fault.kind
    params = fault.params
    if kind == "http_error":
        raise InjectedFault(*_error_body(params["status"], params["body_format"], params.get("body")),
                            reason=fault.reason, headers=_retry_after(params))
    if kind == "rate_limit":
        body = json.dumps({"error": "rate_limit_exceeded", "error_description": "Rate limit exceeded"},
                          separators=(",", ":"))
        raise InjectedFault(429, body, "application/json;charset=UTF-8", fault.reason,
                            headers={"Retry-After": str(params["retry_after"])})
    if kind == "maintenance":
        raise InjectedFault(503, '{"error":"service_unavailable"}', "application/json;charset=UTF-8", fault.reason,
                            headers=_retry_after(params))
    if kind == "empty_204":
        response = Response(status=204)
        response.headers.pop("Content-Type", None)
        return response
    if kind == "drop":
        request.environ[FAULT_KEY] = fault
        return Response(b"", status=DROPPED_STATUS)
    if kind == "cut":
        request.environ[FAULT_KEY] = fault
        return None
    # latency: the delay was the whole fault; token_expired: the real check now refuses the token.
    g.error = None
    g.error_reason = None
    return None


def _retry_after(params: dict[str, Any]) -> dict[str, str]:
    return {"Retry-After": str(params["retry_after"])} if params.get("retry_after") is not None else {}


def _error_body(status: int, body_format: str, body: str | None) -> tuple[int, str, str]:
    phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Error"
    if body_format == "html":
        text = body if body is not None else (
            f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1></body></html>"
        )
        return status, text, "text/html;charset=UTF-8"
    if body_format == "plain":
        return status, body if body is not None else f"{status} {phrase}", "text/plain;charset=UTF-8"
    default = {"error": "server_error" if status >= 500 else "invalid_request", "error_description": phrase}
    return status, body if body is not None else json.dumps(default, separators=(",", ":")), (
        "application/json;charset=UTF-8"
    )


class FaultMiddleware:
    """Drops the connection, or cuts the body part-way, for requests the hook marked."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            captured["headers"] = headers
            marked = environ.get(FAULT_KEY)
            if marked is not None and marked.kind == "drop":
                return lambda _data: None  # nothing reaches the client: the connection is dropped below
            return start_response(status, headers, *args)

        result = self.app(environ, capture)
        fault: FiredFault | None = environ.get(FAULT_KEY)
        if fault is None:
            return result
        if fault.kind == "drop":
            _close(result)
            _abort(environ)
            raise ConnectionResetError(errno.ECONNRESET, fault.reason)
        length = next((int(v) for k, v in captured.get("headers", []) if k.lower() == "content-length"), None)
        limit = fault.params.get("after_bytes")
        if limit is None:
            limit = length // 2 if length else DEFAULT_CUT_BYTES
        return _cut(result, environ, limit, fault.reason)


def _cut(result: Iterable[bytes], environ: dict[str, Any], limit: int, reason: str) -> Iterator[bytes]:
    sent = 0
    try:
        for chunk in result:
            if sent + len(chunk) >= limit:
                if limit > sent:
                    yield chunk[: limit - sent]
                break
            sent += len(chunk)
            yield chunk
    finally:
        _close(result)
    _abort(environ)
    raise ConnectionResetError(errno.ECONNRESET, reason)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _abort(environ: dict[str, Any]) -> None:
    """Close the client's connection now; gunicorn then treats the request as reset by the peer."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
