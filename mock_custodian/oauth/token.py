"""PG&E's token endpoints (spec 4.8, 4.9): production and test, parameters anywhere, PG&E's keys.

Handlers parse, call one backend function (``store.tokens``, ``store.grants``), render. The grants
are PG&E's, not RFC 6749's shapes: ``client_access_token`` for client credentials, three URIs and a
``scope=``-prefixed scope for a code exchange, rotation on every refresh, keys in PG&E's order
(never through ``jsonify``, which sorts them). authlib's server classes would impose RFC 6749's
shapes and parameter sources, so the protocol rules live in ``store.grants`` instead.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from urllib.parse import unquote

from flask import Blueprint, Response, g, request

from mock_custodian.domain import grants, tokens
from mock_custodian.domain.grants import IssuedTokens
from mock_custodian.domain.milestones import OAUTH_TEST, record_milestone
from mock_custodian.domain.registry import authenticated_client
from mock_custodian.domain.scope import authorization_scope, registration_scope, token_scope
from mock_custodian.errors import InvalidClient, OAuthError
from mock_custodian.oauth import diagnosis
from mock_custodian.settings import Settings
from mock_custodian.store.models import ThirdParty
from mock_custodian.vocabulary import RegistrationStatus
from mock_custodian.web.context import certificate_belongs_to, runtime
from mock_custodian.web.http import no_store, token_xml

blueprint = Blueprint("token", __name__)

GRANT_TYPES = ("client_credentials", "authorization_code", "refresh_token")


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
        response = Response(token_xml(payload), 200, content_type="application/xml;charset=UTF-8")
    else:
        response = Response(json.dumps(payload), 200, content_type="application/json;charset=UTF-8")
    return no_store(response)


def customer_uris(resource_base: str, authorization_id: int | str, style: str = "plain") -> dict[str, str]:
    """resourceURI, authorizationURI, customerResourceURI: one ID, never swapped (spec 4.10, section 9 item 4)."""
    subscription = f"{resource_base}/Batch/Subscription" if style == "batch" else f"{resource_base}/Subscription"
    return {
        "resourceURI": f"{subscription}/{authorization_id}",
        "authorizationURI": f"{resource_base}/Authorization/{authorization_id}",
        "customerResourceURI": f"{resource_base}/Batch/RetailCustomer/{authorization_id}",
    }


def _client_payload(settings: Settings, access_token: str, expires_in: int,
                    refresh_token: str | None) -> OrderedDict[str, object]:
    """PG&E's client-credentials keys, in its order; ``client_access_token``, never ``access_token``."""
    payload: OrderedDict[str, object] = OrderedDict(
        client_access_token=access_token,
        expires_in=expires_in,
        scope=settings.client_token_scope,
        token_type="Bearer",
    )
    if refresh_token:
        payload["refresh_token"] = refresh_token
    return payload


def customer_token_payload(issued: IssuedTokens, tp: ThirdParty, *, refreshing: bool) -> OrderedDict[str, object]:
    """access_token, token_type, expires_in, refresh_token, scope, resourceURI, authorizationURI[, customer]."""
    rt = runtime()
    settings = rt.settings
    resource_base = rt.resource_base_url()
    if issued.harness:
        # The OAuth Test harness's answer (spec 5.5 step 6): no customer, fixed ".../test" URIs.
        scope = registration_scope(tp.data_groups or [], tp.history_months, tp.client_id, runtime().scope_spelling)
        uris = {"resourceURI": f"{resource_base}/Batch/Subscription/test",
                "authorizationURI": f"{resource_base}/Authorization/test"}
    else:
        assert issued.authorization is not None
        scope = authorization_scope(issued.authorization, runtime().scope_spelling)
        uris = customer_uris(resource_base, issued.authorization.id, settings.resource_uri_style)
        if refreshing and not settings.refresh_includes_customer_uri:
            del uris["customerResourceURI"]
    payload: OrderedDict[str, object] = OrderedDict(
        access_token=issued.access_token,
        token_type="Bearer",
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=token_scope(scope, settings.token_scope_prefix),
    )
    payload.update(uris)
    return payload


def _token(endpoint: str) -> Response:
    rt = runtime()
    settings = rt.settings
    client_id, client_secret = basic_credentials()
    # Authentication and a client_credentials grant are prebuilt statements on the driver connection,
    # in one transaction (the most frequent call a client makes, issue 17); the code and refresh grants
    # load the registration through the ORM.
    with rt.database.statements() as raw:
        client = authenticated_client(raw, client_id, client_secret)
        g.client_id = client.client_id
        if not certificate_belongs_to(client.id):
            # A valid certificate of another registration (spec 3.4).
            raise InvalidClient("The client certificate is not registered to this client",
                                reason=f"the client certificate is not the one registered to client "
                                       f"{client.client_id} (the Basic header's client_id); present that client's "
                                       "registered certificate")
        params = token_parameters()
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "Missing grant_type", reason=diagnosis.missing_grant_type_reason())
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        if endpoint == "production" and client.status != RegistrationStatus.APPROVED:
            raise OAuthError("unauthorized_client", "The registration is not approved for production")
        now = rt.clock.epoch()
        if grant_type == "client_credentials":
            issued_client = tokens.issue_client_access_token(
                raw, client, endpoint, now, settings.client_token_ttl, settings.refresh_token_ttl,
                settings.client_refresh_token_in_response,
            )
            return render_token(_client_payload(settings, issued_client.client_access_token,
                                                issued_client.expires_in, issued_client.refresh_token))
    with rt.database.session() as db:
        tp = db.get(ThirdParty, client.id)
        if tp is None:  # deleted in between
            raise InvalidClient(reason=f"the Basic header's client_id {client_id!r} is not a registered client_id")
        if grant_type == "authorization_code":
            issued = grants.exchange_code(
                db, tp, code=params.get("code"), redirect_uri=params.get("redirect_uri"), endpoint=endpoint,
                now=now, code_ttl=settings.code_ttl, access_ttl=settings.access_token_ttl,
                refresh_ttl=settings.refresh_token_ttl,
            )
            if issued.harness:
                record_milestone(db, tp, OAUTH_TEST, now)
            return render_token(customer_token_payload(issued, tp, refreshing=False))
        issued = grants.refresh(
            db, tp, refresh_token=params.get("refresh_token"), endpoint=endpoint, now=now,
            access_ttl=settings.access_token_ttl, client_ttl=settings.client_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
        )
        if issued.token_kind == tokens.CLIENT_ACCESS:
            # A client refresh token mirrors the grant it came from (spec 4.11).
            return render_token(_client_payload(settings, issued.access_token, issued.expires_in,
                                                issued.refresh_token))
        return render_token(customer_token_payload(issued, tp, refreshing=True))


@blueprint.route("/datacustodian/oauth/v2/token", methods=["POST"])
@blueprint.route("/datacustodian/oauth/v2/token/", methods=["POST"])  # tolerated, as resources tolerate it
def production_token() -> Response:
    return _token("production")


@blueprint.route("/datacustodian/test/oauth/v2/token", methods=["POST"])
@blueprint.route("/datacustodian/test/oauth/v2/token/", methods=["POST"])
def test_token() -> Response:
    return _token("test")
