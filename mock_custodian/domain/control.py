"""Backends of the test-double control surface (spec 1.4): clock, world, third parties, customers, consent shortcuts.

Shared by the ``/__sim/`` API and the CLI. Each function takes a session (or the database, for
whole-world operations) and plain values, and raises ``ControlError`` for bad input before it
changes anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC, ClockState, check_instant, iso, parse_instant
from mock_custodian.domain.authorizations import (
    ConsentInvalid,
    Duration,
    NewAuthorization,
    consented_groups,
    create_customer_authorization,
    eligible_service_agreements,
)
from mock_custodian.domain.grants import IssuedTokens, TokenLifetimes, exchange_code
from mock_custodian.domain.world import load_world
from mock_custodian.errors import ControlError, ControlNotFound
from mock_custodian.pki import DevPKI
from mock_custodian.scenario.parse import Scenario, load_scenario_file, parse_scenario
from mock_custodian.store.db import Database, meta_get
from mock_custodian.store.models import (
    Customer,
    SimClock,
    ThirdParty,
)
from mock_custodian.vocabulary import DATA_GROUPS, RegistrationStatus

# --- clock -----------------------------------------------------------------------------------------


def clock_view(state: ClockState, real: float) -> dict[str, Any]:
    """What ``GET /__sim/clock`` answers: now in UTC, epoch and Pacific, and how it is kept."""
    now = state.now_epoch(real)
    return {
        "now": iso(now),
        "epoch": now,
        "local": dt.datetime.fromtimestamp(now, PACIFIC).isoformat(timespec="seconds"),
        "frozen": state.frozen_at is not None,
        "offset_s": now - real,
    }


def _clock_row(db: Session) -> SimClock:
    row = db.get(SimClock, 1)
    if row is None:
        row = SimClock(id=1, offset_s=0.0, frozen_at=None)
        db.add(row)
        db.flush()
    return row


def advance_clock(db: Session, seconds: float, real: float) -> None:
    """Move simulated time by ``seconds`` in one statement, so concurrent moves add up.

    A move that would leave the simulated calendar (1970-2999) is refused and nothing changes.
    """
    row = _clock_row(db)
    try:
        check_instant(ClockState(row.offset_s or 0.0, row.frozen_at).now_epoch(real) + seconds)
    except ValueError:
        raise ControlError(f"advancing by {seconds:g} seconds would leave the simulated calendar "
                           "(1970-01-01 to 2999-12-31 UTC); set the clock or reset instead") from None
    db.execute(
        update(SimClock)
        .where(SimClock.id == 1)
        .values(
            offset_s=case((SimClock.frozen_at.is_(None), SimClock.offset_s + seconds), else_=SimClock.offset_s),
            frozen_at=SimClock.frozen_at + seconds,  # NULL stays NULL
        )
    )


def set_clock(db: Session, instant: float, real: float) -> None:
    """Make now equal ``instant``; a frozen clock stays frozen there."""
    row = _clock_row(db)
    if row.frozen_at is not None:
        row.frozen_at = instant
    else:
        row.offset_s = instant - real


def freeze_clock(db: Session, real: float, at: float | None = None) -> None:
    """Stop simulated time (at now, or at ``at``): tests then move it only on purpose."""
    row = _clock_row(db)
    row.frozen_at = at if at is not None else ClockState(row.offset_s or 0.0, row.frozen_at).now_epoch(real)


def thaw_clock(db: Session, real: float) -> None:
    """Let a frozen clock run again from where it stands."""
    row = _clock_row(db)
    if row.frozen_at is not None:
        row.offset_s = row.frozen_at - real
        row.frozen_at = None


_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_SHORT = re.compile(r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any, field: str = "by") -> float:
    """Seconds from a number, ``90m`` / ``2h`` / ``1.5d`` / ``1w``, or ISO 8601 ``PT2H`` (``-`` moves back).

    Infinite, NaN or longer-than-the-calendar durations are refused, naming ``field``.
    """
    seconds = _duration_seconds(value)
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION_S:
        raise ControlError(f"{field}: {value!r} is not a usable duration (at most 1,000 years either way)")
    return seconds


MAX_DURATION_S = 1000 * 366 * 86400.0


def _duration_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ControlError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ControlError(f"not a duration: {value!r}")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-").strip()
    try:
        return sign * float(text)
    except ValueError:
        pass
    short = _SHORT.match(text.lower())
    if short:
        return sign * float(short["value"]) * _UNITS[short["unit"]]
    iso_match = _DURATION.match(text.upper())
    if iso_match and text.upper() not in ("P", "PT"):
        parts = {k: float(v) for k, v in iso_match.groupdict().items() if v}
        return sign * (parts.get("days", 0) * 86400 + parts.get("hours", 0) * 3600
                       + parts.get("minutes", 0) * 60 + parts.get("seconds", 0))
    raise ControlError(f"not a duration: {value!r} (use seconds, 90m, 2h, 3d, 1w or ISO 8601 like PT2H)")


def parse_instant_value(value: Any, field: str = "instant") -> float:
    """An instant from epoch seconds or ISO 8601 with a zone, as a clear 400 naming ``field`` when it is neither."""
    if isinstance(value, bool) or value is None:
        raise ControlError(f"{field}: not an instant: {value!r}")
    if isinstance(value, int | float):
        try:
            return check_instant(float(value))
        except (ValueError, OverflowError) as exc:
            raise ControlError(f"{field}: not an instant: {value!r}: {exc}") from None
    try:
        return parse_instant(str(value))
    except ValueError as exc:
        raise ControlError(f"{field}: not an instant: {str(value)[:80]!r}: {exc} (use ISO 8601 with Z or an "
                           "offset, or epoch seconds)") from None


# --- the world --------------------------------------------------------------------------------------


def reload_world(database: Database, pki: DevPKI, scenario: Scenario) -> None:
    """Replace everything (world, tokens, clock, logs, faults, sink) with ``scenario``."""
    load_world(database, scenario, pki)


def current_scenario(database: Database, fallback: Path | None) -> Scenario:
    """The scenario loaded now, read again from its file (reset goes back to it)."""
    with database.session() as db:
        path = meta_get(db, "scenario_path")
    if path and Path(path).exists():
        return load_scenario_file(Path(path))
    return load_scenario_file(fallback)


def scenario_from_upload(text: str, data_dir: Path) -> Scenario:
    """Validate uploaded YAML and keep a copy in the data dir, so a later reset can reload it."""
    scenario = parse_scenario(text, "<uploaded scenario>")
    folder = data_dir / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    target.write_text(text, encoding="utf-8")
    scenario.path = str(target)
    return scenario


# --- request log ------------------------------------------------------------------------------------


# --- async jobs and notifications (the engine of spec 6.4-6.5 honours `release`) --------------------


# --- record-only notification sink ------------------------------------------------------------------


# --- direct authorization (tests that do not care about consent) ------------------------------------


def third_party(db: Session, client_id: str) -> ThirdParty:
    tp = db.execute(select(ThirdParty).where(ThirdParty.client_id == client_id)).scalar_one_or_none()
    if tp is None:
        raise ControlNotFound(f"no third party with client_id {client_id!r}")
    return tp


def customer_by_ref(db: Session, ref: str) -> Customer:
    customer = db.execute(
        select(Customer).where(or_(Customer.key == ref, Customer.username == ref))
    ).scalar_one_or_none()
    if customer is None:
        raise ControlNotFound(f"no customer with key or user name {ref!r}")
    return customer


def set_notification_uri(db: Session, client_id: str, uri: Any) -> ThirdParty:
    """Point a registration's notification URI elsewhere (e.g. at the sink); PG&E requires https (spec 3.7)."""
    tp = third_party(db, client_id)
    if not isinstance(uri, str) or urlsplit(uri).scheme != "https" or not urlsplit(uri).hostname:
        raise ControlError(f"notification_uri must be an absolute https URL (got {uri!r})")
    tp.notification_uri = uri
    return tp


