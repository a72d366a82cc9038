"""Loading a scenario into the database, and reading back what a third party needs to connect."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.milestones import APPROVED, REQUIRED_TESTS
from mock_custodian.domain.population_load import ThirdPartyRef, load_population
from mock_custodian.domain.recordings import save_recording
from mock_custodian.pki import DevPKI
from mock_custodian.scenario.parse import PGE_CITIES, CustomerSpec, Scenario, derive_digits, resolve_instant
from mock_custodian.store.db import Database, clear_world, meta_get, meta_set, next_id
from mock_custodian.store.hashed import ScenarioPasswords
from mock_custodian.store.models import (
    Account,
    Authorization,
    Customer,
    Meter,
    ServiceAgreement,
    ThirdParty,
    ThirdPartyCertificate,
)
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.vocabulary import RegistrationStatus

if TYPE_CHECKING:
    from faker import Faker

AUTHORIZATION_ID_START = 4095250
APPLICATION_INFORMATION_ID_START = 7000100
CLIENT_ID_START = 101
SITUATIONS_KEY = "situations"

USER_TYPE_LABELS = {
    "standard": "Standard User",
    "self_access": "Self-Access User",
    "eef": "Energy Efficiency Finance",
    "cca": "Community Choice Aggregator",
}
STATUS_LABELS = {
    RegistrationStatus.SUBMITTED: "Submitted",
    RegistrationStatus.IN_REVIEW: "In Review",
    RegistrationStatus.ACCEPTED: "Accepted",
    RegistrationStatus.APPROVED: "Approved",
    RegistrationStatus.ON_HOLD: "On Hold",
    RegistrationStatus.EXPIRED: "Expired",
    RegistrationStatus.TERMINATED: "Terminated",
}


def loaded_scenario(database: Database) -> dict[str, str] | None:
    """What is loaded now: path and digest, or None for an empty database."""
    with database.session() as db:
        digest = meta_get(db, "scenario_digest")
        if digest is None:
            return None
        return {
            "digest": digest,
            "path": meta_get(db, "scenario_path") or "",
            "name": meta_get(db, "scenario_name") or "",
        }


def load_world(database: Database, scenario: Scenario, pki: DevPKI) -> None:
    """Replace the whole world with ``scenario``; the simulated clock starts again at real time.

    The listed world is written in one transaction that first deletes the old rows (``clear_world``), so
    a request or job running meanwhile sees one world or the other; a generated population
    (``store.population_load``) follows in batches, and the scenario digest comes last.
    """
    database.create_schema()
    now = database.clock().real_epoch()
    scenario_password = ScenarioPasswords()  # each distinct scenario password hashed once per load
    with database.session() as db:
        clear_world(db)
        tp_by_key: dict[str, ThirdParty] = {}
        for spec in scenario.third_parties:
            client_id = spec.client_id or str(next_id(db, "client_id", CLIENT_ID_START)).zfill(5)
            accepted = spec.status not in (RegistrationStatus.SUBMITTED, RegistrationStatus.IN_REVIEW)
            tp = ThirdParty(
                client_id=client_id,
                client_secret=spec.client_secret or str(uuid.uuid4()),
                registration_access_token=str(uuid.uuid4()),
                application_information_id=str(
                    next_id(db, "application_information_id", APPLICATION_INFORMATION_ID_START)
                ),
                user_type=spec.user_type,
                status=spec.status,
                legal_name=spec.legal_name,
                display_name=spec.display_name,
                tax_id=spec.tax_id,
                description=spec.description,
                phone=spec.phone,
                business_contact=spec.business_contact,
                technical_contact=spec.technical_contact,
                redirect_uri=spec.redirect_uri,
                portal_uri=spec.portal_uri,
                scope_selection_uri=spec.scope_selection_uri,
                notification_uri=spec.notification_uri,
                notify_daily=spec.notify_daily,
                data_groups=spec.data_groups,
                history_months=spec.history_months,
                visible=spec.visible,
                portal_username=spec.portal_username or spec.key,
                portal_password=scenario_password(spec.portal_password or "demo"),
                cca_territory=[],
                milestones=(
                    {name: now for name in REQUIRED_TESTS[spec.user_type]} | {APPROVED: now}
                    if spec.status == RegistrationStatus.APPROVED
                    else {}
                ),
                created_at=now,
                client_id_issued_at=now if accepted else None,
                accepted_at=now if accepted else None,
                approved_at=now if spec.status == RegistrationStatus.APPROVED else None,
                terminated_at=now if spec.status == RegistrationStatus.TERMINATED else None,
            )
            db.add(tp)
            db.flush()
            files = pki.ensure_client(client_id, spec.display_name)
            db.add(
                ThirdPartyCertificate(
                    third_party_id=tp.id,
                    fingerprint_sha256=files.fingerprint_sha256,
                    pem=files.certificate.read_text(),
                    status="active",
                    uploaded_at=now,
                    activates_at=now,
                )
            )
            if accepted:
                for kind in ("bulk", "registration"):
                    db.add(system_authorization(db, tp, kind, now))
            tp_by_key[spec.key] = tp

        sa_by_key: dict[str, ServiceAgreement] = {}
        customer_by_key: dict[str, Customer] = {}
        used_numbers: set[str] = set()

        numbers = UniqueNumbers(scenario.seed, used_numbers)
        for spec in scenario.customers:
            customer, sas = create_customer(db, spec, scenario.seed, numbers, now, scenario_password)
            customer_by_key[spec.key] = customer
            sa_by_key.update(sas)

        for tp_spec in scenario.third_parties:
            tp = tp_by_key[tp_spec.key]
            territory = [sa_by_key[k] for k in tp_spec.cca_territory]
            tp.cca_territory = [sa.sa_number for sa in territory]
            if tp.user_type == "cca" and tp.accepted_at is not None:
                db.add_all(_cca_authorizations(db, tp, territory, now))
            if tp_spec.user_type == "self_access":
                # The self-access user's own login: named in the file, else the customer it authorized.
                owner = tp_spec.customer or next(
                    (a.customer for a in scenario.authorizations if a.third_party == tp_spec.key), None
                )
                if owner is not None:
                    tp_by_key[tp_spec.key].self_access_customer_id = customer_by_key[owner].id

        for auth_spec in scenario.authorizations:
            tp = tp_by_key[auth_spec.third_party]
            created = resolve_instant(auth_spec.created_at, now)
            assert created is not None
            authorization = Authorization(
                id=next_id(db, "authorization_id", AUTHORIZATION_ID_START),
                third_party_id=tp.id,
                customer_id=customer_by_key[auth_spec.customer].id,
                kind="customer",
                data_groups=auth_spec.data_groups,
                history_months=tp.history_months,
                created_at=created,
                ends_at=(_end_of_day(_day_instant(auth_spec.ends_on, now)) if auth_spec.ends_on is not None
                         else resolve_instant(auth_spec.ends_at, now)),
                updated_at=created,
            )
            authorization.service_agreements = [sa_by_key[k] for k in auth_spec.service_agreements]
            db.add(authorization)

        db.flush()
        _load_timeline(db, scenario, sa_by_key, tp_by_key, now)
        tp_refs = {key: ThirdPartyRef(tp.id, tp.user_type, tp.history_months, tp.accepted_at is not None)
                   for key, tp in tp_by_key.items()}

        meta_set(db, SITUATIONS_KEY, json.dumps({
            "customers": {c.key: c.situation for c in scenario.customers if c.situation},
            "third_parties": {tp_by_key[t.key].client_id: t.situation for t in scenario.third_parties if t.situation},
        }))
    if scenario.population is not None:  # generated customers: bulk inserts, a transaction per batch
        load_population(database, scenario.population, tp_refs, used_numbers, now,
                        authorization_start=AUTHORIZATION_ID_START)
    with database.session() as db:  # last: a load cut short has no digest and is loaded again
        meta_set(db, "scenario_digest", scenario.digest)
        meta_set(db, "scenario_path", scenario.path)
        meta_set(db, "scenario_name", scenario.name)
        meta_set(db, "scenario_seed", str(scenario.seed))
        meta_set(db, "loaded_at", str(now))


class UniqueNumbers:
    """PG&E-looking numbers derived from (seed, parts), moved aside (salted) when one is already taken."""

    def __init__(self, seed: int, used: set[str]) -> None:
        self.seed, self.used = seed, used

    def __call__(self, *parts: str, length: int = 10) -> str:
        salt = 0
        while True:
            value = derive_digits(self.seed, *parts, length=length, salt=salt)
            if value not in self.used:
                self.used.add(value)
                return value
            salt += 1


def create_customer(db: Session, spec: CustomerSpec, seed: int, numbers: UniqueNumbers, now: float,
                    scenario_password: ScenarioPasswords) -> tuple[Customer, dict[str, ServiceAgreement]]:
    """One scenario customer with its accounts, SAs and meters: at load, and when added at run time."""
    from faker import Faker  # only when a world is loaded: a restart need not import it (issue 17)

    fake = Faker("en_US")
    fake.seed_instance(int(derive_digits(seed, "customer", spec.key, length=12)))
    city = _city(seed, spec.key, spec.city)
    customer = Customer(
        key=spec.key,
        customer_number=numbers("customer", spec.key),
        name=spec.name or (fake.company() if spec.customer_class != "RES" else fake.name()),
        username=spec.username,
        password=scenario_password(spec.password) if spec.online_account else "",  # "": no sign-in
        email=spec.email or f"{spec.username}@example.com",
        phone=spec.phone or f"({city[2]}) 555-{derive_digits(seed, 'phone', spec.key, length=4)}",
        customer_class=spec.customer_class,
    )
    db.add(customer)
    db.flush()
    home = _address(fake, seed, spec.key, city)
    sas: dict[str, ServiceAgreement] = {}
    for acct_spec in spec.accounts:
        account = Account(customer_id=customer.id, account_number=numbers("account", acct_spec.key),
                          billing_address=home, linked=True)
        db.add(account)
        db.flush()
        for sa_spec in acct_spec.service_agreements:
            usage_point_id = numbers("usage_point", sa_spec.key)
            service_start = _day_instant(sa_spec.service_start, now)
            profile = {**sa_spec.profile, "sa_start": int(service_start)}
            metering = _metering(profile, seed, sa_spec.key, city[3], usage_point_id)
            sa = ServiceAgreement(
                account_id=account.id, key=sa_spec.key, sa_number=numbers("sa", sa_spec.key),
                usage_point_id=usage_point_id, agreement_key=numbers("agreement", sa_spec.key),
                premise_number=numbers("premise", sa_spec.key), commodity=sa_spec.commodity,
                status=sa_spec.status, service_start=service_start,
                service_address=dict(sa_spec.address) if sa_spec.address else home,
                customer_class=sa_spec.customer_class, rate_schedule=sa_spec.rate_schedule,
                read_cycle=metering["read_cycle"], profile=metering, dr_programs=sa_spec.dr_programs,
            )
            db.add(sa)
            db.flush()
            if sa_spec.recording is not None:  # replayed meter data, stored once
                save_recording(db, sa_spec.recording)
            interval = sa_spec.profile["interval_length"]
            for position in range(1, sa_spec.meters + 1):
                db.add(Meter(
                    service_agreement_id=sa.id, position=position,
                    serial_number=("1009" if sa.commodity == "electric" else "2004")
                    + numbers("meter", sa_spec.key, str(position), length=6),
                    meter_type="SmartMeter" if interval else "Non-interval", interval_length=interval,
                ))
            sas[sa_spec.key] = sa
    return customer, sas


def situations(db: Any) -> dict[str, dict[str, str]]:
    """The scenario's ``situation`` texts: ``customers`` by key, ``third_parties`` by client_id."""
    return json.loads(meta_get(db, SITUATIONS_KEY) or "{}") or {"customers": {}, "third_parties": {}}


