"""Injected faults (simulator scaffolding, spec 1.4): how a third party tests its retry logic.

A fault is one row in ``sim_faults``, so every gunicorn worker and the notification sender see it.
It says what goes wrong (``kind`` and ``params``), where (a glob over the path, a method, a client,
a surface) and how often (``times``: fire on the first N matches, None for every match;
``probability``: a reproducible draw per match). The first matching fault by id fires; a spent one
stays listed with its counters so a test can assert that it fired.

Request kinds are applied by ``mock_custodian.web.faults`` on inbound requests. Notification kinds
are for the sender of notification POSTs (spec 6.5), which asks once per notification it is about to
deliver, before its first attempt::

    fault = claim_notification_fault(db, client_id=tp.client_id, uri=notification.uri, now=now)
    # None: deliver normally. Otherwise, by fault.kind:
    #   notification_lost        never POST it; record the notification as lost (status "lost")
    #   notification_duplicated  POST it fault.copies times (each attempt recorded)
    #   notification_delayed     first attempt at now + fault.delay_s (simulated seconds)
    #   notification_early       POST at acceptance, before the package is built: retrievals
    #                            of its correlationID answer 404 until the package is ready
"""

from __future__ import annotations

import fnmatch
import math
import random
from collections.abc import Container
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from mock_custodian.errors import ControlError, ControlNotFound
from mock_custodian.store.db import Raw, Sql, raw_of
from mock_custodian.store.models import Fault

# kind -> what happens (the control API's OpenAPI document and docs/faults.md list these).
REQUEST_KINDS: dict[str, str] = {
    "http_error": "the answer is replaced by an error status (default 500) with a JSON, HTML or plain body",
    "rate_limit": "429 rate_limit_exceeded with Retry-After, PG&E's R429 shape (spec 2.3)",
    "maintenance": "503 {\"error\":\"service_unavailable\"}, as during PG&E maintenance (spec 2.3)",
    "latency": "the real answer, after delay_ms milliseconds",
    "drop": "the connection is closed without any response",
    "cut": "the real response starts, then the connection closes after after_bytes body bytes",
    "empty_204": "204 No Content with an empty body instead of the real answer",
    "token_expired": "the bearer token presented expires now; the real check then refuses it (403)",
}
NOTIFICATION_KINDS: dict[str, str] = {
    "notification_lost": "the notification POST is never sent",
    "notification_duplicated": "the notification is POSTed `copies` times (default 2)",
    "notification_delayed": "the first attempt waits delay_s simulated seconds (default 300)",
    "notification_early": "the POST goes out before the package is built; retrieval answers 404 until then",
}
KINDS = REQUEST_KINDS | NOTIFICATION_KINDS

# Parameters each kind accepts: name -> (JSON types, default). delay_ms is accepted by every
# request kind (latency before the fault acts).
_DELAY: dict[str, tuple[tuple[type, ...], Any]] = {"delay_ms": ((int,), 0)}
PARAMS: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "http_error": _DELAY | {"status": ((int,), 500), "body_format": ((str,), "json"), "body": ((str,), None),
                            "retry_after": ((int,), None)},
    "rate_limit": _DELAY | {"retry_after": ((int,), 1)},
    "maintenance": _DELAY | {"retry_after": ((int,), None)},
    "latency": {"delay_ms": ((int,), 1000)},
    "drop": _DELAY,
    "cut": _DELAY | {"after_bytes": ((int,), None)},
    "empty_204": _DELAY,
    "token_expired": {},
    "notification_lost": {},
    "notification_duplicated": {"copies": ((int,), 2)},
    "notification_delayed": {"delay_s": ((int, float), 300)},
    "notification_early": {},
}
BODY_FORMATS = ("json", "html", "plain")
SURFACES = ("api", "portal")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
MAX_DELAY_MS = 120_000
MAX_COUNT = 2**31 - 1  # every integer a fault stores fits any database's INTEGER


@dataclass(frozen=True)
class FiredFault:
    """A fault that has just fired for one request or notification: a plain snapshot of its row."""

    id: int
    kind: str
    params: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        params = object.__getattribute__(self, "params")
        if name in params:
            return params[name]
        raise AttributeError(name)

    @property
    def reason(self) -> str:
        return f"injected fault #{self.id} ({self.kind})"


