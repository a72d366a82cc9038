"""Third Party Portal sign-in (spec 5.1): portal passwords, password reset and browser sessions.

Sessions live in the database (hashed ids), so every worker honours a sign-in made on another.
"""

from __future__ import annotations

import hmac
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mock_custodian.domain.registration import RegistrationNotFound, advance_lifecycle
from mock_custodian.domain.registration_form import RegistrationInvalid
from mock_custodian.errors import PGEError
from mock_custodian.store.hashed import check_password, hash_password, token_key
from mock_custodian.store.models import PortalSession, ThirdParty

PORTAL_SESSION_TTL_S = 8 * 3600


class PortalUnauthorized(PGEError):
    """401 from the portal's JSON API: no or wrong portal sign-in."""

    status = 401

    def __init__(self, description: str = "Sign in with the registration's portal user name and password") -> None:
        super().__init__("unauthorized", description, headers={"WWW-Authenticate": 'Basic realm="Third Party Portal"'})


# --------------------------------------------------------------------------------------------- portal sign-in
def find_registration(db: Session, client_id_or_username: str) -> ThirdParty:
    """By client_id, or the newest registration with that portal user name."""
    key = (client_id_or_username or "").strip()
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == key)).scalar_one_or_none()
    if tp is None:
        tp = db.execute(select(ThirdParty).where(func.lower(ThirdParty.portal_username) == key.lower())
                        .order_by(ThirdParty.id.desc()).limit(1)).scalar_one_or_none()
    if tp is None:
        raise RegistrationNotFound(f"No registration has client_id or portal user name {key!r}")
    return tp


def authenticate_portal(db: Session, username: str, password: str, now: float) -> ThirdParty:
    """Portal sign-in: one set of credentials per registration, shared by its staff (spec 5.1)."""
    tp = db.execute(select(ThirdParty).where(func.lower(ThirdParty.portal_username) == (username or "").lower())
                    .order_by(ThirdParty.id.desc()).limit(1)).scalar_one_or_none()
    if tp is None or not check_password(tp.portal_password, password):
        raise PortalUnauthorized("Wrong portal user name or password")
    advance_lifecycle(db, tp, now)
    return tp


def reset_password(db: Session, username: str, answer: str, new_password: str) -> ThirdParty:
    """A password reset needs the security answer (spec 5.1)."""
    tp = db.execute(select(ThirdParty).where(func.lower(ThirdParty.portal_username) == (username or "").lower())
                    .order_by(ThirdParty.id.desc()).limit(1)).scalar_one_or_none()
    if tp is None or not tp.security_answer or not hmac.compare_digest(
            tp.security_answer.strip().lower().encode(), (answer or "").strip().lower().encode()):
        raise PortalUnauthorized("Wrong user name or security answer")
    if len(new_password or "") < 8:
        raise RegistrationInvalid({"portal_password": "must have at least 8 characters"})
    tp.portal_password = hash_password(new_password)
    return tp


def start_session(db: Session, tp: ThirdParty, now: float) -> str:
    """A new portal sign-in; returns the cookie value (the database keeps only its SHA-256)."""
    cookie = secrets.token_urlsafe(32)
    session = PortalSession(session_id=token_key(cookie), third_party_id=tp.id,
                            csrf_token=secrets.token_urlsafe(24), created_at=now, expires_at=now + PORTAL_SESSION_TTL_S)
    db.add(session)
    return cookie


def session_registration(db: Session, session_id: str | None, now: float) -> tuple[PortalSession, ThirdParty] | None:
    if not session_id:
        return None
    session = db.get(PortalSession, token_key(session_id))
    if session is None or session.expires_at <= now:
        return None
    tp = db.get(ThirdParty, session.third_party_id)
    if tp is None:
        return None
    advance_lifecycle(db, tp, now)
    return session, tp


def end_session(db: Session, session_id: str | None) -> None:
    if session_id:
        session = db.get(PortalSession, token_key(session_id))
        if session is not None:
            db.delete(session)