def _end_of_day(day_start: float | None) -> float | None:
    """``ends_on``: access lasts through that local day (the consent page's end date, spec 4.4)."""
    if day_start is None:
        return None
    day = dt.datetime.fromtimestamp(day_start, PACIFIC).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp()


def _day_instant(value: float | str | None, now: float) -> float | None:
    """A timeline date: absolute local midnight, or an offset rounded down to its local day."""
    if value is None or isinstance(value, float | int):
        return value
    moment = resolve_instant(value, now)
    day = dt.datetime.fromtimestamp(moment, PACIFIC).date()
    return dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp()


def _load_timeline(db: Any, scenario: Scenario, sa_by_key: dict, tp_by_key: dict, now: float) -> None:
    """Declare the scenario's data changes and schedule its account events (past ones apply at once)."""
    from mock_custodian.domain.events import CUSTOMER_EVENT_KINDS, declare_consent_event, schedule_customer_event
    from mock_custodian.domain.lifecycle import (
        DATA_CHANGE_KINDS,
        declare_bill_revision,
        declare_correction,
        declare_gap,
        schedule_event,
    )

    for entry in scenario.timeline:
        sa = sa_by_key.get(entry.sa) if entry.sa else None
        if entry.customer is not None:  # a customer action, or an event anchored to the customer's consents
            customer = db.execute(select(Customer).where(Customer.key == entry.customer)).scalar_one()
            params = dict(entry.params)
            tp_key = params.pop("third_party_of", None)
            client_id = tp_by_key[tp_key].client_id if tp_key else None
            if entry.event in CUSTOMER_EVENT_KINDS and client_id:
                params["client_id"] = client_id
            if "client_id_of" in params:
                params["client_id"] = tp_by_key[params.pop("client_id_of")].client_id
            account = _account_by_key(db, scenario, entry.account) if entry.account is not None else None
            if entry.after_consent is not None:
                declare_consent_event(db, entry.event, entry.after_consent, customer_id=customer.id,
                                      client_id=client_id, sa=sa, account=account, params=params)
            else:
                schedule_customer_event(db, entry.event, resolve_instant(entry.at, now), customer_id=customer.id,
                                        params=params)
            continue
        at = resolve_instant(entry.at, now) if entry.at is not None else None
        params = dict(entry.params)
        if entry.event in DATA_CHANGE_KINDS:
            start = _day_instant(entry.start, now)
            if entry.event == "gap":
                declare_gap(db, sa, start, _day_instant(entry.end, now), now, **{
                    k: params[k] for k in ("estimate_after", "final_after", "estimate_quality", "meter",
                                           "flow_direction") if k in params})
            elif entry.event == "correction":
                declare_correction(db, sa, start, _day_instant(entry.end, now), now, at=at, **{
                    k: params[k] for k in ("factor", "quality", "meter", "flow_direction") if k in params})
            else:
                declare_bill_revision(db, sa, start, now, at=at, factor=params.get("factor", 1.05))
            continue
        account = _account_by_key(db, scenario, entry.account) if entry.account is not None else None
        if "client_id_of" in params:
            params["client_id"] = tp_by_key[params.pop("client_id_of")].client_id
        schedule_event(db, entry.event, at if at is not None else now, sa=sa, account=account, params=params)


