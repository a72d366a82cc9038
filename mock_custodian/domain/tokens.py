"""Issuing and checking bearer tokens (spec 4.8-4.12); every time comes from the simulated clock."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mock_custodian.errors import Forbidden, OAuthError
from mock_custodian.store.hashed import display_prefix, token_key
from mock_custodian.store.models import ThirdParty, Token
from mock_custodian.vocabulary import RegistrationStatus

CLIENT_ACCESS = "client_access"
CLIENT_REFRESH = "client_refresh"
ACCESS = "access"
REFRESH = "refresh"


@dataclass(frozen=True)
class IssuedClientToken:
    client_access_token: str
    expires_in: int
    refresh_token: str | None


def issue_client_access_token(
    db: Session, tp: ThirdParty, endpoint: str, now: float, ttl: int, refresh_ttl: int, with_refresh: bool
) -> IssuedClientToken:
    """grant_type=client_credentials: a fresh CAT every call; earlier ones live until they expire."""
    if endpoint == "production" and tp.status != RegistrationStatus.APPROVED:
        raise OAuthError("unauthorized_client", "The registration is not approved for production")
    access_value = str(uuid.uuid4())
    access = Token(
        token=token_key(access_value), prefix=display_prefix(access_value), kind=CLIENT_ACCESS, endpoint=endpoint,
        third_party_id=tp.id,
        issued_at=now, expires_at=now + ttl, issued_by_pid=os.getpid(),
    )
    db.add(access)
    refresh_value = None
    if with_refresh:
        refresh_value = str(uuid.uuid4())
        refresh = Token(
            token=token_key(refresh_value), prefix=display_prefix(refresh_value), kind=CLIENT_REFRESH,
            endpoint=endpoint, third_party_id=tp.id,
            issued_at=now, expires_at=now + refresh_ttl, issued_by_pid=os.getpid(),
        )
        db.add(refresh)
    return IssuedClientToken(access_value, ttl, refresh_value)


def bearer_token(db: Session, value: str, now: float, kinds: tuple[str, ...]) -> Token:
    """The live token of an allowed class, or 403 (spec 2.3: every token problem is A403)."""
    token = db.get(Token, token_key(value))
    if token is None or token.kind in (CLIENT_REFRESH, REFRESH):
        raise Forbidden("Invalid access token")
    if token.revoked_at is not None:
        raise Forbidden("Access token has been revoked")
    if token.expires_at <= now:
        raise Forbidden("Access token expired")
    if token.kind not in kinds:
        raise Forbidden("The token class is not allowed on this resource", "insufficient_scope")
    return token
