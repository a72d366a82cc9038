"""PG&E's scope strings (spec 4.13): the customer grant's, the registration's, and request-side hints.

Pure functions of plain values, so the consent redirect, the token responses, the Authorization
resource and ApplicationInformation all print the same string for the same facts. The one helper
that reads ORM rows, :func:`authorization_scope`, only gathers those values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mock_custodian.domain.content import history_seconds
from mock_custodian.store.models import Authorization, ServiceAgreement

# Function blocks every grant carries, then the conditional ones in PG&E's order (spec 4.13).
FB_ALWAYS = "1_3_8_13_14_18_19_31_32_35_37_38_39_40"
# The order of AdditionalScope tokens; the consent page lists groups in DATA_GROUP_PAGE_ORDER.
ADDITIONAL_SCOPE_ORDER = ("Usage", "Billing", "Basic", "Account", "ProgramEnrollment")
DATA_GROUP_PAGE_ORDER = ("Basic", "Account", "Billing", "Usage", "ProgramEnrollment")
CUSTOMER_INFORMATION_GROUPS = frozenset({"Basic", "Account", "ProgramEnrollment"})
INTERVAL_DURATION = "900_3600"
DATA_CUSTODIAN_ID = "PGE"
TOKEN_SCOPE_PREFIX = "scope="
# Request-side sub-keys of /myAuthorization's scope parameter (spec 4.2), 64-bit signed epochs.
MIN_AUTH_END_DATE = "MinAuthEndDate"
PREFERRED_AUTH_END_DATE = "PreferredAuthEndDate"
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class ScopeSpelling:
    """The two spellings PG&E's pages disagree on (section 9 item 12)."""

    custodian_key: str = "dataCustodianId"
    block_duration: str = "Daily"


@dataclass(frozen=True)
class GrantedAgreement:
    """What the scope needs to know about one authorized SA."""

    commodity: str  # electric | gas
    interval_metered: bool


def history_length_seconds(history_months: int) -> int:
    """24 / 36 / 48 months as PG&E's HistoryLength seconds (63072000 / 94608000 / 126144000)."""
    return history_seconds(history_months)


def function_blocks(data_groups: Iterable[str], *, electric_interval: bool, gas: bool) -> str:
    """The ``FB`` value: the fixed blocks, then 4_5, 10, 15, 16, 46_47 when their condition holds."""
    groups = set(data_groups)
    usage, billing = "Usage" in groups, "Billing" in groups
    blocks = [FB_ALWAYS]
    if usage and electric_interval:
        blocks.append("4_5")
    if gas and (usage or billing):
        blocks.append("10")
    if usage or billing:
        blocks.append("15")
    if billing:
        blocks.append("16")
    if groups & CUSTOMER_INFORMATION_GROUPS:
        blocks.append("46_47")
    return "_".join(blocks)


def additional_scope(data_groups: Iterable[str]) -> str:
    """Chosen groups in PG&E's fixed order, joined with ``_``."""
    groups = set(data_groups)
    return "_".join(name for name in ADDITIONAL_SCOPE_ORDER if name in groups)


def customer_scope(
    data_groups: Iterable[str],
    agreements: Iterable[GrantedAgreement],
    history_months: int,
    client_id: str,
    spelling: ScopeSpelling = ScopeSpelling(),
) -> str:
    """The scope of one customer grant, as the redirect and the Authorization resource print it."""
    groups = list(data_groups)
    sas = list(agreements)
    fields = [
        ("FB", function_blocks(groups, electric_interval=any(a.commodity == "electric" and a.interval_metered
                                                               for a in sas),
                               gas=any(a.commodity == "gas" for a in sas))),
        ("AdditionalScope", additional_scope(groups)),
        ("IntervalDuration", INTERVAL_DURATION),
        ("BlockDuration", spelling.block_duration),
        ("HistoryLength", str(history_length_seconds(history_months))),
        ("AccountCollection", str(len(sas))),
        ("BR", client_id),
        (spelling.custodian_key, DATA_CUSTODIAN_ID),
    ]
    return ";".join(f"{key}={value}" for key, value in fields)


