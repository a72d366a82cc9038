"""Issuing and checking bearer tokens (spec 4.8-4.12); every time comes from the simulated clock."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mock_custodian.errors import Forbidden, OAuthError
from mock_custodian.store.db import Raw, Sql, raw_of
from mock_custodian.store.hashed import display_prefix, token_key
from mock_custodian.store.models import Token
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


# A token row written by a prebuilt statement: client_credentials is the most frequent call a client
# makes, and the ORM's unit of work for one row cost more than the rest of the grant (issue 17).
_TOKEN_ROW = ("(:{p}token, :{p}prefix, :{p}kind, :endpoint, :third_party_id, NULL, :issued_at, :{p}expires_at, "
              "NULL, :pid)")
_INSERT_TOKEN = Sql(
    "INSERT INTO tokens (token, prefix, kind, endpoint, third_party_id, authorization_id, issued_at, expires_at, "
    "revoked_at, issued_by_pid) VALUES " + _TOKEN_ROW.format(p="")
)
_INSERT_TOKEN_PAIR = Sql(  # the access token and its refresh token: one statement
    "INSERT INTO tokens (token, prefix, kind, endpoint, third_party_id, authorization_id, issued_at, expires_at, "
    "revoked_at, issued_by_pid) VALUES " + _TOKEN_ROW.format(p="") + ", " + _TOKEN_ROW.format(p="r_")
)


def issue_client_access_token(
    db: Session | Raw, tp: Any, endpoint: str, now: float, ttl: int, refresh_ttl: int, with_refresh: bool
) -> IssuedClientToken:
    """grant_type=client_credentials: a fresh CAT every call; earlier ones live until they expire.

    ``tp``: the registration (its ``id`` and ``status``); the rows are written in ``db``'s transaction.
    """
    if endpoint == "production" and tp.status != RegistrationStatus.APPROVED:
        raise OAuthError("unauthorized_client", "The registration is not approved for production")
    access_value = str(uuid.uuid4())
    row = {"token": token_key(access_value), "prefix": display_prefix(access_value), "kind": CLIENT_ACCESS,
           "endpoint": endpoint, "third_party_id": tp.id, "issued_at": now, "expires_at": now + ttl,
           "pid": os.getpid()}
    refresh_value = None
    if with_refresh:
        refresh_value = str(uuid.uuid4())
        row |= {"r_token": token_key(refresh_value), "r_prefix": display_prefix(refresh_value),
                "r_kind": CLIENT_REFRESH, "r_expires_at": now + refresh_ttl}
    raw_of(db).run(_INSERT_TOKEN_PAIR if with_refresh else _INSERT_TOKEN, row)
    return IssuedClientToken(access_value, ttl, refresh_value)


@dataclass(frozen=True)
class Presented:
    """What a presented bearer value is: a token row (``kind`` set) or a registration access token
    (``kind`` None), with its registration's id, client_id and status."""

    kind: str | None
    third_party_id: int
    client_id: str
    status: str
    revoked_at: float | None = None
    expires_at: float | None = None
    authorization_id: int | None = None


_PRESENTED_TOKEN = Sql(
    "SELECT t.kind, t.third_party_id, p.client_id, p.status, t.revoked_at, t.expires_at, t.authorization_id "
    "FROM tokens t JOIN third_parties p ON p.id = t.third_party_id WHERE t.token = :key"
)
_PRESENTED_RAT = Sql("SELECT id, client_id, status FROM third_parties WHERE registration_access_token = :value")


def presented(db: Session | Raw, value: str) -> Presented | None:
    """Whose a bearer value is and what class, in one or two indexed reads (every API request asks)."""
    raw = raw_of(db)
    row = raw.one(_PRESENTED_TOKEN, {"key": token_key(value)})
    if row is not None:
        return Presented(*row)
    row = raw.one(_PRESENTED_RAT, {"value": value})
    return None if row is None else Presented(None, *row)


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