def add_fault(db: Session, spec: dict[str, Any], now: float) -> Fault:
    """Validate a fault description (the control API's JSON) and store it; nothing is stored on error."""
    if not isinstance(spec, dict):
        raise ControlError("a fault is a JSON object with at least a `kind`")
    allowed = {"kind", "path", "method", "client_id", "surface", "times", "probability", "params", "seed"}
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ControlError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    # Parameters may be given flat (`{"kind": "http_error", "status": 502}`) or under `params`.
    if spec.get("params") is not None and not isinstance(spec["params"], dict):
        raise ControlError("params must be a JSON object")
    params_in = dict(spec.get("params") or {})
    for name, value in spec.items():
        if name not in allowed:
            if name in PARAMS[kind]:
                params_in[name] = value
            else:
                known = sorted(allowed - {"params"} | set(PARAMS[kind]))
                raise ControlError(f"unknown field {name!r} for kind {kind}; known: {', '.join(known)}")
    params = _params(kind, params_in)
    path = _optional_str(spec, "path")
    method = _optional_str(spec, "method")
    if method is not None:
        method = method.upper()
        if method not in METHODS:
            raise ControlError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    client_id = _optional_str(spec, "client_id")
    surface = _optional_str(spec, "surface")
    if surface is not None and surface not in SURFACES:
        raise ControlError(f"surface must be api or portal (got {surface!r})")
    if kind in NOTIFICATION_KINDS and (method or surface):
        raise ControlError("notification faults match on client_id and path (the notification URI) only")
    times = spec.get("times")
    if times is not None and (not _is_int(times) or not 1 <= times <= MAX_COUNT):
        raise ControlError(f"times must be a positive integer or null for every match (got {times!r})")
    probability = spec.get("probability", 1.0)
    if isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 < probability <= 1:
        raise ControlError(f"probability must be a number in (0, 1] (got {probability!r})")
    seed = spec.get("seed")
    if seed is not None:
        if not _is_int(seed) or abs(seed) > MAX_COUNT:
            raise ControlError(f"seed must be an integer of at most {MAX_COUNT} either way")
        params["seed"] = seed
    fault = Fault(kind=kind, path=path, method=method, client_id=client_id, surface=surface, times=times,
                  probability=float(probability), params=params, matched=0, fired=0, created_at=now)
    db.add(fault)
    db.flush()
    return fault


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_str(spec: dict[str, Any], name: str) -> str | None:
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ControlError(f"{name} must be a non-empty string")
    return value.strip()