def _account_by_key(db: Any, scenario: Scenario, key: str) -> Account:
    owner = next(c for c in scenario.customers for a in c.accounts if a.key == key)
    position = [a.key for a in owner.accounts].index(key)
    customer = db.execute(select(Customer).where(Customer.key == owner.key)).scalar_one()
    return customer.accounts[position]


def _cca_authorizations(db: Any, tp: ThirdParty, territory: list[ServiceAgreement], now: float) -> list[Authorization]:
    """A CCA's system authorizations: one per customer account in its territory, indefinite (spec 8.2)."""
    by_account: dict[int, list[ServiceAgreement]] = {}
    for sa in territory:
        by_account.setdefault(sa.account_id, []).append(sa)
    out = []
    for account_id in sorted(by_account):
        account = db.get(Account, account_id)
        authorization = Authorization(
            id=next_id(db, "authorization_id", AUTHORIZATION_ID_START), third_party_id=tp.id,
            customer_id=account.customer_id, kind="cca", data_groups=["Usage", "Billing", "Basic", "Account"],
            history_months=48, created_at=now, ends_at=None, updated_at=now,
        )
        authorization.service_agreements = by_account[account_id]
        out.append(authorization)
    return out


def system_authorization(db: Any, tp: ThirdParty, kind: str, now: float) -> Authorization:
    """The client-level (bulk) and registration entries every accepted registration has (spec 8.2)."""
    return Authorization(
        id=next_id(db, "authorization_id", AUTHORIZATION_ID_START),
        third_party_id=tp.id,
        customer_id=None,
        kind=kind,
        data_groups=[],
        history_months=tp.history_months,
        created_at=now,
        ends_at=None,
        updated_at=now,
    )


