"""Scenario files: the YAML world the simulator starts from, parsed with line numbers for errors.

A scenario declares third parties (with registration status), customers, their logins, accounts,
service agreements with meter profiles, and pre-existing authorizations. Identifiers are derived
from the scenario seed with a hash, never from Faker, so they never change; Faker only invents
names and street lines, once, at load time, and those are stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mock_custodian.clock import PACIFIC
from mock_custodian.scenario import fields
from mock_custodian.scenario.fields import (
    CUSTOMER_CLASSES,
    HISTORY_MONTHS,
    PGE_CITIES,
    REGISTRATION_STATUSES,
    USER_TYPES,
    Context,
    LineLoader,
    ScenarioError,
    YamlMap,
    YamlSeq,
)
from mock_custodian.synth.config import ALL_PROFILES, ServiceAgreementModel
from mock_custodian.vocabulary import RegistrationStatus

if TYPE_CHECKING:
    from mock_custodian.scenario.population import PopulationSpec

DEFAULT_DEMO = Path(__file__).resolve().parent / "fixtures" / "demo.yaml"
# Built-in scenarios, by the name ``--scenario NAME`` and ``extends: NAME`` accept.
BUILTIN_SCENARIOS = {
    "demo": DEFAULT_DEMO,
    "catalog": Path(__file__).resolve().parent / "fixtures" / "catalog.yaml",
}
# The commented starter ``mock-custodian scenario new`` writes (a file, so it reads as the YAML it is).
STARTER_FILE = Path(__file__).resolve().parent / "fixtures" / "starter.yaml"


# --------------------------------------------------------------------------------------------
# The validated, normalised scenario (plain data; loading into the store is store/world.py).


@dataclass
class ThirdPartySpec:
    key: str
    client_id: str | None
    user_type: str
    status: str
    legal_name: str
    display_name: str
    tax_id: str
    business_contact: dict
    technical_contact: dict
    description: str
    phone: str
    redirect_uri: str | None
    portal_uri: str | None
    scope_selection_uri: str | None
    notification_uri: str | None
    notify_daily: bool
    data_groups: list[str]
    history_months: int
    visible: bool
    client_secret: str | None
    portal_username: str | None
    portal_password: str | None
    cca_territory: list[str]
    customer: str | None = None  # Self-Access: the customer whose login the user signs in with
    situation: str | None = None  # what this registration is for (catalog entries), shown by /__sim/


@dataclass
class ServiceAgreementSpec:
    key: str
    commodity: str
    profile: dict
    rate_schedule: str
    read_cycle: str
    service_start: float | str  # epoch, or whole days from load time (``-1d``)
    status: str
    customer_class: str
    meters: int
    dr_programs: list
    address: dict | None
    recording: Any = None  # synth.recorded.Recording of a ``data: {file: ...}`` SA, stored at load


@dataclass
class AccountSpec:
    key: str
    service_agreements: list[ServiceAgreementSpec]


@dataclass
class CustomerSpec:
    key: str
    username: str
    password: str
    name: str | None
    email: str | None
    phone: str | None
    customer_class: str
    city: str | None
    accounts: list[AccountSpec]
    situation: str | None = None  # what happens to this customer (catalog entries), shown by /__sim/customers
    online_account: bool = True  # False: no My Energy login; only Guest Access (account number + phone)


@dataclass
class AuthorizationSpec:
    third_party: str
    customer: str
    service_agreements: list[str]
    data_groups: list[str]
    created_at: float | str
    ends_at: float | str | None
    ends_on: float | str | None = None  # the last day of access (a date or day offset): ends at its midnight


@dataclass
class TimelineSpec:
    """One entry of the scenario timeline: a data change or an account/SA event (spec 4.15, 7.13).

    Instants are absolute epochs or offsets like ``-10d`` from load time; ``start``/``end`` of a data
    change are local dates (an offset is rounded to its local day).
    """

    event: str
    at: float | str | None
    sa: str | None
    account: str | None
    start: float | str | None
    end: float | str | None
    params: dict
    customer: str | None = None  # customer actions (cancel/edit) and consent-anchored events
    after_consent: int | None = None  # seconds after each consent of the customer (instead of ``at``)


@dataclass
class Scenario:
    path: str
    name: str
    seed: int
    third_parties: list[ThirdPartySpec] = field(default_factory=list)
    customers: list[CustomerSpec] = field(default_factory=list)
    authorizations: list[AuthorizationSpec] = field(default_factory=list)
    timeline: list[TimelineSpec] = field(default_factory=list)
    digest: str = ""
    population: PopulationSpec | None = None  # generated customers (mock_custodian.scenario.population)


def resolve_instant(value: float | str | None, now: float) -> float | None:
    """Turn a stored scenario instant (absolute, or ``-90d`` relative to load time) into epoch."""
    if value is None or isinstance(value, float | int):
        return value
    match = re.fullmatch(r"([+-])(\d+)([dhm])", value)
    assert match, value
    sign = -1 if match.group(1) == "-" else 1
    unit = {"d": 86400, "h": 3600, "m": 60}[match.group(3)]
    return now + sign * int(match.group(2)) * unit



# --------------------------------------------------------------------------------------------

_TP_KEYS = {
    "key", "client_id", "user_type", "status", "legal_name", "display_name", "tax_id",
    "business_contact", "technical_contact", "description", "phone", "redirect_uri", "portal_uri",
    "scope_selection_uri", "notification_uri", "notify_daily", "data_groups", "history_months",
    "visible", "client_secret", "portal_username", "portal_password", "cca_territory", "customer", "situation",
}
_CUSTOMER_KEYS = {"key", "username", "password", "name", "email", "phone", "class", "city", "accounts", "situation",
                  "online_account"}
_ACCOUNT_KEYS = {"key", "service_agreements"}
# Keys of the data engine's ServiceAgreementModel a scenario may set (usage_point_id and sa_start are
# derived: the usage point at load, sa_start from service_start).
_MODEL_KEYS = (
    "commodity", "scale", "seed", "interval_length", "meters", "flow_directions", "tou", "tou_calendar",
    "rate_schedule", "read_cycle", "voltage", "mv90", "climate_zone", "pv_scale", "ev_scale", "shape",
)
_SA_KEYS = {"key", "profile", "service_start", "status", "class", "dr_programs", "address", "data", *_MODEL_KEYS}
PLACEHOLDER_USAGE_POINT = "1000000000"
OFFSET_VALIDATION_EPOCH = 1767225600.0  # 2026-01-01T00:00Z
_AUTH_KEYS = {"third_party", "customer", "service_agreements", "data_groups", "created_at", "ends_at", "ends_on"}


def _extend(ctx: Context, doc: YamlMap, path: str) -> Scenario:
    """``extends: demo`` (a built-in name) or a file relative to this one: its lists come first.

    The base is validated on its own (its errors name its file); this file's entries are then checked
    against it (duplicate keys, references), so they may use its customers and third parties.
    """
    ref = fields.required(ctx, doc, "extends", "scenario")
    target = BUILTIN_SCENARIOS.get(ref) or (Path(path).parent / ref)
    try:
        base_text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise ctx.fail(doc, "extends", "scenario.extends", f"cannot read {str(target)!r}: {exc.strerror}") from exc
    if "extends" in (yaml.safe_load(base_text) or {}):
        raise ctx.fail(doc, "extends", "scenario.extends", "a scenario that extends another cannot be extended")
    base = parse_scenario(base_text, str(target))
    base_doc = yaml.load(base_text, Loader=LineLoader)  # noqa: S506 - SafeLoader subclass
    for key in ("third_parties", "customers", "authorizations", "timeline"):
        own = doc.get(key)
        if own is not None and not isinstance(own, list):
            raise ctx.fail(doc, key, f"scenario.{key}", "expected a list")
        merged = YamlSeq([*(base_doc.get(key) or []), *(own or [])])
        merged.line = getattr(own, "line", doc.line)
        doc[key] = merged
    return base


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """Validate a scenario document; every error names file, line and field."""
    ctx = Context(path)
    try:
        doc = yaml.load(text, Loader=LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(path, mark.line + 1 if mark else None, "", f"not valid YAML: {exc}") from exc
    if not isinstance(doc, YamlMap):
        raise ScenarioError(path, 1, "", "a scenario is a mapping with third_parties, customers, authorizations")
    fields.check_keys(ctx, doc, "scenario",
                {"name", "seed", "extends", "third_parties", "customers", "authorizations", "timeline",
                 "population"})
    digest = hashlib.sha256(text.encode()).hexdigest()
    base_seed = 1
    if "extends" in doc:
        base = _extend(ctx, doc, path)
        base_seed, digest = base.seed, hashlib.sha256(f"{base.digest}|{digest}".encode()).hexdigest()
    scenario = Scenario(
        path=path,
        name=fields.optional(ctx, doc, "name", "scenario", str, Path(path).stem),
        seed=fields.optional(ctx, doc, "seed", "scenario", int, base_seed),
        digest=digest,
    )
    seen_tp: dict[str, Any] = {}
    display_names: set[str] = set()
    client_ids: set[str] = set()
    for i, raw in enumerate(fields.sequence(ctx, doc, "third_parties", "scenario")):
        where = f"third_parties[{i}]"
        node = fields.mapping(ctx, raw, where, doc)
        fields.check_keys(ctx, node, where, _TP_KEYS)
        key = fields.required(ctx, node, "key", where)
        if key in seen_tp:
            raise ctx.fail(node, "key", f"{where}.key", f"duplicate third party key {key!r}")
        user_type = fields.choice(ctx, node, "user_type", where, USER_TYPES, "standard")
        client_id = fields.optional(ctx, node, "client_id", where, str)
        if client_id is not None:
            if not re.fullmatch(r"\d{1,5}", client_id):
                raise ctx.fail(node, "client_id", f"{where}.client_id", "must be up to 5 digits")
            client_id = client_id.zfill(5)
            if client_id in client_ids:
                raise ctx.fail(node, "client_id", f"{where}.client_id", f"duplicate client_id {client_id}")
            client_ids.add(client_id)
        display_name = fields.required(ctx, node, "display_name", where)
        if display_name in display_names:
            raise ctx.fail(node, "display_name", f"{where}.display_name",
                           f"display name {display_name!r} is already used (must be unique)")
        display_names.add(display_name)
        tax_id = fields.required(ctx, node, "tax_id", where)
        if not re.fullmatch(r"\d{9}", tax_id):
            raise ctx.fail(node, "tax_id", f"{where}.tax_id", "must be exactly 9 digits (an EIN)")
        redirect_uri = fields.https_url(ctx, node, "redirect_uri", where)
        portal_uri = fields.https_url(ctx, node, "portal_uri", where)
        if user_type in ("standard", "eef"):
            if redirect_uri is None:
                raise ctx.fail(node, None, f"{where}.redirect_uri", f"is required for user type {user_type}")
            if portal_uri is None:
                raise ctx.fail(node, None, f"{where}.portal_uri", f"is required for user type {user_type}")
        history = fields.optional(ctx, node, "history_months", where, int, 36)
        if history not in HISTORY_MONTHS:
            raise ctx.fail(node, "history_months", f"{where}.history_months", "must be 24, 36 or 48")
        default_groups = ["Basic", "Account", "Billing", "Usage"] if user_type in ("standard", "eef") else []
        tp = ThirdPartySpec(
            key=key,
            client_id=client_id,
            user_type=user_type,
            status=fields.choice(ctx, node, "status", where, REGISTRATION_STATUSES, RegistrationStatus.APPROVED),
            legal_name=fields.optional(ctx, node, "legal_name", where, str, display_name),
            display_name=display_name,
            tax_id=tax_id,
            business_contact=fields.contact(ctx, node, "business_contact", where),
            technical_contact=fields.contact(ctx, node, "technical_contact", where),
            description=fields.optional(ctx, node, "description", where, str, ""),
            phone=fields.optional(ctx, node, "phone", where, str, ""),
            redirect_uri=redirect_uri,
            portal_uri=portal_uri,
            scope_selection_uri=fields.https_url(ctx, node, "scope_selection_uri", where),
            notification_uri=fields.https_url(ctx, node, "notification_uri", where),
            notify_daily=fields.optional(ctx, node, "notify_daily", where, bool, False),
            data_groups=fields.data_groups(ctx, node, "data_groups", where, default_groups),
            history_months=history,
            visible=fields.optional(ctx, node, "visible", where, bool, True),
            client_secret=fields.optional(ctx, node, "client_secret", where, str),
            portal_username=fields.optional(ctx, node, "portal_username", where, str),
            portal_password=fields.optional(ctx, node, "portal_password", where, str),
            cca_territory=[str(v) for v in fields.sequence(ctx, node, "cca_territory", where)],
            customer=fields.optional(ctx, node, "customer", where, str),
            situation=fields.optional(ctx, node, "situation", where, str),
        )
        if tp.customer is not None and user_type != "self_access":
            raise ctx.fail(node, "customer", f"{where}.customer", "only a self_access third party has a customer")
        if tp.notification_uri is None:
            raise ctx.fail(node, None, f"{where}.notification_uri", "is required for every user type")
        seen_tp[key] = tp
        scenario.third_parties.append(tp)

    seen_customers: dict[str, CustomerSpec] = {}
    seen_sa: dict[str, ServiceAgreementSpec] = {}
    usernames: set[str] = set()
    for i, raw in enumerate(fields.sequence(ctx, doc, "customers", "scenario")):
        where = f"customers[{i}]"
        node = fields.mapping(ctx, raw, where, doc)
        fields.check_keys(ctx, node, where, _CUSTOMER_KEYS)
        key = fields.required(ctx, node, "key", where)
        if key in seen_customers:
            raise ctx.fail(node, "key", f"{where}.key", f"duplicate customer key {key!r}")
        username = fields.optional(ctx, node, "username", where, str, key)
        if username in usernames:
            raise ctx.fail(node, "username", f"{where}.username", f"duplicate username {username!r}")
        usernames.add(username)
        city = fields.optional(ctx, node, "city", where, str)
        if city is not None and city not in {c[0] for c in PGE_CITIES}:
            raise ctx.fail(node, "city", f"{where}.city",
                           f"{city!r} is not a known PG&E city ({', '.join(c[0] for c in PGE_CITIES)})")
        customer = CustomerSpec(
            key=key,
            username=username,
            password=fields.optional(ctx, node, "password", where, str, "demo"),
            name=fields.optional(ctx, node, "name", where, str),
            email=fields.optional(ctx, node, "email", where, str),
            phone=fields.optional(ctx, node, "phone", where, str),
            customer_class=fields.choice(ctx, node, "class", where, CUSTOMER_CLASSES, "RES"),
            city=city,
            accounts=[],
            situation=fields.optional(ctx, node, "situation", where, str),
            online_account=fields.optional(ctx, node, "online_account", where, bool, True),
        )
        for j, raw_acct in enumerate(fields.sequence(ctx, node, "accounts", where, required=True)):
            awhere = f"{where}.accounts[{j}]"
            acct_node = fields.mapping(ctx, raw_acct, awhere, node)
            fields.check_keys(ctx, acct_node, awhere, _ACCOUNT_KEYS)
            account = AccountSpec(key=fields.optional(ctx, acct_node, "key", awhere, str, f"{key}-{j + 1}"),
                                  service_agreements=[])
            for k, raw_sa in enumerate(fields.sequence(ctx, acct_node, "service_agreements", awhere, required=True)):
                swhere = f"{awhere}.service_agreements[{k}]"
                sa_node = fields.mapping(ctx, raw_sa, swhere, acct_node)
                sa = _parse_sa(ctx, sa_node, swhere, customer.customer_class)
                if sa.key in seen_sa:
                    raise ctx.fail(sa_node, "key", f"{swhere}.key", f"duplicate service agreement key {sa.key!r}")
                seen_sa[sa.key] = sa
                account.service_agreements.append(sa)
            customer.accounts.append(account)
        seen_customers[key] = customer
        scenario.customers.append(customer)

    if doc.get("population") is not None:
        scenario.population = _population(ctx, doc, scenario.seed, seen_tp, seen_customers, seen_sa)

    for tp_index, tp in enumerate(scenario.third_parties):
        for sa_key in tp.cca_territory:
            if sa_key not in seen_sa:
                node = doc["third_parties"][tp_index]
                raise ctx.fail(node, "cca_territory", f"third_parties[{tp_index}].cca_territory",
                               f"unknown service agreement {sa_key!r}")
        if tp.customer is not None and tp.customer not in seen_customers:
            raise ctx.fail(doc["third_parties"][tp_index], "customer", f"third_parties[{tp_index}].customer",
                           f"unknown customer {tp.customer!r}")

    for i, raw in enumerate(fields.sequence(ctx, doc, "authorizations", "scenario")):
        where = f"authorizations[{i}]"
        node = fields.mapping(ctx, raw, where, doc)
        fields.check_keys(ctx, node, where, _AUTH_KEYS)
        tp_key = fields.required(ctx, node, "third_party", where)
        if tp_key not in seen_tp:
            raise ctx.fail(node, "third_party", f"{where}.third_party", f"unknown third party {tp_key!r}")
        customer_key = fields.required(ctx, node, "customer", where)
        if customer_key not in seen_customers:
            raise ctx.fail(node, "customer", f"{where}.customer", f"unknown customer {customer_key!r}")
        own_sas = {sa.key for acct in seen_customers[customer_key].accounts for sa in acct.service_agreements}
        sa_keys = [str(v) for v in fields.sequence(ctx, node, "service_agreements", where)] or sorted(own_sas)
        for sa_key in sa_keys:
            if sa_key not in own_sas:
                raise ctx.fail(node, "service_agreements", f"{where}.service_agreements",
                               f"{sa_key!r} is not a service agreement of customer {customer_key!r}")
        tp = seen_tp[tp_key]
        groups = fields.data_groups(ctx, node, "data_groups", where, tp.data_groups or ["Usage"])
        if "ends_at" in node and "ends_on" in node:
            raise ctx.fail(node, "ends_on", f"{where}.ends_on", "give either ends_at or ends_on, not both")
        scenario.authorizations.append(
            AuthorizationSpec(
                third_party=tp_key,
                customer=customer_key,
                service_agreements=sa_keys,
                data_groups=groups,
                created_at=fields.instant(ctx, node, "created_at", where, "-30d"),
                ends_at=fields.instant(ctx, node, "ends_at", where, None),
                ends_on=fields.instant(ctx, node, "ends_on", where, None),
            )
        )
    accounts = {acct.key: c.key for c in scenario.customers for acct in c.accounts}
    for i, raw in enumerate(fields.sequence(ctx, doc, "timeline", "scenario")):
        where = f"timeline[{i}]"
        node = fields.mapping(ctx, raw, where, doc)
        scenario.timeline.append(_parse_timeline(ctx, node, where, seen_sa, accounts, seen_tp, seen_customers))
    recordings = [sa.recording.digest for sa in seen_sa.values() if sa.recording is not None]
    if recordings:  # the data files are part of the world: a changed file is a changed scenario
        scenario.digest = hashlib.sha256("|".join([scenario.digest, *recordings]).encode()).hexdigest()
    return scenario


def _population(ctx: Context, doc: YamlMap, seed: int, tps: dict, customers: dict, sas: dict) -> PopulationSpec:
    """The generated population; its keys (``gen-000001``) must not collide with listed ones."""
    from mock_custodian.scenario.population import parse_population

    spec = parse_population(ctx, doc, doc["population"], seed, tps)
    pattern = re.compile(re.escape(spec.key_prefix) + r"(\d{6})(-1)?")
    for key in [*customers, *(c.username for c in customers.values()), *sas]:
        match = pattern.fullmatch(key)
        if match and 1 <= int(match.group(1)) <= spec.count:
            raise ctx.fail(doc["population"], "key_prefix", "population.key_prefix",
                           f"listed key {key!r} collides with a generated customer; pick another key_prefix")
    return spec


DATA_CHANGE_EVENTS = ("gap", "correction", "bill_revision")
ACCOUNT_EVENTS = ("meter_exchange", "rate_change", "temporary_turn_off", "turn_on", "move_out",
                  "change_of_company", "unlink_account", "paper_authorization")
# What a customer does on "My authorizations" (the X and the pencil), at a time or after each consent.
CUSTOMER_EVENTS = ("cancel_authorization", "edit_authorization")
_TIMELINE_KEYS = {"at", "event", "sa", "account", "start", "end", "factor", "quality", "estimate_after",
                  "final_after", "estimate_quality", "meter", "flow_direction", "rate_schedule", "serial",
                  "third_party", "data_groups", "service_agreements", "after_consent", "customer",
                  "remove_service_agreements", "end_date"}


def _duration(ctx: Context, node: YamlMap, key: str, where: str, default: int) -> int:
    """Seconds, or a duration like ``2d`` / ``36h`` / ``90m``."""
    value = node.get(key)
    if value is None:
        return default
    seconds = duration_seconds(value)
    if seconds is None:
        raise ctx.fail(node, key, f"{where}.{key}", f"{value!r} is not a duration (seconds, or like 2d, 36h, 90m)")
    return seconds


MAX_DURATION_S = 100 * 366 * 86400


def duration_seconds(value: object) -> int | None:
    """Whole seconds from a non-negative integer or ``2d`` / ``36h`` / ``90m``; None if neither (or > 100 years).

    The scenario file's timeline and the control API's data changes read durations the same way.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = re.fullmatch(r"(\d{1,9})([dhm])", str(value).strip())
        if not match:
            return None
        seconds = int(match.group(1)) * {"d": 86400, "h": 3600, "m": 60}[match.group(2)]
    return seconds if 0 <= seconds <= MAX_DURATION_S else None


