"""Customer data read as plain rows for packages (issue 14) describes exactly what the ORM path describes.

``store.content.customer_items`` feeds BulkRetailCustomerInfo and DR packages from a few Core selects; the
synchronous Batch/RetailCustomer resource still uses ``customer_item`` on ORM objects. Both must produce
the same bytes for every authorization, group combination, removed meter and DR enrolment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from mock_custodian.domain.content import customer_item, customer_items
from mock_custodian.domain.world import load_world
from mock_custodian.espi import customer_feed
from mock_custodian.pki import DevPKI
from mock_custodian.scenario.parse import BUILTIN_SCENARIOS, load_scenario_file
from mock_custodian.store.db import Database
from mock_custodian.store.models import Account, Authorization, Meter, ServiceAgreement

CATALOG = BUILTIN_SCENARIOS["catalog"]
BASE = "https://localhost:8443/GreenButtonConnect/espi/1_1/resource"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    folder = tmp_path_factory.mktemp("customer-items")
    pki = DevPKI(folder / "certs")
    pki.ensure(["localhost"])
    database = Database(f"sqlite:///{folder / 'world.db'}")
    database.create_schema()
    load_world(database, load_scenario_file(CATALOG), pki)
    with database.session() as db:  # the parts the catalog leaves plain: DR enrolments, exchanged meters
        for n, sa in enumerate(db.execute(select(ServiceAgreement).order_by(ServiceAgreement.id)).scalars()):
            if n % 2 == 0:
                sa.dr_programs = [{"program": "SmartAC", "status": "enrolled", "enrolled_at": 1767225600},
                                  {"program": "BIP", "status": "unenrolled", "unenrolled_at": 1769904000}]
        for n, meter in enumerate(db.execute(select(Meter).order_by(Meter.id)).scalars()):
            if n % 3 == 0:
                meter.removed_at = 1769904000.0
        first = db.execute(select(ServiceAgreement).order_by(ServiceAgreement.id)).scalars().first()
        db.add(Meter(service_agreement_id=first.id, position=2, serial_number="1009876543", meter_type="SmartMeter",
                     interval_length=900))
        db.add(Meter(service_agreement_id=first.id, position=1, serial_number="1001234567", meter_type="SmartMeter",
                     interval_length=None, installed_at=1769904000.0))  # exchanged: the new meter in position 1
        for account in db.execute(select(Account)).scalars():
            account.billing_address = {"street": "1 A & B <Rd>", "city": "Fresno", "zip": "93701"}
    yield database


def _feed(items: list, dr_only: bool) -> bytes:
    return b"".join(customer_feed(items, resource_base=BASE, self_href="x", now=1770000000.0, feed_id="f",
                                  dr_only=dr_only))


def test_plain_rows_give_the_same_feed_bytes_as_the_orm_for_every_group_combination(world: Database) -> None:
    groups = ("Basic", "Account", "ProgramEnrollment", "Usage")
    with world.session() as db:
        authorizations = db.execute(select(Authorization).order_by(Authorization.id)).scalars().all()
        described = [a for a in authorizations if a.customer is not None]
        assert len(described) >= 5 and len(described) < len(authorizations)  # some without a customer
        ids = [a.id for a in authorizations]
        checked = 0
        for n in range(1, len(groups) + 1):
            for combo in itertools.combinations(groups, n):
                for a in authorizations:
                    a.data_groups = list(combo)
                db.flush()
                orm = [customer_item(a) for a in described]
                rows = customer_items(db, ids)
                assert [i.retail_customer_id for i in rows] == [str(a.id) for a in described]
                for dr_only in (False, True):
                    assert _feed(rows, dr_only) == _feed(orm, dr_only), (combo, dr_only)
                    checked += 1
        assert checked == 30
        # The data the comparison rests on is really there.
        body = _feed(customer_items(db, ids), False)
        assert b"DemandResponseProgram" in body and b"&amp; B &lt;Rd&gt;" in body
        assert any(len(a.service_agreements) > 1 for a in described)
        assert any(len(sa.meters) > 1 for a in described for sa in a.service_agreements)
        # Order and repetition follow the ids given; unknown ids are left out.
        picked = [described[2].id, 999999999, described[0].id, described[2].id]
        assert [i.retail_customer_id for i in customer_items(db, picked)] == [
            str(described[2].id), str(described[0].id), str(described[2].id)]
        db.rollback()


def test_an_older_database_gains_the_meters_index(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    database.create_schema()
    with database.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_meters_service_agreement_id"))
    assert "ix_meters_service_agreement_id" not in {i["name"] for i in inspect(database.engine).get_indexes("meters")}
    database.create_schema()
    assert "ix_meters_service_agreement_id" in {i["name"] for i in inspect(database.engine).get_indexes("meters")}