def customers(db: Session) -> list[dict[str, Any]]:
    """Every customer with accounts and SAs: the keys and numbers tests pass to authorizations."""
    from mock_custodian.domain.world import situations

    described = situations(db)["customers"]
    out = []
    for person in db.execute(select(Customer).order_by(Customer.id)).scalars():
        out.append({
            "key": person.key, "username": person.username, "name": person.name, "class": person.customer_class,
            "situation": described.get(person.key), "email": person.email,
            "phone": person.phone,  # guest access signs in with account number and phone
            "accounts": [{
                "account_number": account.account_number, "linked": account.linked,
                "service_agreements": [{
                    "key": sa.key, "sa_number": sa.sa_number, "usage_point_id": sa.usage_point_id,
                    "commodity": sa.commodity, "status": sa.status, "rate_schedule": sa.rate_schedule,
                    "meters": len(sa.meters),
                } for sa in account.service_agreements],
            } for account in person.accounts],
        })
    return out


def create_authorization(
    db: Session,
    *,
    customer: str,
    client_id: str,
    service_agreements: list[str] | None,
    data_groups: list[str] | None,
    end_date: str | None,
    now: float,
    resource_base: str,
    exchange: bool,
    lifetimes: TokenLifetimes,
) -> tuple[NewAuthorization, IssuedTokens | None]:
    """What a completed consent leaves behind, without the browser, through the consent backend itself.

    The same rules and effects as Submit on the consent page (spec 4.4, 4.14: validation, one live
    authorization per customer and third party, the replaced one's notification, the e-mail), then
    the code exchanged exactly as the token endpoint does unless ``exchange`` is false.
    """
    tp = third_party(db, client_id)
    if tp.user_type not in ("standard", "eef", "self_access"):
        raise ControlError(f"{client_id} is a {tp.user_type} registration: only Standard, EEF and Self-Access "
                           "registrations are authorized by customers (a CCA receives its territory)")
    if tp.status != RegistrationStatus.APPROVED:
        raise ControlError(f"{client_id}'s registration is {tp.status}, not Approved: customers can authorize only "
                           "approved registrations (rehearse with the OAuth Test harness until then)")
    person = customer_by_ref(db, customer)
    owned = [sa for account in person.accounts for sa in account.service_agreements]
    eligible = {sa.id for sa in eligible_service_agreements(db, person.id, now)}
    if service_agreements is None:
        sa_ids = sorted(eligible)
    else:
        if not isinstance(service_agreements, list) or not service_agreements:
            raise ControlError("service_agreements must be a non-empty list (SA keys, SA numbers or usage point ids)")
        by_ref = {ref: sa for sa in owned for ref in (sa.key, sa.sa_number, sa.usage_point_id)}
        sa_ids = []
        for ref in service_agreements:
            sa = by_ref.get(str(ref))
            if sa is None:
                raise ControlError(f"customer {customer!r} has no service agreement {ref!r} (use its key, SA number "
                                   "or usage point id; GET /__sim/customers lists them)")
            if sa.id not in sa_ids:
                sa_ids.append(sa.id)
    if data_groups is None:
        groups = list(tp.data_groups or [])
    elif not isinstance(data_groups, list) or not all(isinstance(g, str) for g in data_groups):
        raise ControlError("data_groups must be a list of group names")
    else:
        unknown = [g for g in data_groups if g not in DATA_GROUPS]
        if unknown:
            raise ControlError(f"unknown data group(s) {unknown}; PG&E's are {', '.join(DATA_GROUPS)}")
        groups = data_groups
    groups = consented_groups(tp, groups)
    try:
        duration = Duration(dt.date.fromisoformat(end_date) if end_date else None)
    except (TypeError, ValueError):
        raise ControlError(f"end_date must be YYYY-MM-DD (got {end_date!r})") from None
    redirect_uri = tp.redirect_uri if tp.user_type != "self_access" else None
    try:
        created = create_customer_authorization(
            db, tp=tp, customer_id=person.id, data_groups=groups, service_agreement_ids=sa_ids, duration=duration,
            now=now, resource_base=resource_base, redirect_uri=redirect_uri,
        )
    except ConsentInvalid as exc:
        raise ControlError("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
    issued = None
    if exchange and created.code is not None and redirect_uri is not None:
        issued = exchange_code(db, tp, code=created.code, redirect_uri=redirect_uri, endpoint="production", now=now,
                               code_ttl=lifetimes.code_ttl, access_ttl=lifetimes.access_ttl,
                               refresh_ttl=lifetimes.refresh_ttl)
    return created, issued


# --- credentials export -----------------------------------------------------------------------------