def _parse_timeline(ctx: Context, node: YamlMap, where: str, sas: dict, accounts: dict, tps: dict,
                    customers: dict | None = None) -> TimelineSpec:
    fields.check_keys(ctx, node, where, _TIMELINE_KEYS)
    event = fields.choice(ctx, node, "event", where, DATA_CHANGE_EVENTS + ACCOUNT_EVENTS + CUSTOMER_EVENTS)
    sa = fields.optional(ctx, node, "sa", where, str)
    account = fields.optional(ctx, node, "account", where, str)
    customer = fields.optional(ctx, node, "customer", where, str)
    after_consent = _duration(ctx, node, "after_consent", where, -1) if "after_consent" in node else None
    if after_consent is not None and "at" in node:
        raise ctx.fail(node, "after_consent", f"{where}.after_consent", "give either at or after_consent, not both")
    if after_consent is not None and event in DATA_CHANGE_EVENTS:
        raise ctx.fail(node, "after_consent", f"{where}.after_consent",
                       "only account and customer events can be anchored to a consent")
    if event in CUSTOMER_EVENTS:
        return _parse_customer_event(ctx, node, where, event, customer, after_consent, sas, tps, customers or {})
    if customer is not None:
        raise ctx.fail(node, "customer", f"{where}.customer",
                       f"{event} names its service agreement or account, not a customer")
    if event == "unlink_account":
        if account is None or account not in accounts:
            raise ctx.fail(node, "account" if account else None, f"{where}.account",
                           f"unlink_account needs a known account key (one of {', '.join(sorted(accounts))})")
    elif sa is None or sa not in sas:
        raise ctx.fail(node, "sa" if sa else None, f"{where}.sa",
                       f"{event} needs a known service agreement key" + (f", not {sa!r}" if sa else ""))
    params: dict[str, Any] = {}
    start = end = None
    if event in DATA_CHANGE_EVENTS:
        start = fields.instant(ctx, node, "start", where, None)
        if start is None:
            raise ctx.fail(node, None, f"{where}.start", f"{event} needs a start date")
        end = fields.instant(ctx, node, "end", where, None) if event != "bill_revision" else None
        if event != "bill_revision" and end is None:
            raise ctx.fail(node, None, f"{where}.end", f"{event} needs an end date (the day after the last)")
        if "factor" in node:
            params["factor"] = float(fields.required(ctx, node, "factor", where, (int, float)))
        for key in ("quality", "estimate_quality", "meter", "flow_direction"):
            if key in node:
                params[key] = fields.required(ctx, node, key, where, int)
        if event == "gap":
            params["estimate_after"] = _duration(ctx, node, "estimate_after", where, 2 * 86400)
            params["final_after"] = _duration(ctx, node, "final_after", where, 7 * 86400)
    elif event == "rate_change":
        params["rate_schedule"] = fields.required(ctx, node, "rate_schedule", where)
    elif event == "meter_exchange":
        params["meter"] = fields.optional(ctx, node, "meter", where, int, 1)
        if "serial" in node:
            params["serial"] = fields.required(ctx, node, "serial", where)
    elif event == "paper_authorization":
        tp_key = fields.required(ctx, node, "third_party", where)
        if tp_key not in tps:
            raise ctx.fail(node, "third_party", f"{where}.third_party", f"unknown third party {tp_key!r}")
        params["client_id_of"] = tp_key
        params["data_groups"] = fields.data_groups(ctx, node, "data_groups", where, ["Usage", "Billing"])
    at = None if after_consent is not None else fields.instant(ctx, node, "at", where,
                                                               None if event in ("gap",) else "+0d")
    if after_consent is not None:
        owner = accounts[account] if event == "unlink_account" else next(
            (key for key, spec in (customers or {}).items()
             for acct in spec.accounts for each in acct.service_agreements if each.key == sa), None)
        return TimelineSpec(event=event, at=None, sa=sa, account=account, start=None, end=None, params=params,
                            customer=owner, after_consent=after_consent)
    return TimelineSpec(event=event, at=at, sa=sa, account=account, start=start, end=end, params=params)


