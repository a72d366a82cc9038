"""Bulk loading of a generated population: Core inserts of many rows per statement, a transaction per batch.

Loading one ORM object at a time took 42 s for 10,000 customers; here each batch of customers, accounts,
service agreements, meters, CCA system authorizations and rule-made customer authorizations is a handful
of multi-row INSERTs with ids assigned up front, and memory holds one batch at a time however large the
population. The scenario digest is written by the caller only after the last batch, so an interrupted
load leaves a world that is reloaded on the next start instead of one that looks complete.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text

from mock_custodian.scenario.parse import resolve_instant
from mock_custodian.scenario.population import (
    ID_KINDS,
    GeneratedCustomer,
    PopulationSpec,
    generate_customer,
    id_keys,
)
from mock_custodian.store.db import Database, meta_get, meta_set
from mock_custodian.store.hashed import ScenarioPasswords
from mock_custodian.store.models import (
    Account,
    Authorization,
    Customer,
    Meter,
    ServiceAgreement,
    authorization_service_agreements,
)
from mock_custodian.synth.config import ServiceAgreementModel

BATCH = 2000
CCA_GROUPS = ["Usage", "Billing", "Basic", "Account"]
_READ_CYCLES = "ABCDEFGHJKLMNPQRSTVWXYZ"  # as ServiceAgreementModel.from_dict derives it


@dataclass(frozen=True)
class ThirdPartyRef:
    """What the loader needs of a loaded third party."""

    id: int
    user_type: str
    history_months: int
    accepted: bool


def reserve_ids(db: Any, counter: str, count: int, start: int) -> int:
    """Take ``count`` consecutive values of a platform-wide counter at once; returns the first.

    The counter row holds the last value handed out (as ``store.db.next_id`` keeps it).
    """
    if count <= 0:
        return 0
    key = f"counter:{counter}"
    current = meta_get(db, key)
    first = start if current is None else int(current) + 1
    meta_set(db, key, str(first + count - 1))
    db.flush()
    return first


def _max_id(db: Any, column: Any) -> int:
    return int(db.execute(select(func.coalesce(func.max(column), 0))).scalar_one())


class _Templates:
    """One validated metering configuration per profile mix; each SA copies it and sets its own fields."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, int], dict] = {}

    def profile(self, customer: GeneratedCustomer, seed: int) -> dict:
        key = (customer.profile, customer.customer_class, customer.meters)
        template = self._cache.get(key)
        if template is None:
            template = ServiceAgreementModel.from_dict({
                "profile": customer.profile, "usage_point_id": "1000000000", "customer_class": customer.customer_class,
                "meters": customer.meters, "sa_start": 0,
            }).to_dict()
            self._cache[key] = template
        stored = dict(template)
        usage_point = customer.numbers["usage_point"]
        stored.update(usage_point_id=usage_point, sa_start=int(customer.service_start),
                      climate_zone=customer.climate_zone, read_cycle=_READ_CYCLES[int(usage_point) % len(_READ_CYCLES)],
                      seed=int(customer.numbers["sa"]) % 999_999_937, weather_seed=seed)
        return stored


