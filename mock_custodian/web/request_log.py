"""The request log: what each client sent and got, redacted, written before the answer leaves.

A test reads the log straight after its call, from any worker, so the row is committed in the
response's own after-request hook. It also feeds the rehearsal pages and the integration report, so
it records the client a request *claimed* even when it failed before authentication.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from typing import Any

from flask import Request, Response, g, request

from mock_custodian import tls
from mock_custodian.domain.tokens import presented
from mock_custodian.redaction import redacted_headers, redacted_query, shorten_parameters
from mock_custodian.store import request_log
from mock_custodian.web.context import is_sim_request, runtime, surface

log = logging.getLogger("mock_custodian")
_LOGGED = itertools.count(1)  # requests this worker logged: every PRUNE_EVERY-th applies the retention rule


def token_fingerprint(value: str) -> str:
    """A short hash that tells two tokens apart in the request log without keeping either."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def claimed_client_id(db: Any, req: Request, noted: dict[str, Any]) -> str | None:
    """The client_id a request claims (Basic user name, query parameter, or whose bearer token it carries).

    ``req`` and ``noted``: the request and ``g``'s attributes, resolved once by :func:`log_request`.
    """
    if surface() != "api":
        return None
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":  # parsed only when it is one (werkzeug's parse is the costly part of this function)
        auth = req.authorization
        if auth is not None and auth.type == "basic" and auth.username:
            return auth.username[:32]
    args = req.args
    claimed = args.get("client_id") or args.get("clientId")
    if claimed:
        return claimed[:32]
    if scheme == "bearer" and value.strip():
        known = noted.get("bearer")  # the handler already found whose it is: no second lookup
        if known is not None:
            return known.client_id
        found = presented(db, value.strip()[:64])
        return found.client_id if found is not None else None
    return None


def logged_parameters(req: Request) -> dict[str, Any] | None:
    """OAuth parameters by place, secrets shortened; the API host only (portal forms carry passwords)."""
    if surface() != "api":
        return None
    places: dict[str, Any] = {}
    if req.args:
        places["query"] = shorten_parameters(req.args.to_dict(flat=True))
    length = req.content_length
    if length and length <= 16384:
        mimetype = req.mimetype
        if mimetype == "application/x-www-form-urlencoded" and req.form:
            places["form"] = shorten_parameters(req.form.to_dict(flat=True))
        elif mimetype == "multipart/form-data" and req.form:
            places["unread"] = shorten_parameters(req.form.to_dict(flat=True))
            places["body"] = f"{mimetype} (not read by PG&E)"
        elif mimetype == "application/json":
            payload = req.get_json(silent=True)
            if isinstance(payload, dict):
                places["json"] = shorten_parameters({k: str(v) for k, v in payload.items()})
        elif req.get_data(cache=True):
            places["body"] = f"{mimetype or 'untyped'} ({length} bytes, not read by PG&E)"
            if mimetype in ("", "text/plain"):
                text = req.get_data(cache=True).decode("utf-8", "replace")
                pairs = dict(part.partition("=")[::2] for part in text.strip().split("&") if "=" in part)
                if pairs:
                    places["unread"] = shorten_parameters(pairs)
    return places or None


def report_facts(db: Any, response: Response, real_now: float, req: Request,
                 noted: dict[str, Any]) -> dict[str, Any]:
    """What the integration report needs beyond the log's basics: wall-clock time, which token, which chain."""
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    value = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if value is None and surface() == "api":  # a refresh grant: the form body, or the query as PG&E prints it
        form = req.form if req.mimetype == "application/x-www-form-urlencoded" else {}
        value = form.get("refresh_token") or req.args.get("refresh_token") or None
    kind = None
    known = noted.get("bearer")
    if value is not None and known is not None:  # the handler already classified it: no second lookup
        kind = known.token_kind
    elif value is not None:
        found = presented(db, value)
        kind = found.kind if found is not None else None
    retry_after = response.headers.get("Retry-After")
    peer = req.environ.get(tls.ENVIRON_KEY)
    return {
        "real_at": real_now,
        "token_fingerprint": token_fingerprint(value) if value else None,
        "token_kind": kind,
        "retry_after": int(retry_after) if retry_after and retry_after.isdigit() else None,
        "chain_length": getattr(peer, "chain_length", None),
    }


def log_request(response: Response) -> Response:
    """Record what the client sent and got, with secrets redacted, for request verification."""
    if is_sim_request():
        return response
    # The request and g resolved once: this hook reads them some twenty times (issue 17).
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    noted = vars(g._get_current_object())  # type: ignore[attr-defined]
    headers = redacted_headers(req.headers)
    rt = runtime()
    try:
        # A prebuilt insert on the driver connection (store/request_log.py): the row is only written,
        # never read back here, so neither the ORM nor Core earns its cost (issue 17).
        with rt.database.statements() as db:
            peer = req.environ.get(tls.ENVIRON_KEY)
            request_log.insert(db, dict(
                at=rt.clock.epoch(),
                surface=surface(),
                method=req.method,
                path=req.path,
                query=redacted_query(req.query_string.decode("latin-1")),
                status=response.status_code,
                client_id=noted.get("client_id"),
                claimed_client_id=claimed_client_id(db, req, noted),
                certificate_sha256=noted.get("certificate_sha256") or (peer.fingerprint_sha256 if peer else None),
                headers=headers,
                error=noted.get("error"),
                reason=noted.get("error_reason"),
                parameters=logged_parameters(req),
                worker_pid=os.getpid(),
                **report_facts(db, response, rt.clock.real_epoch(), req, noted),
            ))
            if next(_LOGGED) % request_log.PRUNE_EVERY == 0:
                request_log.prune(db, rt.settings.request_log_max_rows)  # the retention rule
    except Exception:  # the log must never turn a good answer into a 500
        log.exception("could not record request")
    return response
