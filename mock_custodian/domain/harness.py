"""The OAuth Test harness (spec 5.5): the portal's Start redirect and the test authorize endpoint.

No customer, no sign-in, no consent: the harness checks ``client_id``, ``redirect_uri`` and
``response_type`` and hands out a dummy code bound to the client and redirect URI. The code is
exchanged at the test token endpoint like a real one (600 s, single use), which records the milestone.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from mock_custodian.domain.registration import LIVE_STATUSES, RegistrationConflict, advance_lifecycle
from mock_custodian.errors import OAuthError
from mock_custodian.store.hashed import display_prefix, token_key
from mock_custodian.store.models import AuthorizationCode, ThirdParty
from mock_custodian.vocabulary import CREDENTIALED, RegistrationStatus

TEST_ENDPOINT = "test"
OAUTH_TEST_TYPES = ("standard", "eef")
HARNESS_TARGETS = ("portal_uri", "oauth_url")
THIRDPARTYID_VALUES = ("PGE", "client_id")


def append_query(uri: str, pairs: list[tuple[str, str]]) -> str:
    """``uri`` plus parameters, joined with ``&`` when it already has a query (spec 4.5).

    Percent-encoded (a space is ``%20``, never ``+``), the same as the consent redirect of /myAuthorization.
    """
    if not pairs:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(pairs, quote_via=quote)}"


def start_location(tp: ThirdParty, harness_target: str, thirdpartyid_value: str) -> str:
    """Step 1: ``{Third Party Portal URI}?scope=xxx&ThirdPartyID=PGE`` (or the OAuth URL, by setting)."""
    if tp.user_type not in OAUTH_TEST_TYPES:
        raise RegistrationConflict("The OAuth Test is for Standard and Energy Efficiency Finance registrations only")
    if tp.status not in (RegistrationStatus.ACCEPTED, RegistrationStatus.APPROVED, RegistrationStatus.ON_HOLD):
        raise RegistrationConflict(f"The OAuth Test opens once the registration is accepted; it is {tp.status}")
    first, second = (tp.portal_uri, tp.scope_selection_uri)
    if harness_target == "oauth_url":
        first, second = second, first
    target = first or second
    if not target:
        raise RegistrationConflict("Register a Third Party Portal URI first (Manage Registration > Edit)")
    value = tp.client_id if thirdpartyid_value == "client_id" else "PGE"
    return append_query(target, [("scope", "xxx"), ("ThirdPartyID", value)])


def _invalid(description: str, reason: str | None = None) -> OAuthError:
    return OAuthError("invalid_request", description, reason=reason or description)


def authorize_test(db: Session, *, client_id: str, redirect_uri: str, response_type: str, state: str | None,
                   now: float, code_param: str = "authorization_code") -> tuple[ThirdParty, str]:
    """Step 4: check the request in PG&E's order and return (registration, redirect Location).

    The dummy code is an ``AuthorizationCode`` with ``endpoint="test"`` and no authorization.
    """
    if not client_id:
        raise _invalid("client_id is empty", "client_id is empty: add client_id={your client_id} to the URL")
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one_or_none()
    if tp is None:
        raise _invalid("client_id is invalid", f"client_id {client_id!r} is not a registered client_id")
    advance_lifecycle(db, tp, now)
    if tp.status not in CREDENTIALED:
        state_text = "not accepted yet" if tp.status in LIVE_STATUSES else "no longer active"
        raise _invalid("client_id is invalid", f"client {client_id}'s registration is {state_text} ({tp.status})")
    if tp.user_type not in OAUTH_TEST_TYPES:
        raise _invalid("client_id is invalid", f"client {client_id} is not a Standard or Energy Efficiency Finance "
                                               "registration; only those run the OAuth Test")
    if not redirect_uri:
        raise _invalid("redirect_uri is empty", "redirect_uri is empty: send the registered Redirect URI")
    if redirect_uri != (tp.redirect_uri or ""):
        raise _invalid(
            "redirect_uri is invalid",
            f"redirect_uri {redirect_uri!r} does not equal the registered Redirect URI {tp.redirect_uri!r} "
            "(exact, case-sensitive comparison after percent-decoding)",
        )
    if not response_type:
        raise _invalid("response_type is empty", "response_type is empty: send response_type=code")
    if response_type != "code":
        raise _invalid("response_type is invalid", f"response_type must be the literal 'code' (got {response_type!r})")
    code = str(uuid.uuid4())
    db.add(AuthorizationCode(code=token_key(code), prefix=display_prefix(code), third_party_id=tp.id,
                             authorization_id=None, redirect_uri=redirect_uri,
                             endpoint=TEST_ENDPOINT, issued_at=now))
    pairs = []
    if code_param in ("authorization_code", "both"):
        pairs.append(("authorization_code", code))
    if code_param in ("code", "both"):
        pairs.append(("code", code))
    if state:
        pairs.append(("state", state))
    return tp, append_query(redirect_uri, pairs)