def _params(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    accepted = PARAMS[kind]
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in accepted:
            names = ", ".join(accepted) or "none"
            raise ControlError(f"unknown parameter {name!r} for kind {kind}; accepted: {names}")
        types, _default = accepted[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            raise ControlError(f"{name} must be {' or '.join(t.__name__ for t in types)} (got {value!r})")
        if isinstance(value, int | float) and (not math.isfinite(value) or abs(value) > MAX_COUNT):
            raise ControlError(f"{name} must be a finite number of at most {MAX_COUNT} (got {value!r})")
        out[name] = value
    for name, (_types, default) in accepted.items():
        if out.get(name) is None and default is not None:
            out[name] = default
    delay = out.get("delay_ms")
    if delay is not None and not 0 <= delay <= MAX_DELAY_MS:
        raise ControlError(f"delay_ms must be between 0 and {MAX_DELAY_MS}")
    if kind == "http_error":
        if not 400 <= out["status"] <= 599:
            raise ControlError(f"status must be an HTTP error status, 400 to 599 (got {out['status']})")
        if out["body_format"] not in BODY_FORMATS:
            raise ControlError(f"body_format must be one of {', '.join(BODY_FORMATS)}")
    for name in ("retry_after", "after_bytes"):
        if out.get(name) is not None and out[name] < 0:
            raise ControlError(f"{name} must not be negative")
    if kind == "notification_duplicated" and not 2 <= out["copies"] <= 10:
        raise ControlError("copies must be between 2 and 10")
    if kind == "notification_delayed" and out["delay_s"] < 0:
        raise ControlError("delay_s must not be negative")
    return out


def describe(fault: Fault) -> dict[str, Any]:
    """The JSON form of a fault, as the control API lists it."""
    spent = fault.times is not None and fault.fired >= fault.times
    return {
        "id": fault.id,
        "kind": fault.kind,
        "path": fault.path,
        "method": fault.method,
        "client_id": fault.client_id,
        "surface": fault.surface,
        "times": fault.times,
        "probability": fault.probability,
        "params": dict(fault.params or {}),
        "matched": fault.matched,
        "fired": fault.fired,
        "active": not spent,
        "created_at": fault.created_at,
        "last_fired_at": fault.last_fired_at,
    }


def list_faults(db: Session) -> list[Fault]:
    return list(db.execute(select(Fault).order_by(Fault.id)).scalars())


def get_fault(db: Session, fault_id: int) -> Fault:
    fault = db.get(Fault, fault_id)
    if fault is None:
        raise ControlNotFound(f"no fault {fault_id}")
    return fault


def delete_fault(db: Session, fault_id: int) -> None:
    get_fault(db, fault_id)
    db.execute(delete(Fault).where(Fault.id == fault_id))


def clear_faults(db: Session) -> int:
    return db.execute(delete(Fault)).rowcount or 0


def _path_matches(pattern: str | None, value: str) -> bool:
    """A glob (``*`` also crosses ``/``); a pattern without wildcards must equal the path (or its URL)."""
    if pattern is None:
        return True
    return fnmatch.fnmatchcase(value, pattern) or fnmatch.fnmatchcase(value.rstrip("/"), pattern.rstrip("/"))


def _draw(fault: Fault, n: int) -> bool:
    """A reproducible draw: the n-th match of a fault always decides the same way."""
    if fault.probability >= 1.0:
        return True
    seed = (fault.params or {}).get("seed", fault.id)
    return random.Random(f"{seed}:{n}").random() < fault.probability


def _claim(db: Session, candidates: list[Fault], now: float) -> FiredFault | None:
    """Count the match and take one firing atomically, so workers never over-fire a counted fault."""
    for fault in candidates:
        if fault.times is not None and fault.fired >= fault.times:
            continue
        n = db.execute(
            update(Fault).where(Fault.id == fault.id).values(matched=Fault.matched + 1).returning(Fault.matched)
        ).scalar_one_or_none()
        if n is None or not _draw(fault, n):
            continue
        taken = db.execute(
            update(Fault)
            .where(Fault.id == fault.id, or_(Fault.times.is_(None), Fault.fired < Fault.times))
            .values(fired=Fault.fired + 1, last_fired_at=now)
        ).rowcount
        if taken == 1:
            return FiredFault(fault.id, fault.kind, dict(fault.params or {}))
    return None


_ANY_FAULT = Sql("SELECT 1 FROM sim_faults LIMIT 1")


def any_fault(db: Session | Raw) -> bool:
    """Whether any fault is configured at all: one read, so every request can afford to ask."""
    return raw_of(db).one(_ANY_FAULT) is not None


def claim_request_fault(
    db: Session,
    *,
    method: str,
    path: str,
    surface: str,
    client_ids: Container[str],
    has_bearer: bool,
    now: float,
) -> FiredFault | None:
    """The request fault that fires for this request, if any (its counters already updated)."""
    if not any_fault(db):
        return None  # the usual case, on every request: one cheap read (issue 17)
    faults = db.execute(
        select(Fault).where(Fault.kind.in_(tuple(REQUEST_KINDS))).order_by(Fault.id)
    ).scalars().all()
    candidates = [
        f for f in faults
        if (f.method is None or f.method == method)
        and (f.surface is None or f.surface == surface)
        and (f.client_id is None or f.client_id in client_ids)
        and (f.kind != "token_expired" or has_bearer)
        and _path_matches(f.path, path)
    ]
    return _claim(db, candidates, now)


def claim_notification_fault(db: Session, *, client_id: str, uri: str, now: float) -> FiredFault | None:
    """For the notification sender: the fault to honour for one notification (see the module docstring).

    ``path`` matches the notification URI (a glob over the whole URI, or over its path).
    """
    faults = db.execute(
        select(Fault).where(Fault.kind.in_(tuple(NOTIFICATION_KINDS))).order_by(Fault.id)
    ).scalars().all()
    uri_path = urlsplit(uri).path
    candidates = [
        f for f in faults
        if (f.client_id is None or f.client_id == client_id)
        and (f.path is None or _path_matches(f.path, uri) or _path_matches(f.path, uri_path))
    ]
    return _claim(db, candidates, now)
