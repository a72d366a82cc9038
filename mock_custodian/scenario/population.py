"""Generated populations: a scenario's ``population:`` block, expanded to customers on demand.

A Community Choice Aggregator's territory holds tens of thousands of service agreements; nobody writes
them out by hand. The block gives a count, a seed, a mix of profiles with shares, cities and a range of
service start dates; every generated customer (one account, one SA) is a pure function of
``(seed, index)``, so changing ``count`` never reshuffles the others. Names and street lines are drawn
from this module's own word lists (not Faker), so they do not change when Faker is upgraded.
Identifiers (customer, account, SA, usage point numbers) come from a keyed permutation of the index:
distinct by construction, with no set of used numbers to keep in memory.

CCA territories and pre-made authorizations select generated SAs by rule (:class:`Selection`):
cities, customer classes, profiles, a stable share, the first N.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mock_custodian.clock import PACIFIC
from mock_custodian.scenario import fields
from mock_custodian.scenario.fields import CUSTOMER_CLASSES, PGE_CITIES

# One entry of the mix -> (data-engine profile, customer class, meters per SA).
MIX_PROFILES: dict[str, tuple[str, str, int]] = {
    "residential_hourly": ("residential_hourly", "RES", 1),
    "commercial_15min": ("commercial_15min", "COM/IND", 1),
    "solar_net_metered": ("solar_net_metered", "RES", 1),
    "ev_charging": ("ev_charging", "RES", 1),
    "gas_daily": ("gas_daily", "RES", 1),
    "non_interval": ("non_interval", "RES", 1),
    "multi_meter": ("commercial_15min", "COM/IND", 2),
}
DEFAULT_MIX = {"residential_hourly": 1.0}
DEFAULT_SERVICE_START = ("2015-01-01", "2023-12-31")
MAX_COUNT = 1_000_000

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley",
    "Andrew", "Kimberly", "Joshua", "Emily", "Kevin", "Donna", "Brian", "Michelle", "Luis", "Carol",
    "Wei", "Amanda", "Jose", "Melissa", "Ryan", "Deborah", "Jacob", "Stephanie", "Gary", "Rebecca",
    "Nicholas", "Sharon", "Eric", "Laura", "Jonathan", "Cynthia", "Miguel", "Dorothy", "Hiroshi", "Amy",
    "Priya", "Angela", "Raj", "Helen", "Minh", "Anna", "Samuel", "Brenda", "Diego", "Emma",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Chen", "Wong", "Patel", "Kim", "Tran", "Singh", "Okafor", "Yamamoto", "Castillo", "Reyes",
)
STREET_NAMES = (
    "Oak", "Pine", "Maple", "Cedar", "Elm", "Walnut", "Willow", "Redwood", "Sequoia", "Madrone",
    "Mission", "Valencia", "Shattuck", "Telegraph", "College", "Alameda", "Santa Clara", "Capitol",
    "El Camino", "Grand", "Lake", "Park", "Hillside", "Vista", "Sunset", "Ocean", "Bay", "Harbor",
    "Orchard", "Vineyard", "Almond", "Olive", "Poplar", "Sycamore", "Laurel", "Chestnut", "Magnolia",
    "Jefferson", "Lincoln", "Washington", "Franklin", "Madison", "Monroe", "Fremont", "Portola",
)
STREET_SUFFIXES = ("ST", "AVE", "BLVD", "DR", "CT", "LN", "WAY", "RD", "PL", "TER")
COMPANY_WORDS = (
    "Golden", "Bay", "Valley", "Pacific", "Summit", "Coastal", "Redwood", "Sierra", "Delta", "Harbor",
    "Central", "Northern", "Mission", "Orchard", "Granite", "Evergreen", "Sunrise", "Meridian", "Cypress",
)
COMPANY_KINDS = (
    "Bakery", "Dental Group", "Auto Repair", "Market", "Hardware", "Veterinary Clinic", "Print Shop",
    "Brewing Co", "Cleaners", "Fitness", "Logistics", "Machine Works", "Cold Storage", "Packing Co",
)
COMPANY_SUFFIXES = ("LLC", "Inc", "Co", "Corp", "Partners")


@dataclass(frozen=True)
class Selection:
    """Which generated SAs a rule picks: all filters must match; ``share`` keeps a stable fraction.

    ``share`` is decided per customer from ``(seed, index, salt)``, so the same SA stays picked when
    ``count`` grows; ``first`` then keeps the first N matches in index order.
    """

    cities: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    share: float = 1.0
    first: int | None = None
    salt: str = ""

    def matches(self, customer: GeneratedCustomer, seed: int) -> bool:
        if self.cities and customer.city not in self.cities:
            return False
        if self.classes and customer.customer_class not in self.classes:
            return False
        if self.profiles and customer.mix not in self.profiles:
            return False
        if self.share < 1.0:
            return _unit(seed, customer.index, f"share|{self.salt}") < self.share
        return True


@dataclass(frozen=True)
class TerritoryRule:
    """A CCA's territory drawn from the generated population."""

    third_party: str
    select: Selection


