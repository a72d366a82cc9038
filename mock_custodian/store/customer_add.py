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
from faker import Faker
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ControlError
from ..scenario import CustomerSpec, parse_scenario
from .db import meta_get
from .models import Account, Customer, Meter, ServiceAgreement
from .recordings import save_recording
from .world import _address, _city, _metering, derive_digits


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


def add_customers(db: Session, specs: list[CustomerSpec]) -> list[Customer]:
    """Create the customers, accounts, SAs and meters of ``specs`` in the current world."""
    problems = _taken(db, specs)
    if problems:
        raise ControlError("; ".join(problems) + " (GET /__sim/customers lists the world's customers)")
    seed = int(meta_get(db, "scenario_seed") or 1)
    used: set[str] = set()
    for column in (Customer.customer_number, Account.account_number, ServiceAgreement.sa_number,
                   ServiceAgreement.usage_point_id, ServiceAgreement.agreement_key, ServiceAgreement.premise_number):
        used.update(v for v in db.execute(select(column)).scalars() if v)

    def unique_digits(*parts: str, length: int = 10) -> str:
        salt = 0
        while True:
            value = derive_digits(seed, *parts, length=length, salt=salt)
            if value not in used:
                used.add(value)
                return value
            salt += 1

    created = []
    for spec in specs:
        fake = Faker("en_US")
        fake.seed_instance(int(derive_digits(seed, "customer", spec.key, length=12)))
        city = _city(seed, spec.key, spec.city)
        customer = Customer(
            key=spec.key,
            customer_number=unique_digits("customer", spec.key),
            name=spec.name or (fake.company() if spec.customer_class != "RES" else fake.name()),
            username=spec.username,
            password=spec.password,
            email=spec.email or f"{spec.username}@example.com",
            phone=spec.phone or f"({city[2]}) 555-{derive_digits(seed, 'phone', spec.key, length=4)}",
            customer_class=spec.customer_class,
        )
        db.add(customer)
        db.flush()
        home = _address(fake, seed, spec.key, city)
        for account_spec in spec.accounts:
            account = Account(customer_id=customer.id, account_number=unique_digits("account", account_spec.key),
                              billing_address=home, linked=True)
            db.add(account)
            db.flush()
            for sa_spec in account_spec.service_agreements:
                usage_point_id = unique_digits("usage_point", sa_spec.key)
                metering = _metering(sa_spec.profile, seed, sa_spec.key, city[3], usage_point_id)
                sa = ServiceAgreement(
                    account_id=account.id, key=sa_spec.key, sa_number=unique_digits("sa", sa_spec.key),
                    usage_point_id=usage_point_id, agreement_key=unique_digits("agreement", sa_spec.key),
                    premise_number=unique_digits("premise", sa_spec.key), commodity=sa_spec.commodity,
                    status=sa_spec.status, service_start=sa_spec.service_start,
                    service_address=dict(sa_spec.address) if sa_spec.address else home,
                    customer_class=sa_spec.customer_class, rate_schedule=sa_spec.rate_schedule,
                    read_cycle=metering["read_cycle"], profile=metering, dr_programs=sa_spec.dr_programs,
                )
                db.add(sa)
                db.flush()
                if sa_spec.recording is not None:  # replayed meter data, stored once as in load_world
                    save_recording(db, sa_spec.recording)
                interval = sa_spec.profile["interval_length"]
                for position in range(1, sa_spec.meters + 1):
                    db.add(Meter(
                        service_agreement_id=sa.id, position=position,
                        serial_number=("1009" if sa.commodity == "electric" else "2004")
                        + unique_digits("meter", sa_spec.key, str(position), length=6),
                        meter_type="SmartMeter" if interval else "Non-interval", interval_length=interval,
                    ))
        created.append(customer)
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
