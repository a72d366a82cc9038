"""PG&E's token endpoints (spec 4.8, 4.9): production and test, parameters anywhere, PG&E's keys.

Handlers parse, call one backend function, render. This module implements the common rules and
``grant_type=client_credentials``; ``authorization_code`` and ``refresh_token`` arrive with the
customer-authorization work.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from urllib.parse import unquote

from flask import Blueprint, Response, g, request
from lxml import etree

from ..app import runtime
from ..errors import InvalidClient, OAuthError
from ..store import tokens
from ..store.registry import authenticate_client
from . import diagnosis

blueprint = Blueprint("token", __name__)

TOKEN_XML_NAMESPACE = "https://api.pge.com/datacustodian/oauth/v2/token"


def token_parameters() -> dict[str, str]:
    """Merge query string, form body and flat JSON body; one name with two values is an error."""
    merged: dict[str, str] = {}
    sources: list[dict[str, str]] = [request.args.to_dict(flat=True)]
    if request.mimetype == "application/x-www-form-urlencoded":
        sources.append(request.form.to_dict(flat=True))
    elif request.mimetype == "application/json" and request.get_data():
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            raise OAuthError("invalid_request", "The JSON body must be a flat object")
        sources.append({k: str(v) for k, v in payload.items() if not isinstance(v, dict | list)})
    for source in sources:
        for name, value in source.items():
            if name in merged and merged[name] != value:
                raise OAuthError("invalid_request", f"Parameter {name} has conflicting values")
            merged[name] = value
    if "client_secret" in merged:
        raise InvalidClient("Client credentials must be sent with HTTP Basic authentication",
                            reason=diagnosis.body_credentials_reason())
    return merged


def basic_credentials() -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise InvalidClient(reason=diagnosis.basic_header_reason())
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient(reason=diagnosis.basic_header_reason()) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient(reason=diagnosis.basic_header_reason())
    return unquote(client_id), unquote(secret)


def render_token(payload: OrderedDict[str, object]) -> Response:
    """JSON by default (PG&E production); ``token_format=xml`` gives PG&E's documented XML shape."""
    if runtime().settings.token_format == "xml":
        root = etree.Element(f"{{{TOKEN_XML_NAMESPACE}}}Response", nsmap={None: TOKEN_XML_NAMESPACE})
        for key, value in payload.items():
            etree.SubElement(root, f"{{{TOKEN_XML_NAMESPACE}}}{key}").text = str(value)
        body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        response = Response(body, 200, content_type="application/xml;charset=UTF-8")
    else:
        response = Response(json.dumps(payload), 200, content_type="application/json;charset=UTF-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _token(endpoint: str) -> Response:
    rt = runtime()
    settings = rt.settings
    client_id, client_secret = basic_credentials()
    with rt.database.session() as db:
        tp = authenticate_client(db, client_id, client_secret)
        g.client_id = tp.client_id
        if tp.id not in g.certificate_owner_ids:
            # A valid certificate of another registration (spec 3.4).
            raise InvalidClient("The client certificate is not registered to this client",
                                reason=f"the client certificate is not the one registered to client {tp.client_id} "
                                       "(the Basic header's client_id); present that client's registered certificate")
        params = token_parameters()
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "Missing grant_type", reason=diagnosis.missing_grant_type_reason())
        if grant_type == "client_credentials":
            issued = tokens.issue_client_access_token(
                db, tp, endpoint, rt.clock.epoch(), settings.client_token_ttl, settings.refresh_token_ttl,
                settings.client_refresh_token_in_response,
            )
            payload: OrderedDict[str, object] = OrderedDict(
                client_access_token=issued.client_access_token,
                expires_in=issued.expires_in,
                scope=settings.client_token_scope,
                token_type="Bearer",
            )
            if issued.refresh_token:
                payload["refresh_token"] = issued.refresh_token
            return render_token(payload)
        if grant_type in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", f"{grant_type} is not available in this build yet")
        raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant_type}")


@blueprint.route("/datacustodian/oauth/v2/token", methods=["POST"])
def production_token() -> Response:
    return _token("production")


@blueprint.route("/datacustodian/test/oauth/v2/token", methods=["POST"])
def test_token() -> Response:
    return _token("test")