def registration_scope(
    data_groups: Iterable[str], history_months: int, client_id: str, spelling: ScopeSpelling = ScopeSpelling()
) -> str:
    """Registration-level scope (ApplicationInformation, the bulk and registration entries).

    No customer has chosen anything yet, so ``FB`` follows the registered groups as if every kind of
    SA could be authorized, and there is no ``AdditionalScope`` or ``AccountCollection``.
    """
    groups = list(data_groups)
    fields = [
        ("FB", function_blocks(groups, electric_interval=True, gas=True)),
        ("IntervalDuration", INTERVAL_DURATION),
        ("BlockDuration", spelling.block_duration),
        ("HistoryLength", str(history_length_seconds(history_months))),
        ("BR", client_id),
        (spelling.custodian_key, DATA_CUSTODIAN_ID),
    ]
    return ";".join(f"{key}={value}" for key, value in fields)


def token_scope(scope: str, prefix: bool = True) -> str:
    """The token responses' form: PG&E's examples start the value with a literal ``scope=``."""
    return f"{TOKEN_SCOPE_PREFIX}{scope}" if prefix else scope


def parse_scope(scope: str) -> dict[str, str]:
    """Read a scope string the way receivers must: tolerate a trailing ``;`` and a ``scope=`` prefix."""
    text = scope[len(TOKEN_SCOPE_PREFIX):] if scope.startswith(TOKEN_SCOPE_PREFIX + "FB=") else scope
    out: dict[str, str] = {}
    for field in text.split(";"):
        key, sep, value = field.partition("=")
        if sep and key:
            out.setdefault(key, value)
    return out


@dataclass(frozen=True)
class AuthEndDateHints:
    """The optional duration-picker hints of /myAuthorization (spec 4.2, 4.4), epoch seconds."""

    min_auth_end_date: int | None = None
    preferred_auth_end_date: int | None = None


def auth_end_date_hints(scope: str | None) -> AuthEndDateHints:
    """Parse ``MinAuthEndDate`` / ``PreferredAuthEndDate`` from a request scope; ignore everything else.

    Raises ValueError (answered with ``error=invalid_request``) when either is not a 64-bit integer.
    """
    if not scope:
        return AuthEndDateHints()
    values: dict[str, int] = {}
    for field in scope.replace("&", ";").split(";"):
        key, sep, raw = field.strip().partition("=")
        if key not in (MIN_AUTH_END_DATE, PREFERRED_AUTH_END_DATE) or key in values:
            continue
        text = raw.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not sep or not digits.isascii() or not digits.isdigit():
            raise ValueError(f"{key} must be an integer number of epoch seconds")
        number = int(text)
        if not _INT64[0] <= number <= _INT64[1]:
            raise ValueError(f"{key} is out of range for a 64-bit integer")
        values[key] = number
    return AuthEndDateHints(values.get(MIN_AUTH_END_DATE), values.get(PREFERRED_AUTH_END_DATE))


def granted_agreement(sa: ServiceAgreement) -> GrantedAgreement:
    """An SA as the scope sees it: electric or gas, interval-metered or not."""
    profile: Mapping = sa.profile or {}
    interval = profile.get("interval_length")
    if interval is None and sa.meters:
        interval = sa.meters[0].interval_length
    return GrantedAgreement(sa.commodity, interval is not None)


def authorization_scope(authorization: Authorization, spelling: ScopeSpelling = ScopeSpelling()) -> str:
    """The current bare scope of an Authorization row (reflects SA removals through AccountCollection).

    Customer and paper grants get the customer scope; the bulk, registration and CCA system entries
    get the registration-level scope. Call inside the session that loaded the row.
    """
    tp = authorization.third_party
    if authorization.kind in ("customer", "paper"):
        return customer_scope(
            authorization.data_groups or [],
            [granted_agreement(sa) for sa in authorization.service_agreements],
            authorization.history_months,
            tp.client_id,
            spelling,
        )
    return registration_scope(tp.data_groups or [], authorization.history_months, tp.client_id, spelling)
