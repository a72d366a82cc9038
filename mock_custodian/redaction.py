"""Shortened secrets wherever a request is shown: the request log, ``/__sim/requests``,
``mock-custodian requests``, the rehearsal pages and async job listings.

A secret keeps its first eight characters (enough to tell two codes apart, and the same prefix the
database keeps beside a hashed code or token), never the rest. Redaction happens before anything is
stored, so the database never holds a full secret from a request line either.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

# Parameters logged only in part: codes, refresh tokens, secrets and passwords.
SECRET_PARAMETERS = frozenset({
    "client_secret", "code", "authorization_code", "refresh_token", "access_token", "client_access_token",
    "password", "registration_access_token", "token", "id_token", "client_assertion",
})
# Headers never logged (their scheme word is kept: "Bearer [redacted]").
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-control-token"})
KEEP = 8


def shorten(value: str) -> str:
    """The first characters of a secret and an ellipsis; short values are hidden entirely."""
    text = str(value)
    if len(text) <= KEEP:
        return "..." if text else text
    return text[:KEEP] + "..."


def shorten_parameters(values: dict[str, Any], limit: int = 40) -> dict[str, str]:
    """Parameters by name (at most ``limit``, each at most 500 characters), secrets shortened."""
    out = {}
    for name, value in list(values.items())[:limit]:
        text = str(value)[:500]
        if str(name).lower() in SECRET_PARAMETERS:
            text = shorten(text)
        out[str(name)[:64]] = text
    return out


def redacted_query(query: str) -> str:
    """A raw query string with every secret parameter's value shortened; everything else as sent."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if sep and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
            value = shorten(value)
        parts.append(f"{name}{sep}{value}")
    return "&".join(parts)


def redacted_headers(headers: Any) -> dict[str, str]:
    """Request headers with credentials replaced by ``[redacted]`` (keeping the scheme word)."""
    out = {}
    for name, value in headers.items():
        if name.lower() in REDACTED_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} [redacted]".strip()
        out[name] = value
    return out