def _parse_customer_event(ctx: Context, node: YamlMap, where: str, event: str, customer: str | None,
                          after_consent: int | None, sas: dict, tps: dict, customers: dict) -> TimelineSpec:
    """``cancel_authorization`` / ``edit_authorization``: the customer's own action on its authorizations
    (those with ``third_party`` if given; with ``after_consent``, the authorization just consented)."""
    if customer is None or customer not in customers:
        raise ctx.fail(node, "customer" if customer else None, f"{where}.customer",
                       f"{event} needs a known customer key" + (f", not {customer!r}" if customer else ""))
    for key in ("sa", "account"):
        if key in node:
            raise ctx.fail(node, key, f"{where}.{key}", f"{event} names a customer (and third_party), not {key}")
    params: dict[str, Any] = {}
    if "third_party" in node:
        tp_key = fields.required(ctx, node, "third_party", where)
        if tp_key not in tps:
            raise ctx.fail(node, "third_party", f"{where}.third_party", f"unknown third party {tp_key!r}")
        params["third_party_of"] = tp_key
    if event == "edit_authorization":
        own = {sa.key for acct in customers[customer].accounts for sa in acct.service_agreements}
        removed = [str(v) for v in fields.sequence(ctx, node, "remove_service_agreements", where)]
        for key in removed:
            if key not in own:
                raise ctx.fail(node, "remove_service_agreements", f"{where}.remove_service_agreements",
                               f"{key!r} is not a service agreement of customer {customer!r}")
        if removed:
            params["remove_service_agreements"] = removed
        if "end_date" in node:
            params["end_date"] = _end_date(ctx, node, where)
        if not params.keys() & {"remove_service_agreements", "end_date"}:
            raise ctx.fail(node, None, where, "edit_authorization needs remove_service_agreements or end_date")
    else:
        for key in ("remove_service_agreements", "end_date"):
            if key in node:
                raise ctx.fail(node, key, f"{where}.{key}", f"only edit_authorization takes {key}")
    at = None if after_consent is not None else fields.instant(ctx, node, "at", where, "+0d")
    return TimelineSpec(event=event, at=at, sa=None, account=None, start=None, end=None, params=params,
                        customer=customer, after_consent=after_consent)


