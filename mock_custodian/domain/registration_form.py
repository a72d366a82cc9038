"""The registration form (spec 5.1): field labels, PG&E's validation rules, user types and data groups.

Pure checks over submitted fields, plus the uniqueness checks a live registration's display name and
portal user name need; every error names the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mock_custodian.domain.certificate_checks import (
    TrustAnchors,
)
from mock_custodian.errors import PGEError
from mock_custodian.store.models import ThirdParty
from mock_custodian.vocabulary import DATA_GROUPS, LIVE

USER_TYPE_LABELS = {
    "standard": "Standard User",
    "self_access": "Self-Access User",
    "eef": "Energy Efficiency Finance",
    "cca": "Community Choice Aggregator",
}


_USER_TYPE_ALIASES = {
    "standard": "standard", "standard user": "standard", "standalone": "standard",
    "self_access": "self_access", "self-access": "self_access", "self-access user": "self_access",
    "self access": "self_access",
    "eef": "eef", "energy efficiency finance": "eef",
    "cca": "cca", "community choice aggregator": "cca",
}


_GROUP_ALIASES = {g.lower(): g for g in DATA_GROUPS} | {"program enrollment": "ProgramEnrollment",
                                                         "program_enrollment": "ProgramEnrollment"}


HISTORY_MONTHS = (24, 36, 48)


OAUTH_TYPES = ("standard", "eef")  # the user types that run the consent flow and need its URIs


_EMAIL = re.compile(r"^[^@\s=:]+@[^@\s=:]+\.[^@\s=:]+$")


_FORBIDDEN = re.compile(r"[=:]")


# Field name -> label, in form order; JSON API and form share these names.
FIELD_LABELS: dict[str, str] = {
    "user_type": "User type",
    "legal_name": "Company legal name",
    "display_name": "Display name",
    "tax_id": "Tax ID (EIN)",
    "business_contact_name": "Business contact name",
    "business_contact_email": "Business contact e-mail",
    "business_contact_phone": "Business contact phone",
    "technical_contact_name": "Technical contact name",
    "technical_contact_email": "Technical contact e-mail",
    "technical_contact_phone": "Technical contact phone",
    "portal_username": "Portal user name",
    "portal_password": "Portal password",
    "security_question": "Security question",
    "security_answer": "Security answer",
    "description": "Application description",
    "phone": "Application phone",
    "oauth_url": "OAuth URL (legacy)",
    "third_party_portal_uri": "Third Party Portal URI",
    "redirect_uri": "Redirect URI",
    "notification_uri": "Notification URI",
    "notify_daily": "Notify me as data is ready (Daily)",
    "data_groups": "Customer information you need",
    "history_months": "Historical data requested (months)",
    "visibility": "Visibility",
    "certificate": "SSL certificate",
    "terms_accepted": "Terms and Conditions",
}


FREE_TEXT = ("legal_name", "display_name", "description", "phone", "business_contact_name",
             "business_contact_phone", "technical_contact_name", "technical_contact_phone", "security_question",
             "security_answer", "portal_username")


MAX_LENGTHS = {"display_name": 200, "legal_name": 200, "portal_username": 100, "portal_password": 100,
               "phone": 32, "business_contact_phone": 32, "technical_contact_phone": 32}


EDITABLE = ("display_name", "description", "phone", "business_contact_name", "business_contact_email",
            "business_contact_phone", "technical_contact_name", "technical_contact_email", "technical_contact_phone",
            "oauth_url", "third_party_portal_uri", "redirect_uri", "notification_uri", "notify_daily", "data_groups",
            "history_months", "visibility", "portal_password", "security_question", "security_answer")


# --------------------------------------------------------------------------------------------- errors
class RegistrationInvalid(PGEError):
    """400 from the portal: one message per failing field (spec 5.1: the form re-renders with them)."""

    status = 400

    def __init__(self, fields: dict[str, str]) -> None:
        summary = "; ".join(f"{FIELD_LABELS.get(k, k)}: {v}" for k, v in fields.items())
        super().__init__("invalid_request", summary)
        self.fields = dict(fields)

    def body(self) -> str:
        import json

        return json.dumps({"error": self.error, "error_description": self.description, "fields": self.fields},
                          separators=(",", ":"))


def field_text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value).strip()


def parse_bool(value: Any) -> bool | None:
    """Checkbox and JSON spellings of a boolean; None when the value says neither."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n", ""):
        return False
    return None


def flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept nested contacts (``business_contact: {name, email, phone}``) as well as flat field names."""
    out = dict(raw)
    for contact in ("business_contact", "technical_contact"):
        nested = raw.get(contact)
        if isinstance(nested, Mapping):
            for key in ("name", "email", "phone"):
                if key in nested and f"{contact}_{key}" not in out:
                    out[f"{contact}_{key}"] = nested[key]
            out.pop(contact, None)
    aliases = {"portal_uri": "third_party_portal_uri", "scope_selection_uri": "oauth_url",
               "visible": "visibility", "username": "portal_username", "password": "portal_password"}
    for alias, name in aliases.items():
        if alias in out and name not in out:
            out[name] = out.pop(alias)
    return out


def _https_problem(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return "must not contain spaces"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "is not a well-formed URL"
    if parts.scheme != "https":
        return "must be an https:// URL"
    if not parts.hostname:
        return "must name a host (https://host/path)"
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "has a malformed port"
    if parts.fragment or value.endswith("#"):
        return "must not contain a fragment (#...)"
    return None


def _groups(value: Any) -> tuple[list[str], str | None]:
    if value is None or value == "":
        return [], None
    items = value if isinstance(value, list | tuple) else str(value).replace(";", ",").split(",")
    chosen = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        canonical = _GROUP_ALIASES.get(name.lower())
        if canonical is None:
            return [], f"{name!r} is not one of {', '.join(DATA_GROUPS)}"
        if canonical not in chosen:
            chosen.append(canonical)
    return [g for g in DATA_GROUPS if g in chosen], None


def _live_conflict(db: Session, column: Any, value: str, exclude_id: int | None) -> bool:
    query = select(ThirdParty.id).where(func.lower(column) == value.lower()).where(
        ThirdParty.status.in_(LIVE))
    if exclude_id is not None:
        query = query.where(ThirdParty.id != exclude_id)
    return db.execute(query.limit(1)).first() is not None


def validate_fields(db: Session, raw: Mapping[str, Any], *, user_type: str, partial: bool,
                    exclude_id: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalised values and one error per failing field (spec 5.1's validation rules).

    ``partial`` validates only the fields present (an edit); otherwise every required field must be there.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    present = set(raw) if partial else set(FIELD_LABELS)
    required = {"legal_name", "display_name", "tax_id", "business_contact_name", "business_contact_email",
                "business_contact_phone", "technical_contact_name", "technical_contact_email",
                "technical_contact_phone", "portal_username", "portal_password", "security_question",
                "security_answer", "description", "phone", "notification_uri"}
    if user_type in OAUTH_TYPES:
        required |= {"third_party_portal_uri", "redirect_uri"}

    for name in FIELD_LABELS:
        if name not in present or name in ("user_type", "certificate", "terms_accepted", "notify_daily",
                                            "visibility", "data_groups", "history_months"):
            continue
        value = field_text(raw, name)
        if not value:
            if name in required:
                errors[name] = "is required" + (
                    " for Standard and Energy Efficiency Finance users"
                    if name in ("third_party_portal_uri", "redirect_uri") else "")
            else:
                values[name] = None
            continue
        if name in FREE_TEXT and _FORBIDDEN.search(value):
            errors[name] = "must not contain '=' or ':'"
            continue
        if len(value) > MAX_LENGTHS.get(name, 2000):
            errors[name] = f"is longer than {MAX_LENGTHS.get(name, 2000)} characters"
            continue
        if name == "tax_id" and not re.fullmatch(r"\d{9}", value):
            errors[name] = "must be exactly 9 digits (a U.S. Employer Identification Number, no dash)"
            continue
        if name.endswith("_email") and not _EMAIL.match(value):
            errors[name] = "is not a valid e-mail address"
            continue
        if name in ("oauth_url", "third_party_portal_uri", "redirect_uri", "notification_uri"):
            problem = _https_problem(value)
            if problem:
                errors[name] = problem
                continue
        if name == "portal_password" and len(value) < 8:
            errors[name] = "must have at least 8 characters"
            continue
        if name == "display_name" and _live_conflict(db, ThirdParty.display_name, value, exclude_id):
            errors[name] = f"{value!r} is already the display name of another registration; display names are unique"
            continue
        if name == "portal_username" and _live_conflict(db, ThirdParty.portal_username, value, exclude_id):
            errors[name] = f"{value!r} is taken; choose another portal user name"
            continue
        values[name] = value

    for name, default in (("notify_daily", False), ("visibility", True), ("terms_accepted", False)):
        if name in raw:
            parsed = parse_bool(raw.get(name))
            if parsed is None:
                errors[name] = "must be true or false"
            else:
                values[name] = parsed
        elif not partial:
            values[name] = default
    if not partial and not values.get("terms_accepted"):
        errors["terms_accepted"] = ("must be accepted: the Share My Data Terms and Conditions and the CPUC "
                                    "privacy rules")
    if "data_groups" in present and ("data_groups" in raw or not partial):
        groups, problem = _groups(raw.get("data_groups"))
        if problem:
            errors["data_groups"] = problem
        elif not groups and user_type in OAUTH_TYPES:
            errors["data_groups"] = "tick at least one: Basic, Account, Billing, Usage, Program Enrollment"
        else:
            values["data_groups"] = groups
    if "history_months" in present and ("history_months" in raw or not partial):
        text = field_text(raw, "history_months")
        if not text:
            errors["history_months"] = "is required: 24, 36 or 48"
        elif not text.isdigit() or int(text) not in HISTORY_MONTHS:
            errors["history_months"] = f"must be 24, 36 or 48 (got {text!r})"
        else:
            values["history_months"] = int(text)
    return values, errors


def parse_user_type(value: Any) -> str | None:
    return _USER_TYPE_ALIASES.get(str(value or "").strip().lower())


@dataclass(frozen=True)
class PortalPolicy:
    """The settings registration needs, as plain values (the store never reads Settings itself)."""

    anchors: TrustAnchors
    allow_self_signed: bool = False
    client_auth_eku_policy: str = "warn"
    auto_accept: bool = True
    review_delay: int = 0
    cert_activation_delay: int = 0
    portal_base_url: str = "https://sharemydata.pge.com"


def contact_email(tp: ThirdParty) -> str:
    return str((tp.business_contact or {}).get("email") or "")


def contact_name(tp: ThirdParty) -> str:
    return str((tp.business_contact or {}).get("name") or tp.display_name)
