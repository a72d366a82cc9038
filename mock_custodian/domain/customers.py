"""Customer sign-in on sharemydata.pge.com (spec 4.3): My Energy logins, Guest Access, sessions.

Sessions live in the database, so a sign-in handled by one gunicorn worker is honoured by every
other; their lifetime runs on the simulated clock like everything else.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mock_custodian.store.hashed import check_password, token_key
from mock_custodian.store.models import Account, Customer, CustomerSession

SESSION_TTL = 30 * 60  # idle timeout of a customer session, seconds (renewed on every page)
FORBIDDEN_CHARACTERS = ("=", ":")  # spec 4.4: free text containing these is refused


class SignInFailed(ValueError):
    """Wrong credentials or a malformed field; ``field`` names the input to point the customer at."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SignedIn:
    """A live session as the pages need it (plain values, safe outside the DB session)."""

    session_id: str
    customer_id: int
    customer_name: str
    guest_account_id: int | None
    csrf_token: str

    @property
    def guest(self) -> bool:
        return self.guest_account_id is not None


def free_text_problem(value: str, label: str) -> str | None:
    """The message for a free-text value PG&E refuses (empty, or containing ``=`` or ``:``)."""
    if not value.strip():
        return f"Enter your {label}."
    if any(ch in value for ch in FORBIDDEN_CHARACTERS):
        return f"Your {label} cannot contain the characters = or :."
    return None


def _new_session(db: Session, customer: Customer, now: float, guest_account_id: int | None) -> SignedIn:
    cookie = secrets.token_urlsafe(32)
    row = CustomerSession(
        session_id=token_key(cookie),  # the database keeps only the cookie's SHA-256
        customer_id=customer.id,
        guest_account_id=guest_account_id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + SESSION_TTL,
    )
    db.add(row)
    return SignedIn(cookie, customer.id, customer.name, guest_account_id, row.csrf_token)


def sign_in(db: Session, username: str, password: str, now: float) -> SignedIn:
    """My Energy tab: a scenario customer's user name and password."""
    problem = free_text_problem(username, "user name")
    if problem:
        raise SignInFailed(problem, "username")
    if not password:
        raise SignInFailed("Enter your password.", "password")
    customer = db.execute(select(Customer).where(Customer.username == username.strip())).scalar_one_or_none()
    if customer is None or not check_password(customer.password, password):
        raise SignInFailed("The user name or password is incorrect.", "username")
    return _new_session(db, customer, now, None)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text or "")


def guest_sign_in(db: Session, account_number: str, phone: str, now: float) -> SignedIn:
    """Guest Access tab: the 11-digit account number (10 digits plus a check digit) and the phone on file.

    Only the first 10 digits are checked against the account, as PG&E's page does; the session then
    covers that one account.
    """
    entered = account_number.strip().replace(" ", "").replace("-", "")
    problem = free_text_problem(entered, "account number")
    if problem:
        raise SignInFailed(problem, "account_number")
    if not re.fullmatch(r"\d{11}", entered):
        raise SignInFailed("Enter the 11-digit account number shown on your bill.", "account_number")
    if not _digits(phone):
        raise SignInFailed("Enter the phone number on your account.", "phone")
    account = db.execute(select(Account).where(Account.account_number == entered[:10])).scalar_one_or_none()
    if account is None or not account.linked or _digits(account.customer.phone)[-10:] != _digits(phone)[-10:]:
        raise SignInFailed("The account number and phone number do not match our records.", "account_number")
    return _new_session(db, account.customer, now, account.id)


def current_session(db: Session, session_id: str | None, now: float) -> SignedIn | None:
    """The live session for a cookie value, renewed; None when missing or expired."""
    if not session_id:
        return None
    row = db.get(CustomerSession, token_key(session_id))
    if row is None:
        return None
    if row.expires_at <= now:
        db.delete(row)
        return None
    row.expires_at = now + SESSION_TTL
    customer = db.get(Customer, row.customer_id)
    if customer is None:
        return None
    return SignedIn(session_id, customer.id, customer.name, row.guest_account_id, row.csrf_token)


def sign_out(db: Session, session_id: str | None) -> None:
    if session_id:
        db.execute(delete(CustomerSession).where(CustomerSession.session_id == token_key(session_id)))