def _end_date(ctx: Context, node: YamlMap, where: str) -> str:
    """An edited end date: ``indefinite``, a date, or whole days after the day of the edit (``+1d``)."""
    value = node["end_date"]
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    text = str(value).strip().lower()
    if text == "indefinite" or re.fullmatch(r"\+\d+d", text):
        return text
    raise ctx.fail(node, "end_date", f"{where}.end_date",
                   f"{value!r} is not an end date (indefinite, YYYY-MM-DD, or days after the edit like +1d)")


def _parse_sa(ctx: Context, node: YamlMap, where: str, customer_class: str) -> ServiceAgreementSpec:
    fields.check_keys(ctx, node, where, _SA_KEYS)
    key = fields.required(ctx, node, "key", where)
    own: dict[str, Any] = {}
    recording = None
    if node.get("data") is not None:
        own, recording = _own_data(ctx, node, where)
    else:
        fields.choice(ctx, node, "profile", where, ALL_PROFILES)
    start = fields.instant(ctx, node, "service_start", where, None)
    if start is None and recording is not None:
        first = recording.first_day
        start = dt.datetime(first.year, first.month, first.day, tzinfo=PACIFIC).timestamp()
    if start is None or (isinstance(start, str) and not start.endswith("d")):
        raise ctx.fail(node, "service_start" if "service_start" in node else None, f"{where}.service_start",
                       "is required as a date (YYYY-MM-DD) or whole days from load time (-1d)")
    # A day offset starts service at local midnight of that day after load (store.world); the model is
    # validated here with a fixed stand-in instant, so parsing never reads the clock.
    start_epoch = int(resolve_instant(start, OFFSET_VALIDATION_EPOCH)) if isinstance(start, str) else int(start)
    sa_class = fields.choice(ctx, node, "class", where, CUSTOMER_CLASSES, customer_class)
    # The data engine validates the metering configuration; its messages start with the key.
    mapping: dict[str, Any] = {k: node[k] for k in _MODEL_KEYS if k in node and node[k] is not None}
    mapping.update(own)
    if own.get("commodity") == "gas" and "rate_schedule" not in node:
        mapping["rate_schedule"] = "G-1"
    mapping.update(profile=own.get("profile", node.get("profile")), usage_point_id=PLACEHOLDER_USAGE_POINT,
                   sa_start=start_epoch, customer_class=sa_class)
    try:
        model = ServiceAgreementModel.from_dict(mapping)
    except (ValueError, TypeError) as exc:
        name = str(exc).split(":", 1)[0].strip()
        key_name = "service_start" if name == "sa_start" else "class" if name == "customer_class" else name
        message = str(exc).split(":", 1)[1].strip() if ":" in str(exc) else str(exc)
        line_key = "data" if recording is not None and key_name in own else key_name.split(".")[0]
        raise ctx.fail(node, line_key if line_key in node else None, f"{where}.{key_name}", message) from exc
    address = node.get("address")
    if address is not None and not isinstance(address, YamlMap):
        raise ctx.fail(node, "address", f"{where}.address", "expected a mapping (street, city, zip)")
    profile = model.to_dict()
    for derived in ("usage_point_id",):
        profile.pop(derived)
    # Keys the file set win; the others (seed, climate zone, read cycle) are derived at load time.
    profile["explicit"] = sorted(k for k in ("seed", "climate_zone", "read_cycle") if k in node)
    return ServiceAgreementSpec(
        key=key,
        commodity=model.commodity,
        profile=profile,
        rate_schedule=model.rate_schedule,
        read_cycle=model.read_cycle,
        service_start=start if isinstance(start, str) else float(start),
        status=fields.optional(ctx, node, "status", where, str, "Active"),
        customer_class=model.customer_class,
        meters=model.meters,
        dr_programs=list(node.get("dr_programs") or []),
        address=dict(address) if address is not None else None,
        recording=recording,
    )