def _metering(profile: dict, seed: int, sa_key: str, climate_zone: int, usage_point_id: str) -> dict:
    """The SA's data-engine configuration as stored (``ServiceAgreementModel.from_dict`` reads it back).

    Seed, climate zone and read cycle are derived (from the scenario seed, the city and the usage
    point) unless the file gave them.
    """
    explicit = set(profile.get("explicit", ()))
    stored = {k: v for k, v in profile.items() if k != "explicit" and (k != "read_cycle" or k in explicit)}
    stored["usage_point_id"] = usage_point_id
    if "seed" not in explicit:
        stored["seed"] = int(derive_digits(seed, "profile-seed", sa_key, length=9))
    if "climate_zone" not in explicit:
        stored["climate_zone"] = climate_zone
    return ServiceAgreementModel.from_dict(stored).to_dict()


def _city(seed: int, key: str, wanted: str | None) -> tuple[str, str, str, int]:
    if wanted:
        return next(c for c in PGE_CITIES if c[0] == wanted)
    return PGE_CITIES[int(derive_digits(seed, "city", key, length=6)) % len(PGE_CITIES)]


def _address(fake: Faker, seed: int, key: str, city: tuple[str, str, str, int]) -> dict[str, str]:
    zip_code = city[1] + derive_digits(seed, "zip", key, length=2)[-2:]
    return {"street": fake.street_address().upper(), "city": city[0].upper(), "state": "CA", "zip": zip_code}


