"""Precise causes for token-endpoint refusals, for the request log and the rehearsal pages.

PG&E's bodies stay terse (``{"error":"invalid_client"}``); these texts go into the error's ``reason``
so a developer rehearsing the registration tests sees exactly what the mock saw.
"""

from __future__ import annotations

import base64
import binascii

from flask import request

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
CLIENT_CREDENTIAL_NAMES = ("client_id", "client_secret")


def parameter_places(name: str) -> list[str]:
    """Where a parameter arrived: places PG&E reads (query, form or JSON body) and places it does not."""
    places = []
    if name in request.args:
        places.append("query string")
    mimetype = request.mimetype
    if mimetype == FORM and name in request.form:
        places.append("form body")
    elif mimetype == JSON:
        payload = request.get_json(silent=True)
        if isinstance(payload, dict) and name in payload:
            places.append("JSON body")
    elif mimetype == "multipart/form-data" and name in request.form:
        places.append("multipart/form-data body")
    elif request.content_length and name.encode() in request.get_data(cache=True)[:65536]:
        places.append(f"{mimetype or 'untyped'} body")
    return places


def unread_parameter_hint(name: str) -> str | None:
    """Why a parameter the client did send was not read: it came in a body type PG&E ignores."""
    for place in parameter_places(name):
        if place not in ("query string", "form body", "JSON body"):
            return (f"{name} was sent in a {place}, which PG&E does not read; send it in the query string "
                    f"(PG&E's examples) or an {FORM} body")
    return None


def missing_grant_type_reason() -> str:
    return unread_parameter_hint("grant_type") or (
        "grant_type is missing: send grant_type=client_credentials (connectivity test) or "
        "grant_type=authorization_code (OAuth test) in the query string or a form body"
    )


def basic_header_reason() -> str:
    """The exact way the Authorization header falls short of ``Basic base64(client_id:client_secret)``."""
    header = request.headers.get("Authorization")
    sent_in_params = [n for n in CLIENT_CREDENTIAL_NAMES if parameter_places(n)]
    if not header:
        if sent_in_params:
            where = ", ".join(f"{n} in the {parameter_places(n)[0]}" for n in sent_in_params)
            return (f"no Authorization header; {where}, but PG&E reads client credentials only from "
                    "an HTTP Basic header: Authorization: Basic base64(client_id:client_secret)")
        return "no Authorization header; send Authorization: Basic base64(client_id:client_secret)"
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return (f"the Authorization header uses the {scheme!r} scheme; the token endpoint takes "
                "Basic base64(client_id:client_secret)")
    if not value.strip():
        return "the Basic header carries no value; send base64(client_id:client_secret) after 'Basic '"
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "the Basic value is not valid base64; encode client_id:client_secret with standard base64"
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return "the decoded Basic value is not UTF-8 text"
    if ":" not in text:
        return "the decoded Basic value has no ':'; it must be client_id:client_secret"
    return "the Basic header could not be read"


def body_credentials_reason() -> str:
    places = parameter_places("client_secret")
    where = places[0] if places else "request"
    return (f"client_secret was sent in the {where}; PG&E takes client credentials only in the HTTP Basic "
            "header and refuses a request that also carries them elsewhere")