def _own_data(ctx: Context, node: YamlMap, where: str) -> tuple[dict[str, Any], Any]:
    """The ``data`` mapping of an SA: its file read and checked now, so a bad file fails the whole load."""
    from mock_custodian.scenario.data import sa_data
    from mock_custodian.scenario.meter_data import MeterDataError

    data = node["data"]
    if not isinstance(data, YamlMap):
        raise ctx.fail(node, "data", f"{where}.data", "expected a mapping like {file: my-home.xml}")
    if node.get("profile") not in (None, "recorded"):
        raise ctx.fail(node, "profile", f"{where}.profile", "an SA with data replays its file: leave profile out")
    try:
        return sa_data(ctx.path, data)
    except MeterDataError as exc:
        raise ctx.fail(data, "file", f"{where}.data.file", str(exc)) from exc
    except ValueError as exc:
        name, _, message = str(exc).partition(":")
        raise ctx.fail(data, name if name in data else None, f"{where}.data.{name}", message.strip()) from exc


def load_scenario_file(path: Path | None) -> Scenario:
    """Read and validate a scenario file (the built-in demo when ``path`` is None)."""
    target = Path(path) if path is not None else DEFAULT_DEMO
    if path is not None and str(path) in BUILTIN_SCENARIOS and not target.exists():
        target = BUILTIN_SCENARIOS[str(path)]
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(target), None, "", f"cannot read scenario: {exc.strerror}") from exc
    return parse_scenario(text, str(target))


# --------------------------------------------------------------------------------------------
# Deterministic identifiers


def derive_digits(seed: int, *parts: str, length: int = 10, salt: int = 0) -> str:
    """A stable, seed-derived decimal string that never starts with 0."""
    h = hashlib.blake2b(f"{seed}|{salt}|{'|'.join(parts)}".encode(), digest_size=16).digest()
    number = int.from_bytes(h, "big")
    low = 10 ** (length - 1)
    return str(low + number % (9 * low))


def account_check_digit(account_number: str) -> str:
    """The 11th digit PG&E's guest sign-in expects (a Luhn check digit here)."""
    total = 0
    for i, ch in enumerate(reversed(account_number)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)
