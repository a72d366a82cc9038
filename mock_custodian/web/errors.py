"""Errors to responses in one place: PG&E's terse body to the client, the precise reason to the request log.

Domain code raises :class:`~mock_custodian.errors.PGEError` subclasses; nothing else builds an error
response. A client mistake never becomes a 500: only an exception nobody anticipated does, and it is
logged with the request line.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mock_custodian.errors import MethodNotPermitted, NoListener, PGEError
from mock_custodian.vocabulary import TOKEN_PATHS
from mock_custodian.web.context import runtime
from mock_custodian.web.http import token_xml

log = logging.getLogger("mock_custodian")


def install(app: Flask) -> None:
    app.register_error_handler(PGEError, render_error)
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(Exception, render_unexpected)


def render_error(exc: PGEError) -> Response:
    # Kept for the request log: the precise reason is what the rehearsal pages show.
    g.error = exc.error
    g.error_reason = exc.reason or exc.description
    body, content_type = exc.body(), exc.content_type
    if (content_type.startswith("application/json") and request.path.rstrip("/") in TOKEN_PATHS
            and runtime().settings.token_format == "xml"):
        try:
            body, content_type = token_xml(json.loads(body)), "application/xml;charset=UTF-8"
        except ValueError:
            pass
    response = Response(body, status=exc.status, content_type=content_type)
    for name, value in exc.headers.items():
        response.headers[name] = value
    if exc.status in (400, 401, 403):
        response.headers["Cache-Control"] = "no-store"
    return response


def render_http_error(exc: HTTPException) -> Response:
    if isinstance(exc, MethodNotAllowed):
        return render_error(MethodNotPermitted(request.method))
    if exc.code == 404:
        return render_error(NoListener(request.path))
    if exc.code and 400 <= exc.code < 500:
        body = json.dumps({"error": "invalid_request", "error_description": exc.name}, separators=(",", ":"))
        return Response(body, exc.code, content_type="application/json;charset=UTF-8")
    return render_unexpected(exc)


def render_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        return render_http_error(exc)
    log.exception("unexpected error serving %s %s", request.method, request.path)
    return Response('{"error":"server_error"}', 500, content_type="application/json;charset=UTF-8")
