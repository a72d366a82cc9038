"""Secrets at rest: what the database keeps instead of a bearer value or a password.

Access tokens, refresh tokens, authorization codes and browser session ids are looked up by SHA-256 of
the presented value (they are long random strings, so a plain digest cannot be reversed), with a short
display prefix kept beside the digest for the rehearsal pages. Passwords are salted hashes from
werkzeug.security: portal sign-ups and password changes use its strong default (scrypt); scenario
passwords, which are published in the scenario file anyway, use a named cheaper method and are hashed
once per distinct password per load so a 100,000-customer world still loads quickly.

Client secrets and registration access tokens stay retrievable (``credentials``, the Manage page): the
data directory's file modes protect them.
"""

from __future__ import annotations

import hashlib

from werkzeug.security import check_password_hash, generate_password_hash

PREFIX_LENGTH = 8
# Scenario customers' and registrations' passwords (published in the scenario file): cheap, still salted.
SCENARIO_PASSWORD_METHOD = "pbkdf2:sha256:1000"  # ~0.3 ms: 100,000 distinct ones in ~30 s
HASH_METHODS = ("scrypt:", "pbkdf2:")


def token_key(value: str) -> str:
    """The lookup key stored for a bearer value, code or session id: SHA-256, hex (64 characters)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(value: str) -> str:
    """The few leading characters kept to tell two values apart on the rehearsal pages, never the value."""
    return value[:PREFIX_LENGTH]


def hash_password(password: str) -> str:
    """A salted hash with werkzeug's strong default, for passwords a user chose."""
    return generate_password_hash(password)


def is_password_hash(stored: str | None) -> bool:
    return bool(stored) and stored.startswith(HASH_METHODS) and stored.count("$") == 2  # type: ignore[union-attr]


def check_password(stored: str | None, password: str | None) -> bool:
    """Whether ``password`` matches a stored hash (constant time inside werkzeug)."""
    if not stored or not password or not is_password_hash(stored):
        return False
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        return False


class ScenarioPasswords:
    """Hashes scenario passwords, each distinct one once per load (they share one salt per load)."""

    def __init__(self, method: str = SCENARIO_PASSWORD_METHOD) -> None:
        self.method = method
        self._done: dict[str, str] = {}

    def __call__(self, password: str) -> str:
        if password not in self._done:
            self._done[password] = generate_password_hash(password, method=self.method)
        return self._done[password]