@dataclass(frozen=True)
class AuthorizationRule:
    """Pre-made customer authorizations of a third party, one per selected generated customer."""

    third_party: str
    select: Selection
    data_groups: tuple[str, ...]
    created_at: float | str
    ends_at: float | str | None


@dataclass(frozen=True)
class PopulationSpec:
    """The validated ``population:`` block."""

    count: int
    seed: int
    key_prefix: str = "gen-"
    password: str = "demo"
    mix: tuple[tuple[str, float], ...] = (("residential_hourly", 1.0),)
    cities: tuple[str, ...] = ()
    service_start: tuple[float, float] = (0.0, 0.0)
    territories: tuple[TerritoryRule, ...] = ()
    authorizations: tuple[AuthorizationRule, ...] = field(default_factory=tuple)

    def customer(self, index: int) -> GeneratedCustomer:
        """The ``index``-th generated customer (0-based): a pure function of ``(seed, index)``."""
        return generate_customer(self, index)

    def customers(self, start: int = 0, stop: int | None = None) -> Iterator[GeneratedCustomer]:
        for index in range(start, self.count if stop is None else min(stop, self.count)):
            yield generate_customer(self, index)


@dataclass(frozen=True)
class GeneratedCustomer:
    """One generated customer with its one account and one service agreement (plain values)."""

    index: int
    key: str
    username: str
    name: str
    email: str
    phone: str
    customer_class: str
    city: str
    zip_code: str
    street: str
    mix: str
    profile: str
    meters: int
    service_start: float
    climate_zone: int
    numbers: dict[str, str]  # customer, account, sa, usage_point, agreement, premise: distinct per kind

    @property
    def account_key(self) -> str:
        return f"{self.key}-1"

    @property
    def sa_key(self) -> str:
        return f"{self.key}-1"

    @property
    def address(self) -> dict[str, str]:
        return {"street": self.street, "city": self.city.upper(), "state": "CA", "zip": self.zip_code}


# --------------------------------------------------------------------------------------------
# Deterministic draws


def _digest(seed: int, index: int, label: str) -> bytes:
    return hashlib.blake2b(f"population|{seed}|{index}|{label}".encode(), digest_size=32).digest()


def _unit(seed: int, index: int, label: str) -> float:
    """A uniform draw in [0, 1) fixed by ``(seed, index, label)``."""
    return int.from_bytes(_digest(seed, index, label)[:7], "big") / float(1 << 56)


_SPACE = 9 * 10**9  # 10-digit numbers not starting with 0
_BITS = 34  # 2**34 > _SPACE: cycle-walk a 34-bit Feistel permutation into the range
_HALF = _BITS // 2
_MASK = (1 << _HALF) - 1


def _round_keys(seed: int, kind: str) -> tuple[int, ...]:
    h = hashlib.blake2b(f"population-ids|{seed}|{kind}".encode(), digest_size=32).digest()
    return tuple(int.from_bytes(h[i:i + 8], "big") | 1 for i in range(0, 32, 8))


def _feistel(value: int, keys: tuple[int, ...]) -> int:
    left, right = value >> _HALF, value & _MASK
    for key in keys:
        mixed = ((right * key) ^ (right >> 5) ^ (key >> 17)) & _MASK
        left, right = right, left ^ mixed
    return (left << _HALF) | right


def permuted_number(index: int, keys: tuple[int, ...]) -> str:
    """A 10-digit number unique per ``index`` (a bijection of 0 .. 9e9-1 onto 1e9 .. 1e10-1)."""
    value = _feistel(index, keys)
    while value >= _SPACE:  # cycle walking keeps the map a bijection on the range
        value = _feistel(value, keys)
    return str(10**9 + value)


