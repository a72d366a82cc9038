"""The authorization request of ``/myAuthorization`` (spec 4.2, 4.5, 4.6) and the PG&E-initiated flow (4.7).

Checks run in PG&E's order: ``client_id``, ``redirect_uri``, ``response_type``, then the ``scope``
sub-keys. The first two are answered with a 400 page and never redirect (the redirect target is not
trusted yet); the others redirect back with ``error=invalid_request``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from mock_custodian.domain.scope import DATA_GROUP_PAGE_ORDER, AuthEndDateHints, auth_end_date_hints
from mock_custodian.store.models import ThirdParty
from mock_custodian.vocabulary import RegistrationStatus

CONSENT_USER_TYPES = ("standard", "eef")
USER_TYPE_NAMES = {"self_access": "Self-Access", "cca": "Community Choice Aggregator"}
# Query parameters of the authorization request that travel with the sign-in and consent forms.
REQUEST_PARAMETERS = ("client_id", "redirect_uri", "response_type", "state", "login", "scope")


class RequestRejected(Exception):
    """``client_id`` or ``redirect_uri`` is unusable: a 400 page explaining why, never a redirect."""


class RedirectWithError(Exception):
    """A request problem PG&E reports to the third party: ``302 {redirect_uri}?error=...``."""

    def __init__(self, redirect_uri: str, error: str, state: str | None, reason: str) -> None:
        super().__init__(reason)
        self.location = error_redirect(redirect_uri, error, state)
        self.error = error


@dataclass(frozen=True)
class ConsentRequest:
    """A validated authorization request (plain values, usable after the DB session closes)."""

    third_party_id: int
    client_id: str
    display_name: str
    redirect_uri: str
    state: str | None
    login: str | None
    scope: str | None
    hints: AuthEndDateHints
    offered_groups: tuple[str, ...]

    def carried(self) -> dict[str, str]:
        """The request in its canonical form, for the forms that continue it (sign-in, consent)."""
        values = {"client_id": self.client_id, "redirect_uri": self.redirect_uri, "response_type": "code"}
        for name, value in (("state", self.state), ("login", self.login), ("scope", self.scope)):
            if value is not None:
                values[name] = value
        return values

    def query(self) -> str:
        return urlencode(self.carried(), quote_via=quote)


def consent_problem(tp: ThirdParty) -> str | None:
    """Why a registration may not ask customers for consent (spec 4.2 default), or None."""
    name = f"{tp.display_name} (client_id {tp.client_id})"
    if tp.user_type not in CONSENT_USER_TYPES:
        kind = USER_TYPE_NAMES.get(tp.user_type, tp.user_type)
        return (f"{name} is a {kind} registration. Only Standard and Energy Efficiency Finance registrations "
                "can ask customers for authorization here.")
    if tp.status == RegistrationStatus.TERMINATED:
        return f"The registration of {name} has been terminated."
    if tp.status != RegistrationStatus.APPROVED:
        return (f"The registration of {name} is not Approved yet (status: {tp.status.replace('_', ' ')}). "
                "Until approval, rehearse with the OAuth Test harness.")
    return None


def validate_authorization_request(
    db: Session, params: Mapping[str, str], *, aliases: bool = True, honor_hints: bool = True
) -> ConsentRequest:
    """Check an authorization request in PG&E's order; raise RequestRejected or RedirectWithError.

    With ``aliases`` the legacy ``clientId`` spelling stands in for a missing ``client_id``, and then a
    missing ``redirect_uri`` or ``response_type`` is taken from the registration.
    """
    client_id = params.get("client_id")
    legacy = False
    if not client_id and aliases and params.get("clientId"):
        client_id, legacy = params["clientId"], True
    if not client_id:
        raise RequestRejected("The request has no client_id. The company that sent you here must include it.")
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one_or_none()
    if tp is None:
        raise RequestRejected(f"No company is registered with client_id {client_id}.")
    problem = consent_problem(tp)
    if problem:
        raise RequestRejected(problem)

    redirect_uri = params.get("redirect_uri")
    if not redirect_uri and legacy:
        redirect_uri = tp.redirect_uri
    if not redirect_uri:
        raise RequestRejected("The request has no redirect_uri. The company that sent you here must include it.")
    if redirect_uri != tp.redirect_uri:
        raise RequestRejected(
            f"The redirect_uri does not match the Redirect URI {tp.display_name} registered with PG&E "
            "(the comparison is exact and case-sensitive)."
        )

    state = params.get("state")
    response_type = params.get("response_type")
    if response_type is None and legacy:
        response_type = "code"
    if response_type != "code":
        raise RedirectWithError(redirect_uri, "invalid_request", state,
                                f"response_type must be code, got {response_type!r}")
    scope = params.get("scope")
    hints = AuthEndDateHints()
    if honor_hints:
        try:
            hints = auth_end_date_hints(scope)
        except ValueError as exc:
            raise RedirectWithError(redirect_uri, "invalid_request", state, str(exc)) from None
    offered = tuple(group for group in DATA_GROUP_PAGE_ORDER if group in (tp.data_groups or []))
    login = "guest" if params.get("login") == "guest" else None
    return ConsentRequest(tp.id, tp.client_id, tp.display_name, redirect_uri, state, login, scope, hints, offered)


def _append(redirect_uri: str, pairs: list[tuple[str, str]], raw: frozenset[str] = frozenset()) -> str:
    """Append parameters with ``?`` or ``&``; values percent-encoded unless named in ``raw``."""
    query = "&".join(f"{name}={value if name in raw else quote(value, safe='')}" for name, value in pairs)
    separator = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{separator}{query}"


def error_redirect(redirect_uri: str, error: str, state: str | None) -> str:
    """``{redirect_uri}?error=...[&state=...]``; PG&E adds no error_description (spec 4.6)."""
    pairs = [("error", error)]
    if state is not None:
        pairs.append(("state", state))
    return _append(redirect_uri, pairs)


def success_redirect(redirect_uri: str, code: str, scope: str, state: str | None, *,
                     code_param: str = "authorization_code", raw_scope: bool = False) -> str:
    """Spec 4.5: ``authorization_code``, ``scope``, ``state`` in that order (``both`` adds ``code``)."""
    pairs: list[tuple[str, str]] = []
    if code_param in ("authorization_code", "both"):
        pairs.append(("authorization_code", code))
    if code_param in ("code", "both"):
        pairs.append(("code", code))
    pairs.append(("scope", scope))
    if state is not None:
        pairs.append(("state", state))
    return _append(redirect_uri, pairs, frozenset({"scope"}) if raw_scope else frozenset())


# --- PG&E-initiated flow (spec 4.7) ------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    """One entry of the "Add new authorization" dropdown."""

    client_id: str
    display_name: str
    self_access: bool


def companies_for_customer(db: Session, customer_id: int) -> list[Company]:
    """Approved, visible Standard and EEF registrations, plus the customer's own Self-Access registration."""
    rows = db.execute(select(ThirdParty).order_by(ThirdParty.display_name)).scalars()
    out = []
    for tp in rows:
        if tp.status != RegistrationStatus.APPROVED:
            continue
        if tp.user_type in CONSENT_USER_TYPES and tp.visible:
            out.append(Company(tp.client_id, tp.display_name, False))
        elif tp.user_type == "self_access" and tp.self_access_customer_id == customer_id:
            out.append(Company(tp.client_id, tp.display_name, True))
    return out


def chosen_company(db: Session, customer_id: int, client_id: str) -> tuple[ThirdParty, Company]:
    """The dropdown choice, re-checked (a tampered value is refused with RequestRejected)."""
    for company in companies_for_customer(db, customer_id):
        if company.client_id == client_id:
            tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one()
            return tp, company
    raise RequestRejected("Choose a company from the list.")
