"""The ESPI schemas ship inside the package, unmodified, and `mock-custodian validate` uses them.

Each schema is pinned by SHA-256: a loosened schema (to make output pass) fails here first.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from mock_custodian.cli import main
from mock_custodian.espi import batch_list_xml, service_status_xml
from mock_custodian.espi.validate import SCHEMA_DIR, validate_bytes, validate_path

PINNED = {
    "atom.xsd": "4c4e06242a05c2fa15113599346c8b56d3dfbb04ea9ee8c80a643b42f86ab27e",
    "espiDerived.xsd": "6fca987b01055484fbe3d9c796023e23108d8c597f9996cae733ae7cd5e403bc",
    "retailcustomer.xsd": "c1296cc086a13c0755e7fced5149d493786ebe43bfe4c7f21ab23f29c8d2cae9",
    "xml.xsd": "42bfeb0410e371b210bb0b1b07e0462a7838071e3865e040e92534053fa0ef23",
}
LICENSED = ("atom.xsd", "espiDerived.xsd", "retailcustomer.xsd")
R = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource"

CUSTOMER_OK = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cust="http://naesb.org/espi/customer">
  <id>urn:uuid:0f0e0d0c-0000-4000-8000-000000000001</id><title>RetailCustomer</title>
  <updated>2026-11-20T07:00:00Z</updated>
  <entry><id>urn:uuid:0f0e0d0c-0000-4000-8000-000000000002</id><title>Customer</title>
    <published>2026-11-20T07:00:00Z</published><updated>2026-11-20T07:00:00Z</updated>
    <content><cust:Customer><cust:name>Rivera</cust:name></cust:Customer></content></entry>
</feed>"""


def test_every_schema_is_shipped_unmodified() -> None:
    shipped = {p.name for p in SCHEMA_DIR.glob("*.xsd")}
    assert shipped == set(PINNED), "a schema was added or removed: pin it here"
    for name, digest in PINNED.items():
        assert hashlib.sha256((SCHEMA_DIR / name).read_bytes()).hexdigest() == digest, f"{name} was modified"


@pytest.mark.parametrize("name", LICENSED)
def test_license_headers_are_kept(name: str) -> None:
    head = (SCHEMA_DIR / name).read_text(encoding="utf-8")[:3000]
    assert "Copyright (c) 2018-2019 Green Button Alliance, Inc." in head
    assert "Licensed under the Apache License, Version 2.0" in head
    assert "http://www.apache.org/licenses/LICENSE-2.0" in head
    notice = (SCHEMA_DIR / "README.md").read_text()
    assert name in notice and "Apache License, Version 2.0" in notice


def test_schemas_are_package_data() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["mock_custodian"]
    assert "espi/schemas/*.xsd" in data and "espi/schemas/README.md" in data


def test_the_right_schema_is_chosen_from_the_document() -> None:
    batch = validate_bytes(batch_list_xml([f"{R}/Batch/Bulk/00101?correlationID=1"]))
    assert batch.ok and batch.schema == "espiDerived.xsd" and batch.kind == "ESPI BatchList"
    status = validate_bytes(service_status_xml(1))
    assert status.ok and status.kind == "ESPI ServiceStatus"
    customer = validate_bytes(CUSTOMER_OK)
    assert customer.ok and customer.schema == "retailcustomer.xsd", customer.errors
    assert customer.kind == "Atom feed of Customer"


def test_errors_carry_their_line() -> None:
    bad = CUSTOMER_OK.replace(b"<cust:name>Rivera</cust:name>", b"<cust:nickname>R</cust:nickname>")
    outcome = validate_bytes(bad)
    assert not outcome.ok and outcome.schema == "retailcustomer.xsd"
    assert outcome.errors and outcome.errors[0][0] == 7 and "nickname" in outcome.errors[0][1]
    broken = validate_bytes(b"<feed xmlns='http://www.w3.org/2005/Atom'>\n<id>x</feed>")
    assert not broken.ok and broken.kind == "not well-formed XML" and broken.errors[0][0] == 2
    foreign = validate_bytes(b"<html><body/></html>")
    assert not foreign.ok and foreign.schema is None and "neither an Atom" in foreign.errors[0][1]
    assert not validate_path("/nonexistent/file.xml").ok


def test_validate_command_reports_each_file_and_exits_1_on_any_invalid(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good, bad = tmp_path / "batch.xml", tmp_path / "bad.xml"
    good.write_bytes(batch_list_xml([f"{R}/Authorization/1"]))
    bad.write_bytes(CUSTOMER_OK.replace(b"<cust:name>", b"<cust:nom>").replace(b"</cust:name>", b"</cust:nom>"))
    assert main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{good}: valid (ESPI BatchList, espiDerived.xsd)",
                                                    "1 valid, 0 invalid"]
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"{bad}: INVALID against retailcustomer.xsd (Atom feed of Customer)"
    assert out[2].startswith(f"{bad}:7: ") and "nom" in out[2]
    assert out[-1] == "1 valid, 1 invalid"
    assert main(["validate", "--quiet", str(good), str(bad)]) == 1
    assert not any(line.startswith(f"{good}:") for line in capsys.readouterr().out.splitlines())


def test_validate_reads_standard_input() -> None:
    done = subprocess.run([sys.executable, "-m", "mock_custodian", "validate", "-"], input=service_status_xml(0),
                          capture_output=True)
    assert done.returncode == 0, done.stdout
    assert done.stdout.decode().startswith("<stdin>: valid (ESPI ServiceStatus")
    assert validate_path("-", io.BytesIO(b"<nope/>")).ok is False
