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
from functools import cached_property

from flask import g, request
from sqlalchemy.orm import Session, joinedload, selectinload

from mock_custodian.domain.authorizations import CUSTOMER_KINDS, is_live
from mock_custodian.domain.tokens import ACCESS, CLIENT_ACCESS, CLIENT_REFRESH, REFRESH, Presented, presented
from mock_custodian.errors import Forbidden, MissingToken, NotFound
from mock_custodian.store.db import Raw, row_id
from mock_custodian.store.models import Authorization, ThirdParty
from mock_custodian.vocabulary import CREDENTIALED
from mock_custodian.web.context import certificate_belongs_to, runtime

CAT = CLIENT_ACCESS
AT = ACCESS
RAT = "registration"
TOKEN_CLASS_NAMES = {CAT: "client access token", AT: "customer access token", RAT: "registration access token"}


@dataclass(frozen=True)
class Bearer:
    """A bearer credential that passed every check: its class, its registration, and for an AT the
    authorization (loaded with its service agreements and customer). ``token_kind`` None: a RAT."""

    token_class: str
    third_party_id: int
    client_id: str
    status: str
    token_kind: str | None
    authorization: Authorization | None

    @property
    def authorization_id(self) -> int | None:
        return self.authorization.id if self.authorization is not None else None

    @cached_property
    def third_party(self) -> ThirdParty:
        """The whole registration, for the few handlers that need more than its id, client_id and status."""
        with runtime().database.session() as db:
            tp = db.get(ThirdParty, self.third_party_id)
        if tp is None:
            raise Forbidden("Invalid access token")
        return tp


def _classify(db: Session | Raw, value: str, now: float) -> tuple[str, Presented]:
    """Which class a presented value is; unknown, expired, revoked and refresh tokens are 403."""
    found = presented(db, value)
    if found is None:
        raise Forbidden("Invalid access token")
    if found.kind is None:
        return RAT, found
    if found.kind in (CLIENT_REFRESH, REFRESH):
        raise Forbidden("A refresh token is not an access token; exchange it at the token endpoint")
    if found.revoked_at is not None:
        raise Forbidden("Access token has been revoked")
    if found.expires_at <= now:
        raise Forbidden("Access token expired")
    return found.kind, found


_WITH_PARTS = (joinedload(Authorization.third_party), joinedload(Authorization.customer),
               selectinload(Authorization.service_agreements))


def require_bearer(*classes: str) -> Bearer:
    """Authenticate this request's ``Authorization: Bearer`` for a resource taking ``classes``.

    Sets ``g.client_id`` (request log) and ``g.bearer``. A customer access token from the OAuth Test
    harness is refused on every resource (spec 5.5); so is an AT whose authorization ended. The token
    and its registration are one prebuilt read on the driver connection (issue 17); only an AT's
    authorization is loaded through the ORM, for the resources that read it.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise MissingToken()
    rt = runtime()
    now = rt.clock.epoch()
    with rt.database.statements() as raw:
        token_class, found = _classify(raw, value.strip(), now)
    g.client_id = found.client_id
    if token_class not in classes:
        wanted = " or ".join(TOKEN_CLASS_NAMES.get(c, c) for c in classes)
        raise Forbidden(f"A {TOKEN_CLASS_NAMES[token_class]} cannot be used here; this resource takes a {wanted}",
                        "insufficient_scope")
    if not certificate_belongs_to(found.third_party_id):
        raise Forbidden("The client certificate is not registered to the client this token was issued to")
    if found.status not in CREDENTIALED:
        raise Forbidden("The registration is no longer active")
    authorization = None
    if token_class == AT:
        if found.authorization_id is None:
            raise Forbidden("An OAuth Test harness token cannot be used on data resources")
        with rt.database.session() as db:
            # Loaded now, with its registration, customer and SAs (two statements, not four), so
            # resources can read them after this session closes.
            authorization = db.get(Authorization, found.authorization_id, options=_WITH_PARTS)
            if authorization is None or not is_live(authorization, now):
                raise Forbidden("The authorization of this token has been revoked or has expired")
    bearer = Bearer(token_class, found.third_party_id, found.client_id, found.status, found.kind, authorization)
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
    if target.third_party_id != bearer.third_party_id:
        raise Forbidden("The resource belongs to another client")
    raise Forbidden("The token was issued for another subscription")