def load_population(database: Database, spec: PopulationSpec, third_parties: dict[str, ThirdPartyRef],
                    taken: set[str], now: float, *, authorization_start: int,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Insert the generated customers with their territories and authorizations; returns row counts.

    ``taken`` holds the numbers the listed customers already use (a generated one moves aside).
    """
    if progress is None and sys.stderr.isatty():
        progress = _terminal_progress
    keys = id_keys(spec.seed)
    avoid = {kind: taken for kind in ID_KINDS}
    templates = _Templates()
    password = ScenarioPasswords()(spec.password)  # one distinct password: hashed once, salted, never plain
    kept = [0] * (len(spec.territories) + len(spec.authorizations))
    counts = {"customers": 0, "service_agreements": 0, "meters": 0, "cca_authorizations": 0,
              "customer_authorizations": 0}
    with database.session() as db:
        next_customer = _max_id(db, Customer.id) + 1
        next_account = _max_id(db, Account.id) + 1
        next_sa = _max_id(db, ServiceAgreement.id) + 1
        next_meter = _max_id(db, Meter.id) + 1
    for batch_start in range(0, spec.count, BATCH):
        customers, accounts, sas, meters, grants = [], [], [], [], []
        for index in range(batch_start, min(spec.count, batch_start + BATCH)):
            person = generate_customer(spec, index, avoid, keys)
            customer_id, account_id, sa_id = next_customer, next_account, next_sa
            next_customer, next_account, next_sa = next_customer + 1, next_account + 1, next_sa + 1
            customers.append({
                "id": customer_id, "key": person.key, "customer_number": person.numbers["customer"],
                "name": person.name, "username": person.username, "password": password, "email": person.email,
                "phone": person.phone, "customer_class": person.customer_class,
            })
            address = person.address
            accounts.append({"id": account_id, "customer_id": customer_id,
                             "account_number": person.numbers["account"], "billing_address": address, "linked": True})
            profile = templates.profile(person, spec.seed)
            sas.append({
                "id": sa_id, "account_id": account_id, "key": person.sa_key, "sa_number": person.numbers["sa"],
                "usage_point_id": person.numbers["usage_point"], "agreement_key": person.numbers["agreement"],
                "premise_number": person.numbers["premise"], "commodity": profile["commodity"], "status": "Active",
                "service_start": person.service_start, "service_end": None, "service_address": address,
                "customer_class": person.customer_class, "rate_schedule": profile["rate_schedule"],
                "read_cycle": profile["read_cycle"], "profile": profile, "dr_programs": [],
            })
            interval = profile["interval_length"]
            serial_prefix = "1009" if profile["commodity"] == "electric" else "2004"
            for position in range(1, person.meters + 1):
                meters.append({
                    "id": next_meter, "service_agreement_id": sa_id, "position": position,
                    "serial_number": f"{serial_prefix}{(int(person.numbers['premise']) + position) % 1_000_000:06d}",
                    "meter_type": "SmartMeter" if interval else "Non-interval", "interval_length": interval,
                    "installed_at": None, "removed_at": None,
                })
                next_meter += 1
            rules = [*spec.territories, *spec.authorizations]
            for slot, rule in enumerate(rules):
                if rule.select.first is not None and kept[slot] >= rule.select.first:
                    continue
                if not rule.select.matches(person, spec.seed):
                    continue
                kept[slot] += 1
                grants.append((slot, customer_id, sa_id))
        with database.session() as db:
            db.execute(insert(Customer.__table__), customers)
            db.execute(insert(Account.__table__), accounts)
            db.execute(insert(ServiceAgreement.__table__), sas)
            db.execute(insert(Meter.__table__), meters)
            _grant(db, spec, third_parties, grants, now, authorization_start, counts)
        counts["customers"] += len(customers)
        counts["service_agreements"] += len(sas)
        counts["meters"] += len(meters)
        if progress is not None:
            progress(counts["customers"], spec.count)
    if progress is _terminal_progress and spec.count:
        sys.stderr.write("\n")
    with database.session() as db:
        _follow_sequences(db, (Customer, Account, ServiceAgreement, Meter))
    return counts


def _follow_sequences(db: Any, models: tuple[Any, ...]) -> None:
    """Explicit ids do not advance PostgreSQL's sequences: move them past the rows, so later inserts
    (customers added at run time, registrations) do not collide. SQLite takes max(id) + 1 by itself."""
    if db.get_bind().dialect.name != "postgresql":
        return
    for model in models:
        table = model.__tablename__
        db.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"))


def _grant(db: Any, spec: PopulationSpec, third_parties: dict[str, ThirdPartyRef], grants: list[tuple[int, int, int]],
           now: float, authorization_start: int, counts: dict[str, int]) -> None:
    """The batch's authorizations: a CCA's one per territory account, a rule's one per customer."""
    rows, links = [], []
    territory_count = len(spec.territories)
    wanted = []
    for slot, customer_id, sa_id in grants:
        if slot < territory_count:
            tp = third_parties[spec.territories[slot].third_party]
            if tp.user_type != "cca" or not tp.accepted:
                continue
            wanted.append((slot, customer_id, sa_id, tp))
        else:
            rule = spec.authorizations[slot - territory_count]
            wanted.append((slot, customer_id, sa_id, third_parties[rule.third_party]))
    if not wanted:
        return
    first = reserve_ids(db, "authorization_id", len(wanted), authorization_start)
    for offset, (slot, customer_id, sa_id, tp) in enumerate(wanted):
        auth_id = first + offset
        if slot < territory_count:
            rows.append({"id": auth_id, "third_party_id": tp.id, "customer_id": customer_id, "kind": "cca",
                         "data_groups": CCA_GROUPS, "history_months": 48, "created_at": now, "ends_at": None,
                         "revoked_at": None, "revoked_reason": None, "replaced_by": None, "updated_at": now})
            counts["cca_authorizations"] += 1
        else:
            rule = spec.authorizations[slot - territory_count]
            created = resolve_instant(rule.created_at, now)
            rows.append({"id": auth_id, "third_party_id": tp.id, "customer_id": customer_id, "kind": "customer",
                         "data_groups": list(rule.data_groups), "history_months": tp.history_months,
                         "created_at": created, "ends_at": resolve_instant(rule.ends_at, now), "revoked_at": None,
                         "revoked_reason": None, "replaced_by": None, "updated_at": created})
            counts["customer_authorizations"] += 1
        links.append({"authorization_id": auth_id, "service_agreement_id": sa_id})
    db.execute(insert(Authorization.__table__), rows)
    db.execute(insert(authorization_service_agreements), links)


def _terminal_progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(1, total)
    sys.stderr.write(f"\rLoading generated customers [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
