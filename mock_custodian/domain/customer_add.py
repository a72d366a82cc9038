"""Add customers to the running world without replacing it (``POST /__sim/customers``, ``customers add``).

The input is a scenario fragment, ``customers: [...]`` in the scenario file's own format, so a
customer written for a scenario can be added at run time and vice versa. Identifiers derive from the
loaded world's seed and the keys, exactly as at load time, so the same customer gets the same
numbers either way (unless a number is already taken). All or nothing: a key, user name or SA key
that already exists refuses the whole fragment. ``reset`` returns to the loaded scenario, which
does not hold customers added this way.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from mock_custodian.domain.world import UniqueNumbers, create_customer
from mock_custodian.errors import ControlError
from mock_custodian.scenario.parse import CustomerSpec, parse_scenario
from mock_custodian.store.db import meta_get
from mock_custodian.store.hashed import ScenarioPasswords
from mock_custodian.store.models import Account, Customer, ServiceAgreement


def parse_customers(text: str, path: str = "<customers>") -> list[CustomerSpec]:
    """The ``customers`` of a fragment; ScenarioError names the line and field of any mistake."""
    scenario = parse_scenario(text, path)
    if scenario.third_parties or scenario.authorizations or scenario.timeline:
        raise ControlError("only `customers:` can be added to a running world (third parties, authorizations "
                           "and timelines come with a scenario: POST /__sim/scenario)")
    if not scenario.customers:
        raise ControlError("the fragment holds no customers (write `customers: [ {key: ..., accounts: [...]} ]`)")
    return scenario.customers


def _taken(db: Session, specs: list[CustomerSpec]) -> list[str]:
    keys = {s.key for s in specs}
    usernames = {s.username for s in specs}
    sa_keys = {sa.key for s in specs for a in s.accounts for sa in a.service_agreements}
    problems = [f"customer key {k!r} exists" for k in db.execute(
        select(Customer.key).where(Customer.key.in_(keys))).scalars()]
    problems += [f"username {u!r} exists" for u in db.execute(
        select(Customer.username).where(Customer.username.in_(usernames))).scalars()]
    problems += [f"service agreement key {k!r} exists" for k in db.execute(
        select(ServiceAgreement.key).where(ServiceAgreement.key.in_(sa_keys))).scalars()]
    return problems


def add_customers(db: Session, specs: list[CustomerSpec], now: float) -> list[Customer]:
    """Create the customers, accounts, SAs and meters of ``specs`` in the current world, as a load would."""
    problems = _taken(db, specs)
    if problems:
        raise ControlError("; ".join(problems) + " (GET /__sim/customers lists the world's customers)")
    seed = int(meta_get(db, "scenario_seed") or 1)
    used: set[str] = set()
    for column in (Customer.customer_number, Account.account_number, ServiceAgreement.sa_number,
                   ServiceAgreement.usage_point_id, ServiceAgreement.agreement_key, ServiceAgreement.premise_number):
        used.update(v for v in db.execute(select(column)).scalars() if v)

    numbers = UniqueNumbers(seed, used)
    passwords = ScenarioPasswords()
    created = [create_customer(db, spec, seed, numbers, now, passwords)[0] for spec in specs]
    db.flush()
    return created


def fragment_from_json(body: Any) -> str:
    """A JSON body as a YAML fragment: ``{"customers": [...]}`` or one customer mapping.

    JSON has no date type, so ``"YYYY-MM-DD"`` strings become the YAML dates a scenario file would hold.
    """
    if isinstance(body, dict) and "customers" not in body and "key" in body:
        body = {"customers": [body]}
    if not isinstance(body, dict):
        raise ControlError("send {\"customers\": [...]} or one customer mapping, in the scenario file's format")
    return yaml.safe_dump(_dates(body), sort_keys=False)


def _dates(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value
