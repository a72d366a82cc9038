"""Bearer-token checks for resource endpoints, in PG&E's order (spec 2.3)."""

from __future__ import annotations

from flask import g, request

from ..app import runtime
from ..errors import Forbidden, MissingToken
from ..store.models import ThirdParty, Token
from ..store.tokens import bearer_token


def require_token(*kinds: str) -> tuple[Token, ThirdParty]:
    """Presence (401), validity and class (403), then certificate ownership (403)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise MissingToken()
    rt = runtime()
    with rt.database.session() as db:
        token = bearer_token(db, value.strip(), rt.clock.epoch(), kinds)
        tp = db.get(ThirdParty, token.third_party_id)
        assert tp is not None
        g.client_id = tp.client_id
        if tp.id not in g.certificate_owner_ids:
            raise Forbidden("The client certificate is not registered to the client this token was issued to")
        if tp.status not in ("accepted", "approved", "on_hold"):
            raise Forbidden("The registration is no longer active")
        return token, tp
