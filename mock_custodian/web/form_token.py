"""CSRF tokens for the forms a browser posts before it has a session (sign-in, registration, reset).

A signed-in session carries its own token (``csrf_token`` of the session row). Before sign-in there is
no session, so these forms use a double-submit token: a random value in an HttpOnly, SameSite cookie
and the same value in the form. Another site can make a browser post the form but can neither read
nor set the cookie, so it cannot forge a matching pair (login CSRF). No server state: every worker
checks it alike.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping

from flask import Response, g, request

COOKIE = "smd_form"
FIELD = "csrf_token"
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{32}")
EXPIRED = "This page has expired. Please try again."


def form_token() -> str:
    """This browser's form token (templates call it); a new one is made and set as a cookie when missing."""
    token = getattr(g, "form_token", None)
    if token:
        return token
    current = request.cookies.get(COOKIE, "")
    token = current if _WELL_FORMED.fullmatch(current) else secrets.token_urlsafe(24)
    g.form_token = token
    g.form_token_new = token != current
    return token


def form_token_ok(form: Mapping[str, str]) -> bool:
    """Whether a posted form carries the token of this browser's cookie."""
    cookie = request.cookies.get(COOKIE, "")
    given = form.get(FIELD) or ""
    return bool(_WELL_FORMED.fullmatch(cookie)) and hmac.compare_digest(cookie.encode(), given.encode())


def session_token_ok(expected: str, given: str | None) -> bool:
    """Whether a signed-in form carries its session's token (constant time; empty never matches)."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def set_cookie(response: Response) -> Response:
    """After a page that handed out a new token: the cookie that pairs with it."""
    if getattr(g, "form_token_new", False):
        response.set_cookie(COOKIE, g.form_token, secure=True, httponly=True, samesite="Lax", path="/")
    return response