def third_party_credentials(database: Database, pki: DevPKI, server: dict[str, Any]) -> dict[str, Any]:
    """What ``mock-custodian credentials --json`` prints and ``/__sim/credentials`` serves."""
    with database.session() as db:
        tps = db.execute(select(ThirdParty).order_by(ThirdParty.client_id)).scalars().all()
        bulk_ids = {
            a.third_party_id: a.id
            for a in db.execute(select(Authorization).where(Authorization.kind == "bulk")).scalars()
        }
        described = situations(db)["third_parties"]
        out = []
        for tp in tps:
            folder = pki.client_folder(tp.client_id)
            out.append(
                {
                    "client_id": tp.client_id,
                    "client_secret": tp.client_secret,
                    "display_name": tp.display_name,
                    "user_type": USER_TYPE_LABELS[tp.user_type],
                    "registration_status": STATUS_LABELS.get(tp.status, tp.status),
                    "bulk_id": tp.client_id,
                    "bulk_authorization_id": bulk_ids.get(tp.id),
                    "application_information_id": tp.application_information_id,
                    "registration_access_token": tp.registration_access_token,
                    "redirect_uri": tp.redirect_uri,
                    "third_party_portal_uri": tp.portal_uri,
                    "notification_uri": tp.notification_uri,
                    "portal_username": tp.portal_username,
                    "certificate": str(folder / "cert.pem"),
                    "key": str(folder / "key.pem"),
                    "certificate_chain": str(folder / "chain.pem"),
                    "situation": described.get(tp.client_id),
                }
            )
    return {
        "ca_bundle": str(pki.ca_bundle),
        "api_base_url": server.get("api_base_url"),
        "portal_base_url": server.get("portal_base_url"),
        "data_custodian_certificate_chain": str(pki.data_custodian_files().chain),
        "third_parties": out,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)
