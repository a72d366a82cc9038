"""Domain errors carrying PG&E's status codes and bodies (spec 2.3); mapped to responses in one place."""

from __future__ import annotations

import json


class PGEError(Exception):
    """An error PG&E answers with a specific status, body and content type."""

    status = 500
    content_type = "application/json;charset=UTF-8"

    def __init__(self, error: str = "", description: str | None = None, headers: dict[str, str] | None = None,
                 reason: str | None = None):
        super().__init__(reason or description or error)
        self.error = error
        self.description = description
        self.headers = dict(headers or {})
        # The precise cause for the request log and rehearsal pages, when PG&E's body must stay terse.
        self.reason = reason

    def body(self) -> str:
        payload = {"error": self.error}
        if self.description is not None:
            payload["error_description"] = self.description
        return json.dumps(payload, separators=(",", ":"))


class InvalidCertificate(PGEError):
    """T400: no, untrusted, expired or unregistered client certificate."""

    status = 400
    content_type = "text/plain;charset=UTF-8"

    def __init__(self, reason: str = "") -> None:
        super().__init__("invalid_certificate", reason)

    def body(self) -> str:
        return "Invalid Certificate"


class MissingToken(PGEError):
    """A401: no Authorization header, or not a Bearer one."""

    status = 401

    def __init__(self, description: str = "Full authentication is required to access this resource") -> None:
        super().__init__("invalid_token", description)


class Forbidden(PGEError):
    """A403: bad, expired or revoked token; wrong class; foreign resource; scope not granted."""

    status = 403

    def __init__(self, description: str, error: str = "invalid_token") -> None:
        super().__init__(error, description)


class InvalidClient(PGEError):
    """401 at the token endpoint: missing or wrong Basic credentials."""

    status = 401

    def __init__(self, description: str | None = None, reason: str | None = None) -> None:
        super().__init__("invalid_client", description, headers={"WWW-Authenticate": 'Basic realm="oauth2/client"'},
                         reason=reason)


class OAuthError(PGEError):
    """400 token-endpoint errors: invalid_request, invalid_grant, unsupported_grant_type, ..."""

    status = 400


class BadRequest(PGEError):
    """Q400: malformed parameters on a data call."""

    status = 400

    def __init__(self, description: str) -> None:
        super().__init__("invalid_request", description)


class NotFound(PGEError):
    """N404 for an unknown id within a known pattern."""

    status = 404

    def __init__(self) -> None:
        super().__init__("not_found")


class NoListener(PGEError):
    """N404 for an unknown path: PG&E's gateway text."""

    status = 404
    content_type = "text/plain;charset=UTF-8"

    def __init__(self, path: str) -> None:
        super().__init__("no_listener", path)
        self.path = path

    def body(self) -> str:
        return f"No listener for endpoint: {self.path}"


class MethodNotPermitted(PGEError):
    """M405."""

    status = 405

    def __init__(self, method: str) -> None:
        super().__init__("invalid_request", f"{method} not permitted")


class ServiceUnavailable(PGEError):
    status = 503

    def __init__(self) -> None:
        super().__init__("service_unavailable")


# --- Simulator scaffolding (/__sim/, spec 1.4): never part of a PG&E-shaped answer. ---------------


class ControlError(PGEError):
    """An error of the control API: JSON with a precise description."""

    status = 400

    def __init__(self, description: str, error: str = "invalid_request") -> None:
        super().__init__(error, description)


class ControlUnauthorized(ControlError):
    """A control call without the right ``X-Control-Token``."""

    status = 401

    def __init__(self, description: str) -> None:
        super().__init__(description, "control_token_required")
        self.headers["WWW-Authenticate"] = 'Bearer realm="mock-custodian control"'


class ControlNotFound(ControlError):
    status = 404

    def __init__(self, description: str) -> None:
        super().__init__(description, "not_found")


class InjectedFault(PGEError):
    """A response a configured fault substitutes for the real one (status, body, type chosen by the test)."""

    def __init__(self, status: int, body: str, content_type: str, reason: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__("injected_fault", reason, headers)
        self.status = status
        self.content_type = content_type
        self._body = body

    def body(self) -> str:
        return self._body


class RateLimited(PGEError):
    """R429: a rate limit of spec 6.7, with ``Retry-After`` in seconds."""

    status = 429

    def __init__(self, retry_after: int, which: str) -> None:
        super().__init__("rate_limit_exceeded", f"Rate limit exceeded: {which}",
                         headers={"Retry-After": str(retry_after)})