ID_KINDS = ("customer", "account", "sa", "usage_point", "agreement", "premise")
# An offset per retry: a listed (hand-written) customer's number taken already moves a generated one
# to the permutation's value at ``index + k * _RETRY_STRIDE``, never used by another index.
_RETRY_STRIDE = 2 * MAX_COUNT


def generate_customer(spec: PopulationSpec, index: int, taken: dict[str, set[str]] | None = None,
                      keys: dict[str, tuple[int, ...]] | None = None) -> GeneratedCustomer:
    """Customer ``index`` of ``spec``; ``taken`` (kind -> numbers of listed customers) is avoided."""
    seed = spec.seed
    h = _digest(seed, index, "customer")
    draw = int.from_bytes(h[:7], "big") / float(1 << 56)
    mix = spec.mix[-1][0]
    cumulative = 0.0
    for name, share in spec.mix:
        cumulative += share
        if draw < cumulative:
            mix = name
            break
    profile, customer_class, meters = MIX_PROFILES[mix]
    cities = spec.cities or tuple(c[0] for c in PGE_CITIES)
    city_name = cities[h[7] % len(cities)]
    city = next(c for c in PGE_CITIES if c[0] == city_name)
    if customer_class == "RES":
        name = f"{FIRST_NAMES[h[8] % len(FIRST_NAMES)]} {LAST_NAMES[h[9] % len(LAST_NAMES)]}"
    else:
        name = (f"{COMPANY_WORDS[h[8] % len(COMPANY_WORDS)]} {COMPANY_KINDS[h[9] % len(COMPANY_KINDS)]} "
                f"{COMPANY_SUFFIXES[h[10] % len(COMPANY_SUFFIXES)]}")
    number = 1 + int.from_bytes(h[11:13], "big") % 9899
    street = f"{number} {STREET_NAMES[h[13] % len(STREET_NAMES)].upper()} {STREET_SUFFIXES[h[14] % 10]}"
    zip_code = f"{city[1]}{h[15] % 100:02d}"
    phone = f"({city[2]}) 555-{int.from_bytes(h[16:18], 'big') % 10000:04d}"
    lo, hi = spec.service_start
    days = max(0, int((hi - lo) // 86400))
    start_day = dt.datetime.fromtimestamp(lo, PACIFIC).date() + dt.timedelta(
        days=int.from_bytes(h[18:21], "big") % (days + 1))
    service_start = dt.datetime(start_day.year, start_day.month, start_day.day, tzinfo=PACIFIC).timestamp()
    keys = keys or id_keys(seed)
    numbers = {}
    for kind in ID_KINDS:
        attempt = 0
        while True:
            value = permuted_number(index + attempt * _RETRY_STRIDE, keys[kind])
            if taken is None or value not in taken.get(kind, ()):
                break
            attempt += 1
        numbers[kind] = value
    key = f"{spec.key_prefix}{index + 1:06d}"
    return GeneratedCustomer(
        index=index, key=key, username=key, name=name, email=f"{key}@example.com", phone=phone,
        customer_class=customer_class, city=city[0], zip_code=zip_code, street=street, mix=mix,
        profile=profile, meters=meters, service_start=service_start, climate_zone=city[3], numbers=numbers,
    )


def id_keys(seed: int) -> dict[str, tuple[int, ...]]:
    """The permutation keys of each identifier kind for ``seed`` (compute once per load)."""
    return {kind: _round_keys(seed, kind) for kind in ID_KINDS}


def selected(spec: PopulationSpec, rule: Selection) -> Iterator[GeneratedCustomer]:
    """The generated customers a rule picks, in index order (streamed: no list of the population)."""
    kept = 0
    keys = id_keys(spec.seed)
    for index in range(spec.count):
        if rule.first is not None and kept >= rule.first:
            return
        customer = generate_customer(spec, index, keys=keys)
        if rule.matches(customer, spec.seed):
            kept += 1
            yield customer


# --------------------------------------------------------------------------------------------
# The starter file of ``mock-custodian scenario new``

STARTER_MIX = (("residential_hourly", 0.80), ("solar_net_metered", 0.07), ("ev_charging", 0.04),
               ("commercial_15min", 0.04), ("multi_meter", 0.01), ("gas_daily", 0.03), ("non_interval", 0.01))


def starter_scenario(cca: int | None = None, customers: int | None = None, seed: int = 1) -> str:
    """A scenario file with a generated population: a CCA receiving it all, and a Standard third party."""
    count = int(cca or customers or 1000)
    mix = "\n".join(f"    {name}: {share}" for name, share in STARTER_MIX)
    territory = """
  territories:
    # The CCA receives every generated SA (narrow it: cities, classes, profiles, share, first).
    - third_party: cca
      select: {}""" if cca else ""
    return f"""# A generated world: `mock-custodian serve --scenario <this file>`.
# Each generated customer depends only on (seed, index): changing `count` keeps the others as they are.
name: generated-{count}
seed: {seed}

third_parties:
  - key: cca
    client_id: "00201"
    user_type: cca
    status: approved
    display_name: Generated Community Power
    tax_id: "945550001"
    notification_uri: https://localhost:9443/cca/notify
    notify_daily: true
    history_months: 48
  - key: app
    client_id: "00202"
    user_type: standard
    status: approved
    display_name: Generated Energy App
    tax_id: "945550002"
    redirect_uri: https://localhost:9443/app/callback
    portal_uri: https://localhost:9443/app/start
    notification_uri: https://localhost:9443/app/notify
    data_groups: [Basic, Account, Billing, Usage]

population:
  count: {count}
  seed: {seed}
  key_prefix: gen-
  password: demo
  profiles:
{mix}
  cities: [San Francisco, Oakland, Berkeley, San Jose, Sacramento, Fresno]
  service_start: {{from: 2016-01-01, to: 2023-12-31}}{territory}
  authorizations:
    # Pre-made customer authorizations of the app: the first 100 residential solar customers.
    - third_party: app
      select: {{profiles: [solar_net_metered], first: 100}}
      data_groups: [Basic, Account, Billing, Usage]
      created_at: -30d
"""


def parse_population(ctx: fields.Context, doc: fields.YamlMap, node: Any, scenario_seed: int,
                     third_parties: dict[str, Any]) -> PopulationSpec:
    """Validate the ``population:`` block; errors name the scenario file's line and field like the rest."""
    where = "population"
    node = fields.mapping(ctx, node, where, doc)
    fields.check_keys(ctx, node, where, {"count", "seed", "key_prefix", "password", "profiles", "cities",
                                      "service_start", "territories", "authorizations"})
    count = fields.required(ctx, node, "count", where, int)
    if not 0 <= count <= MAX_COUNT:
        raise ctx.fail(node, "count", f"{where}.count", f"must be from 0 to {MAX_COUNT}")
    seed = fields.optional(ctx, node, "seed", where, int, scenario_seed)
    prefix = fields.optional(ctx, node, "key_prefix", where, str, "gen-")
    raw_mix = node.get("profiles") or DEFAULT_MIX
    if not isinstance(raw_mix, dict) or not raw_mix:
        raise ctx.fail(node, "profiles", f"{where}.profiles", "expected a mapping of profile to share")
    mix = []
    for name, share in raw_mix.items():
        if name not in MIX_PROFILES:
            raise ctx.fail(raw_mix, name, f"{where}.profiles.{name}",
                           f"unknown profile (expected one of {', '.join(MIX_PROFILES)})")
        if isinstance(share, bool) or not isinstance(share, int | float) or share < 0:
            raise ctx.fail(raw_mix, name, f"{where}.profiles.{name}", "a share is a number >= 0")
        mix.append((str(name), float(share)))
    total = sum(s for _, s in mix)
    if total <= 0:
        raise ctx.fail(node, "profiles", f"{where}.profiles", "the shares must not all be 0")
    mix = [(n, s / total) for n, s in mix]
    cities = _cities(ctx, node, "cities", where)
    window = node.get("service_start")
    lo, hi = DEFAULT_SERVICE_START
    if window is not None:
        if not isinstance(window, dict):
            raise ctx.fail(node, "service_start", f"{where}.service_start", "expected {from: date, to: date}")
        fields.check_keys(ctx, window, f"{where}.service_start", {"from", "to"})
        lo, hi = window.get("from", lo), window.get("to", hi)
    start = (_date_epoch(ctx, node, "service_start", f"{where}.service_start.from", lo),
             _date_epoch(ctx, node, "service_start", f"{where}.service_start.to", hi))
    if start[1] < start[0]:
        raise ctx.fail(node, "service_start", f"{where}.service_start", "'to' is before 'from'")
    territories = []
    for i, raw in enumerate(fields.sequence(ctx, node, "territories", where)):
        twhere = f"{where}.territories[{i}]"
        tnode = fields.mapping(ctx, raw, twhere, node)
        fields.check_keys(ctx, tnode, twhere, {"third_party", "select"})
        tp_key = _third_party(ctx, tnode, twhere, third_parties)
        if third_parties[tp_key].user_type != "cca":
            raise ctx.fail(tnode, "third_party", f"{twhere}.third_party", f"{tp_key!r} is not a cca third party")
        territories.append(TerritoryRule(tp_key, _selection(ctx, tnode, twhere, f"territory|{i}")))
    authorizations = []
    for i, raw in enumerate(fields.sequence(ctx, node, "authorizations", where)):
        awhere = f"{where}.authorizations[{i}]"
        anode = fields.mapping(ctx, raw, awhere, node)
        fields.check_keys(ctx, anode, awhere, {"third_party", "select", "data_groups", "created_at", "ends_at"})
        tp_key = _third_party(ctx, anode, awhere, third_parties)
        groups = fields.data_groups(ctx, anode, "data_groups", awhere, third_parties[tp_key].data_groups or ["Usage"])
        authorizations.append(AuthorizationRule(
            tp_key, _selection(ctx, anode, awhere, f"authorization|{i}"), tuple(groups),
            fields.instant(ctx, anode, "created_at", awhere, "-30d"),
            fields.instant(ctx, anode, "ends_at", awhere, None)))
    return PopulationSpec(count=count, seed=seed, key_prefix=prefix,
                          password=fields.optional(ctx, node, "password", where, str, "demo"), mix=tuple(mix),
                          cities=cities, service_start=start, territories=tuple(territories),
                          authorizations=tuple(authorizations))


def _third_party(ctx: fields.Context, node: Any, where: str, third_parties: dict[str, Any]) -> str:
    key = fields.required(ctx, node, "third_party", where)
    if key not in third_parties:
        raise ctx.fail(node, "third_party", f"{where}.third_party", f"unknown third party {key!r}")
    return key


def _cities(ctx: fields.Context, node: Any, key: str, where: str) -> tuple[str, ...]:
    raw = node.get(key)
    if raw is None:
        return ()
    known = {c[0] for c in PGE_CITIES}
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise ctx.fail(node, key, f"{where}.{key}", "expected a list of city names")
    for city in raw:
        if city not in known:
            raise ctx.fail(node, key, f"{where}.{key}",
                           f"{city!r} is not a known PG&E city ({', '.join(c[0] for c in PGE_CITIES)})")
    return tuple(raw)


def _selection(ctx: fields.Context, node: Any, where: str, salt: str) -> Selection:
    raw = node.get("select")
    swhere = f"{where}.select"
    if raw is None:
        return Selection(salt=salt)
    if not isinstance(raw, dict):
        raise ctx.fail(node, "select", swhere, "expected a mapping (cities, classes, profiles, share, first)")
    fields.check_keys(ctx, raw, swhere, {"cities", "classes", "profiles", "share", "first"})
    classes = raw.get("classes") or []
    for value in classes:
        if value not in CUSTOMER_CLASSES:
            raise ctx.fail(raw, "classes", f"{swhere}.classes",
                           f"{value!r} is not one of {', '.join(CUSTOMER_CLASSES)}")
    profiles = raw.get("profiles") or []
    for value in profiles:
        if value not in MIX_PROFILES:
            raise ctx.fail(raw, "profiles", f"{swhere}.profiles", f"{value!r} is not one of {', '.join(MIX_PROFILES)}")
    share = fields.optional(ctx, raw, "share", swhere, float, 1.0)
    if not 0.0 <= share <= 1.0:
        raise ctx.fail(raw, "share", f"{swhere}.share", "must be from 0 to 1")
    first = fields.optional(ctx, raw, "first", swhere, int)
    if first is not None and first < 0:
        raise ctx.fail(raw, "first", f"{swhere}.first", "must be >= 0")
    return Selection(cities=_cities(ctx, raw, "cities", swhere), classes=tuple(classes), profiles=tuple(profiles),
                     share=share, first=first, salt=salt)


def _date_epoch(ctx: fields.Context, node: Any, key: str, where: str, value: Any) -> float:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, dt.date):
        raise ctx.fail(node, key, where, "expected a date (YYYY-MM-DD)")
    return dt.datetime(value.year, value.month, value.day, tzinfo=PACIFIC).timestamp()
