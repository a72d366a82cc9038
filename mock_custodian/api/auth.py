"""The one place that decides which class of bearer token a request carries, whose it is, and whether
it is good now (spec 2.3, 4.12, 5.5, 6.8, 8.3).

Classes: ``client_access`` (CAT, from client_credentials), ``access`` (AT, a customer access token
bound to one authorization) and ``registration`` (RAT, the registration's
``registration_access_token``). Checks run in PG&E's order: presence (401), then validity and class
(403), then ownership through the client certificate (403), then, for an AT, that its authorization
is still in force (403). Refresh tokens are never bearer credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from mock_custodian.domain.authorizations import CUSTOMER_KINDS, is_live
from mock_custodian.domain.tokens import ACCESS, CLIENT_ACCESS, CLIENT_REFRESH, REFRESH
from mock_custodian.errors import Forbidden, MissingToken, NotFound
from mock_custodian.store.db import row_id
from mock_custodian.store.hashed import token_key
from mock_custodian.store.models import Authorization, ThirdParty, Token
from mock_custodian.vocabulary import CREDENTIALED
from mock_custodian.web.context import certificate_belongs_to, runtime

CAT = CLIENT_ACCESS
AT = ACCESS
RAT = "registration"
TOKEN_CLASS_NAMES = {CAT: "client access token", AT: "customer access token", RAT: "registration access token"}


@dataclass(frozen=True)
class Bearer:
    """A bearer credential that passed every check; ``token`` is None for a RAT, ``authorization`` only for an AT."""

    token_class: str
    third_party: ThirdParty
    token: Token | None
    authorization: Authorization | None

    @property
    def authorization_id(self) -> int | None:
        return self.authorization.id if self.authorization is not None else None


def _classify(db: Session, value: str, now: float) -> tuple[str, Token | None, ThirdParty | None]:
    """Which class a presented value is; unknown, expired, revoked and refresh tokens are 403."""
    token = db.get(Token, token_key(value))
    if token is None:
        tp = db.execute(select(ThirdParty).where(ThirdParty.registration_access_token == value)).scalar_one_or_none()
        if tp is None:
            raise Forbidden("Invalid access token")
        return RAT, None, tp
    if token.kind in (CLIENT_REFRESH, REFRESH):
        raise Forbidden("A refresh token is not an access token; exchange it at the token endpoint")
    if token.revoked_at is not None:
        raise Forbidden("Access token has been revoked")
    if token.expires_at <= now:
        raise Forbidden("Access token expired")
    return token.kind, token, db.get(ThirdParty, token.third_party_id)


def require_bearer(*classes: str) -> Bearer:
    """Authenticate this request's ``Authorization: Bearer`` for a resource taking ``classes``.

    Sets ``g.client_id`` (request log) and ``g.bearer``. A customer access token from the OAuth Test
    harness is refused on every resource (spec 5.5); so is an AT whose authorization ended.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise MissingToken()
    rt = runtime()
    with rt.database.session() as db:
        now = rt.clock.epoch()
        token_class, token, tp = _classify(db, value.strip(), now)
        if tp is None:
            raise Forbidden("Invalid access token")
        g.client_id = tp.client_id
        if token_class not in classes:
            wanted = " or ".join(TOKEN_CLASS_NAMES.get(c, c) for c in classes)
            raise Forbidden(f"A {TOKEN_CLASS_NAMES[token_class]} cannot be used here; this resource takes a {wanted}",
                            "insufficient_scope")
        if not certificate_belongs_to(tp.id):
            raise Forbidden("The client certificate is not registered to the client this token was issued to")
        if tp.status not in CREDENTIALED:
            raise Forbidden("The registration is no longer active")
        authorization = None
        if token_class == AT:
            if token is None or token.authorization_id is None:
                raise Forbidden("An OAuth Test harness token cannot be used on data resources")
            authorization = db.get(Authorization, token.authorization_id)
            if authorization is None or not is_live(authorization, now):
                raise Forbidden("The authorization of this token has been revoked or has expired")
            # Loaded now, so resources can read them after this session closes.
            _ = (authorization.third_party, list(authorization.service_agreements), authorization.customer)
        bearer = Bearer(token_class, tp, token, authorization)
        g.bearer = bearer
        return bearer


def require_own_authorization(bearer: Bearer, authorization_id: int | str) -> Authorization:
    """The subscription (= authorization = retail customer) a resource path names, for an AT's holder.

    Unknown ID: 404. Another client's, or another subscription of the same client: 403.
    """
    key = row_id(authorization_id)
    if key is None:
        raise NotFound()
    if bearer.authorization is not None and bearer.authorization.id == key:
        return bearer.authorization
    rt = runtime()
    with rt.database.session() as db:
        target = db.get(Authorization, key)
        if target is None or target.kind not in CUSTOMER_KINDS:
            raise NotFound()
    if target.third_party_id != bearer.third_party.id:
        raise Forbidden("The resource belongs to another client")
    raise Forbidden("The token was issued for another subscription")
