"""The newcomer's CLI gaps (issue 18): consent, customers (list and add), on the data dir's database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mock_custodian import cli
from mock_custodian.cli.common import open_data_dir
from mock_custodian.settings import load_settings
from mock_custodian.store.db import Database
from mock_custodian.store.models import Authorization, Customer, ServiceAgreement

NEW_CUSTOMERS = """\
customers:
  - key: newbie
    username: newbie
    password: demo
    class: RES
    city: Fresno
    accounts:
      - key: newbie-home
        service_agreements:
          - {key: newbie-electric, commodity: electric, profile: residential_hourly, rate_schedule: E-TOU-C,
             service_start: 2024-01-01}
  - key: newcomer
    username: newcomer
    password: demo
    class: RES
    accounts:
      - key: newcomer-home
        service_agreements:
          - {key: newcomer-electric, commodity: electric, profile: residential_hourly, service_start: -1d}
"""


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    open_data_dir(load_settings({"data_dir": tmp_path}, environ={}), create=True)
    return tmp_path


def run(data_dir: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--data-dir", str(data_dir)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_consent_prints_pge_token_response(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(data_dir, capsys, "consent", "rivera", "00101", "--groups", "Usage", "Billing",
                         "--sa", "rivera-electric")
    assert code == 0, err
    token = json.loads(out)
    assert list(token)[:5] == ["access_token", "token_type", "expires_in", "refresh_token", "scope"]
    assert token["resourceURI"].startswith("https://127.0.0.1:8443/GreenButtonConnect/espi/1_1/resource/")
    database = Database(f"sqlite:///{data_dir / 'mock-custodian.db'}")
    with database.session() as db:
        live = db.query(Authorization).filter(Authorization.kind == "customer",
                                              Authorization.customer.has(key="rivera")).all()
        newest = max(live, key=lambda a: a.id)
        assert newest.data_groups == ["Usage", "Billing"]
        assert [sa.key for sa in newest.service_agreements] == ["rivera-electric"]
    code, out, _ = run(data_dir, capsys, "consent", "rivera", "00101", "--no-exchange", "--full")
    full = json.loads(out)
    assert code == 0 and full["token"] is None and full["authorization_code"] and newest.id in full["replaced"]


def test_consent_refusals_are_clear(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(data_dir, capsys, "consent", "rivera", "00103")
    assert code == 2 and "cca registration" in err
    code, _, err = run(data_dir, capsys, "consent", "rivera", "00101", "--sa", "nope")
    assert code == 2 and "no service agreement 'nope'" in err
    code, _, err = run(data_dir, capsys, "consent", "rivera", "00101", "--groups", "Everything")
    assert code == 2 and "unknown data group" in err


def test_customers_lists_keys_and_numbers(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(data_dir, capsys, "customers")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["CUSTOMER", "USERNAME", "NAME"]
    assert any(line.startswith("rivera") and "rivera-electric" in line for line in lines)
    payload = json.loads(run(data_dir, capsys, "customers", "--json")[1])
    assert {c["key"] for c in payload["customers"]} >= {"rivera", "harbor", "okafor"}


def test_customers_add_keeps_the_world(data_dir: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert run(data_dir, capsys, "consent", "rivera", "00101")[0] == 0
    database = Database(f"sqlite:///{data_dir / 'mock-custodian.db'}")
    with database.session() as db:
        before = db.query(Authorization).count()
    fragment = tmp_path / "new.yaml"
    fragment.write_text(NEW_CUSTOMERS)
    code, out, err = run(data_dir, capsys, "customers", "add", str(fragment), "--json")
    assert code == 0, err
    added, relative = json.loads(out)["customers"]
    assert added["key"] == "newbie" and added["accounts"][0]["service_agreements"][0]["key"] == "newbie-electric"
    with database.session() as db:
        assert db.query(Authorization).count() == before  # nothing replaced
        assert db.query(Customer).filter_by(key="rivera").one() is not None
        # Added exactly as a scenario load adds: the password salted and hashed, a relative start resolved.
        stored = db.query(Customer).filter_by(key="newbie").one().password
        assert stored != "demo" and stored.startswith("pbkdf2:")
        start = db.query(ServiceAgreement).filter_by(key="newcomer-electric").one().service_start
        assert isinstance(start, float) and start < database.clock().epoch() - 86_400 + 3_600
    # The new customer can consent at once.
    code, out, err = run(data_dir, capsys, "consent", "newbie", "00101")
    assert code == 0, err and json.loads(out)["access_token"]
    # A second add of the same keys is refused whole; a bad field names its line.
    code, _, err = run(data_dir, capsys, "customers", "add", str(fragment))
    assert code == 2 and "customer key 'newbie' exists" in err
    fragment.write_text(NEW_CUSTOMERS.replace("newbie", "other").replace("residential_hourly", "wind"))
    code, _, err = run(data_dir, capsys, "customers", "add", str(fragment))
    assert code == 2 and ":10:" in err and "'wind'" in err
    with database.session() as db:
        assert db.query(Customer).filter_by(key="other").count() == 0


def test_control_api_adds_customers_without_replacing_the_world(data_dir: Path) -> None:
    from mock_custodian.app import create_app

    app = create_app(load_settings({"data_dir": data_dir, "control_token": "t"}, environ={}))
    client = app.test_client()
    headers = {"X-Control-Token": "t"}
    granted = client.post("/__sim/authorizations", headers=headers, json={"customer": "rivera", "client_id": "00101"})
    assert granted.status_code == 201
    added = client.post("/__sim/customers", headers={**headers, "Content-Type": "application/yaml"},
                        data=NEW_CUSTOMERS)
    assert added.status_code == 201, added.get_json()
    assert [c["key"] for c in added.get_json()["customers"]] == ["newbie", "newcomer"]
    as_json = client.post("/__sim/customers", headers=headers, json={
        "key": "second", "accounts": [{"key": "second-home", "service_agreements": [
            {"key": "second-gas", "commodity": "gas", "profile": "gas_daily", "rate_schedule": "G-1",
             "service_start": "2024-01-01"}]}]})
    assert as_json.status_code == 201, as_json.get_json()
    listed = {c["key"] for c in client.get("/__sim/customers", headers=headers).get_json()["customers"]}
    assert {"rivera", "newbie", "second"} <= listed
    again = client.post("/__sim/customers", headers=headers, json={"customers": [{"key": "rivera", "accounts": []}]})
    assert again.status_code == 400 and "customer key 'rivera' exists" in again.get_json()["error_description"]
    bad = client.post("/__sim/customers", headers=headers, json={"customers": [{"key": "x", "shoe_size": 9}]})
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_scenario"
    assert client.post("/__sim/customers", json={"key": "y"}).status_code == 401
    # the authorization granted before the additions is still live
    token = granted.get_json()["token"]["access_token"]
    with Database(f"sqlite:///{data_dir / 'mock-custodian.db'}").session() as db:
        assert db.get(Authorization, granted.get_json()["authorization_id"]).ends_at is None
    assert token
