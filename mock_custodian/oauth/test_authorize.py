"""``/datacustodian/test/oauth/v2/authorize`` (spec 5.5 step 3-4): the OAuth Test harness's authorize endpoint.

On the API host but never asks for a client certificate (the guard exempts it): a browser arrives here.
Parameter problems are JSON 400s such as ``{"error":"invalid_request","error_description":"client_id is empty"}``.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from mock_custodian.domain.harness import authorize_test
from mock_custodian.errors import OAuthError
from mock_custodian.web.context import runtime

blueprint = Blueprint("oauth_test_harness", __name__)


def _parameters() -> dict[str, str]:
    """Query string, form body or flat JSON body, as at the token endpoints (spec 2.2 rows 4-6)."""
    merged = request.args.to_dict(flat=True)
    body: dict[str, str] = {}
    if request.mimetype == "application/x-www-form-urlencoded":
        body = request.form.to_dict(flat=True)
    elif request.mimetype == "application/json" and request.get_data():
        payload = request.get_json(silent=True)
        if isinstance(payload, dict):
            body = {k: str(v) for k, v in payload.items() if not isinstance(v, dict | list)}
    for name, value in body.items():
        if name in merged and merged[name] != value:
            raise OAuthError("invalid_request", f"Parameter {name} has conflicting values")
        merged[name] = value
    return merged


@blueprint.route("/datacustodian/test/oauth/v2/authorize", methods=["GET", "POST"])
def test_authorize() -> Response:
    """Check client_id, redirect_uri, response_type; 302 to the redirect URI with a test authorization_code."""
    params = _parameters()
    rt = runtime()
    with rt.database.session() as db:
        tp, location = authorize_test(
            db, client_id=params.get("client_id", "").strip(), redirect_uri=params.get("redirect_uri", ""),
            response_type=params.get("response_type", ""), state=params.get("state"), now=rt.clock.epoch(),
            code_param=getattr(rt.settings, "redirect_code_param", "authorization_code"),
        )
        g.client_id = tp.client_id
    response = Response("", 302)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response
