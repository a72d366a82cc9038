"""The ``authorization_code`` and ``refresh_token`` grants (spec 4.10, 4.11, 5.5): rules, not shapes.

A code is consumed and a refresh token rotated with a conditional UPDATE, so two workers racing
with the same value cannot both win. Every lifetime is measured on the simulated clock.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from mock_custodian.domain.authorizations import is_live
from mock_custodian.domain.tokens import ACCESS, CLIENT_ACCESS, CLIENT_REFRESH, REFRESH
from mock_custodian.errors import OAuthError
from mock_custodian.store.hashed import display_prefix, token_key
from mock_custodian.store.models import Authorization, AuthorizationCode, ThirdParty, Token

TEST_ENDPOINT = "test"


@dataclass(frozen=True)
class TokenLifetimes:
    """Seconds an authorization code, an access token and a refresh token live (settings, as plain values)."""

    code_ttl: int
    access_ttl: int
    refresh_ttl: int


def _invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


@dataclass(frozen=True)
class IssuedTokens:
    """A new token pair. ``authorization`` is None for client-level tokens and OAuth Test harness tokens."""

    token_kind: str  # ACCESS (customer / harness) or CLIENT_ACCESS (client-level refresh)
    access_token: str
    expires_in: int
    refresh_token: str
    authorization: Authorization | None
    endpoint: str

    @property
    def harness(self) -> bool:
        return self.token_kind == ACCESS and self.authorization is None


def _pair(db: Session, tp: ThirdParty, endpoint: str, now: float, access_kind: str, refresh_kind: str,
          access_ttl: int, refresh_ttl: int, authorization: Authorization | None) -> IssuedTokens:
    authorization_id = authorization.id if authorization is not None else None
    access_value, refresh_value = str(uuid.uuid4()), str(uuid.uuid4())
    access = Token(token=token_key(access_value), prefix=display_prefix(access_value), kind=access_kind,
                   endpoint=endpoint, third_party_id=tp.id,
                   authorization_id=authorization_id, issued_at=now, expires_at=now + access_ttl,
                   issued_by_pid=os.getpid())
    refresh = Token(token=token_key(refresh_value), prefix=display_prefix(refresh_value), kind=refresh_kind,
                    endpoint=endpoint, third_party_id=tp.id,
                    authorization_id=authorization_id, issued_at=now, expires_at=now + refresh_ttl,
                    issued_by_pid=os.getpid())
    db.add_all([access, refresh])
    return IssuedTokens(access_kind, access_value, access_ttl, refresh_value, authorization, endpoint)


def exchange_code(db: Session, tp: ThirdParty, *, code: str | None, redirect_uri: str | None, endpoint: str,
                  now: float, code_ttl: int, access_ttl: int, refresh_ttl: int) -> IssuedTokens:
    """``grant_type=authorization_code``: a live, unused code of this client, endpoint and redirect URI.

    Every failure is ``invalid_grant`` and leaves the code as it was; success uses it up for good.
    """
    if not code:
        raise OAuthError("invalid_request", "Missing code")
    if not redirect_uri:
        raise OAuthError("invalid_request", "Missing redirect_uri")
    row = db.get(AuthorizationCode, token_key(code))
    if row is None or row.endpoint != endpoint:
        raise _invalid_grant("Invalid authorization code")
    if row.third_party_id != tp.id:
        raise _invalid_grant("The authorization code was issued to another client")
    if row.used_at is not None:
        raise _invalid_grant("The authorization code has already been used")
    if now - row.issued_at >= code_ttl:
        raise _invalid_grant("The authorization code has expired")
    if row.redirect_uri != redirect_uri:
        raise _invalid_grant("redirect_uri does not match the one of the authorization request")
    authorization = None
    if row.authorization_id is not None:
        authorization = db.get(Authorization, row.authorization_id)
        if authorization is None or not is_live(authorization, now):
            raise _invalid_grant("The authorization is no longer active")
    elif endpoint != TEST_ENDPOINT:
        raise _invalid_grant("Invalid authorization code")
    used = db.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code == row.code, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:
        raise _invalid_grant("The authorization code has already been used")
    return _pair(db, tp, endpoint, now, ACCESS, REFRESH, access_ttl, refresh_ttl, authorization)


def refresh(db: Session, tp: ThirdParty, *, refresh_token: str | None, endpoint: str, now: float,
            access_ttl: int, client_ttl: int, refresh_ttl: int) -> IssuedTokens:
    """``grant_type=refresh_token``: rotate. The presented token dies at once; a new pair is issued.

    A customer refresh token needs its authorization still in force. A client refresh token (from
    client_credentials) yields a new client access token. The old access token lives on until it expires.
    """
    if not refresh_token:
        raise OAuthError("invalid_request", "Missing refresh_token")
    row = db.get(Token, token_key(refresh_token))
    if row is None or row.kind not in (REFRESH, CLIENT_REFRESH) or row.endpoint != endpoint:
        raise _invalid_grant("Invalid refresh token")
    if row.third_party_id != tp.id:
        raise _invalid_grant("The refresh token was issued to another client")
    if row.revoked_at is not None:
        raise _invalid_grant("The refresh token has been used or revoked")
    if row.expires_at <= now:
        raise _invalid_grant("The refresh token has expired")
    authorization = None
    if row.authorization_id is not None:
        authorization = db.get(Authorization, row.authorization_id)
        if authorization is None or not is_live(authorization, now):
            raise _invalid_grant("The authorization has been revoked or has expired")
    rotated = db.execute(
        update(Token).where(Token.token == row.token, Token.revoked_at.is_(None)).values(revoked_at=now)
    )
    if rotated.rowcount != 1:
        raise _invalid_grant("The refresh token has been used or revoked")
    if row.kind == CLIENT_REFRESH:
        return _pair(db, tp, endpoint, now, CLIENT_ACCESS, CLIENT_REFRESH, client_ttl, refresh_ttl, None)
    return _pair(db, tp, endpoint, now, ACCESS, REFRESH, access_ttl, refresh_ttl, authorization)
