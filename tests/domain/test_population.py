"""Generated populations (issue 14): stable per (seed, index), rule-selected territories, bulk loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mock_custodian.domain.world import load_world
from mock_custodian.scenario.parse import DEFAULT_DEMO, ScenarioError, parse_scenario
from mock_custodian.scenario.population import (
    FIRST_NAMES,
    LAST_NAMES,
    MIX_PROFILES,
    PopulationSpec,
    Selection,
    generate_customer,
    id_keys,
    permuted_number,
    starter_scenario,
)
from mock_custodian.store.db import Database
from mock_custodian.store.models import Account, Authorization, Customer, Meter, ServiceAgreement, ThirdParty

DEMO = DEFAULT_DEMO.read_text()


def _with_population(block: str, base: str = DEMO) -> str:
    return base + "\npopulation:\n" + block


def test_a_customer_depends_only_on_seed_and_index() -> None:
    small = parse_scenario(_with_population("  count: 50\n  seed: 9\n")).population
    large = parse_scenario(_with_population("  count: 5000\n  seed: 9\n")).population
    other = parse_scenario(_with_population("  count: 50\n  seed: 10\n")).population
    assert small is not None and large is not None and other is not None
    assert [small.customer(i) for i in range(50)] == [large.customer(i) for i in range(50)]
    assert small.customer(7) != other.customer(7)
    person = small.customer(0)
    assert person.key == "gen-000001" and person.username == "gen-000001"
    first, last = person.name.split(" ")
    assert first in FIRST_NAMES and last in LAST_NAMES  # the package's own lists, not Faker's


def test_identifiers_are_distinct_by_construction() -> None:
    keys = id_keys(3)
    numbers = {permuted_number(i, keys["usage_point"]) for i in range(20000)}
    assert len(numbers) == 20000
    assert all(len(n) == 10 and n[0] != "0" for n in numbers)


def test_a_taken_number_moves_the_generated_customer_aside() -> None:
    spec = PopulationSpec(count=5, seed=4, service_start=(1.45e9, 1.6e9))
    plain = generate_customer(spec, 2)
    moved = generate_customer(spec, 2, taken={"usage_point": {plain.numbers["usage_point"]}})
    assert moved.numbers["usage_point"] != plain.numbers["usage_point"]
    assert moved.numbers["sa"] == plain.numbers["sa"]


def test_profile_shares_and_selection_rules() -> None:
    spec = parse_scenario(_with_population(
        "  count: 4000\n  profiles: {residential_hourly: 3, commercial_15min: 1}\n  cities: [Oakland, Fresno]\n"
    )).population
    assert spec is not None
    people = list(spec.customers())
    commercial = sum(p.mix == "commercial_15min" for p in people)
    assert 800 < commercial < 1200  # a quarter
    assert {p.city for p in people} == {"Oakland", "Fresno"}
    assert all(p.customer_class == ("COM/IND" if p.mix == "commercial_15min" else "RES") for p in people)
    half = Selection(cities=("Oakland",), classes=("RES",), share=0.5, salt="t")
    chosen = [p.index for p in people if half.matches(p, spec.seed)]
    oakland_res = sum(p.city == "Oakland" and p.customer_class == "RES" for p in people)
    assert 0.4 * oakland_res < len(chosen) < 0.6 * oakland_res
    bigger = parse_scenario(_with_population(
        "  count: 8000\n  profiles: {residential_hourly: 3, commercial_15min: 1}\n  cities: [Oakland, Fresno]\n"
    )).population
    assert [i for i in chosen] == [p.index for p in bigger.customers(0, 4000) if half.matches(p, spec.seed)]


@pytest.mark.parametrize(("block", "field", "message"), [
    ("  count: -1\n", "population.count", "must be from 0"),
    ("  count: 10\n  profiles: {wind: 1}\n", "population.profiles.wind", "unknown profile"),
    ("  count: 10\n  cities: [Paris]\n", "population.cities", "not a known PG&E city"),
    ("  count: 10\n  territories: [{third_party: sunny}]\n", "population.territories[0].third_party",
     "is not a cca third party"),
    ("  count: 10\n  authorizations: [{third_party: nobody}]\n", "population.authorizations[0].third_party",
     "unknown third party"),
    ("  count: 10\n  authorizations: [{third_party: sunny, select: {share: 2}}]\n",
     "population.authorizations[0].select.share", "must be from 0 to 1"),
    ("  count: 10\n  service_start: {from: 2020-01-01, to: 2019-01-01}\n", "population.service_start",
     "'to' is before 'from'"),
    ("  count: 10\n  colour: blue\n", "population.colour", "unknown field"),
])
def test_bad_population_blocks_name_the_field(block: str, field: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_with_population(block), "bad.yaml")
    assert info.value.field_path == field
    assert message in info.value.message
    assert info.value.line is not None


def test_listed_keys_must_not_collide_with_generated_ones() -> None:
    text = _with_population("  count: 10\n  key_prefix: rivera\n", DEMO)
    parse_scenario(text)  # "rivera" itself is no generated key
    clash = DEMO.replace("  - key: rivera\n", "  - key: gen-000003\n", 1)
    with pytest.raises(ScenarioError, match="collides with a generated customer"):
        parse_scenario(_with_population("  count: 10\n", clash))


def test_starter_file_is_valid_and_loads_in_bulk(tmp_path: Path) -> None:
    from mock_custodian.pki import DevPKI

    scenario = parse_scenario(starter_scenario(cca=2500, seed=5), "starter.yaml")
    database = Database(f"sqlite:///{tmp_path}/world.db")
    database.create_schema()
    pki = DevPKI(tmp_path / "certs")
    pki.ensure(["localhost"])
    load_world(database, scenario, pki)
    with database.session() as db:
        def count(column, *where) -> int:  # noqa: ANN001
            return db.execute(select(func.count(column)).where(*where)).scalar_one()

        assert count(Customer.id) == 2500 and count(Account.id) == 2500 and count(ServiceAgreement.id) == 2500
        multi = count(ServiceAgreement.id, ServiceAgreement.profile["meters"].as_integer() == 2)
        assert count(Meter.id) == 2500 + multi and multi > 0
        cca = db.execute(select(ThirdParty).where(ThirdParty.user_type == "cca")).scalar_one()
        app = db.execute(select(ThirdParty).where(ThirdParty.user_type == "standard")).scalar_one()
        assert count(Authorization.id, Authorization.third_party_id == cca.id, Authorization.kind == "cca") == 2500
        made = db.execute(select(Authorization).where(Authorization.third_party_id == app.id,
                                                      Authorization.kind == "customer")).scalars().all()
        assert len(made) == 100
        assert all(a.service_agreements[0].profile["profile"] == "solar_net_metered" for a in made)
        ids = db.execute(select(Authorization.id).order_by(Authorization.id)).scalars().all()
        assert len(ids) == len(set(ids))
        # The stored rows are what the generator says, and the id counter continues after them.
        person = scenario.population.customer(41)
        row = db.execute(select(Customer).where(Customer.key == person.key)).scalar_one()
        assert (row.name, row.customer_number) == (person.name, person.numbers["customer"])
        sa = row.accounts[0].service_agreements[0]
        assert sa.usage_point_id == person.numbers["usage_point"] and sa.profile["profile"] == person.profile
        from mock_custodian.store.db import next_id
        assert next_id(db, "authorization_id", 1) == max(ids) + 1


def test_scenario_new_cli_writes_a_generated_starter(tmp_path: Path) -> None:
    target = tmp_path / "cca.yaml"
    run = subprocess.run([sys.executable, "-m", "mock_custodian", "scenario", "new", "--cca", "100000", str(target)],
                         capture_output=True, text=True, check=True)
    assert "wrote" in run.stdout
    spec = parse_scenario(target.read_text()).population
    assert spec is not None and spec.count == 100000 and spec.territories
    assert set(dict(spec.mix)) <= set(MIX_PROFILES)
    plain = subprocess.run([sys.executable, "-m", "mock_custodian", "scenario", "new"], capture_output=True,
                           text=True, check=True)
    assert "population:" not in plain.stdout  # without --cca: the hand-written starter as before
