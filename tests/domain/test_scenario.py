"""Scenario files: clear errors with file, line and field; deterministic identifiers (issue 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mock_custodian.scenario.parse import DEFAULT_DEMO, ScenarioError, derive_digits, load_scenario_file, parse_scenario

GOOD = DEFAULT_DEMO.read_text()


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.yaml")
    return info.value


def test_demo_scenario_has_what_the_issue_requires() -> None:
    scenario = load_scenario_file(None)
    tps = {tp.key: tp for tp in scenario.third_parties}
    kinds = {(tp.user_type, tp.status) for tp in tps.values()}
    assert ("standard", "approved") in kinds
    assert ("self_access", "approved") in kinds
    assert ("cca", "approved") in kinds
    assert ("standard", "accepted") in kinds  # still in testing
    sunny = tps["sunny"]
    assert sunny.redirect_uri and sunny.portal_uri and sunny.notification_uri
    profiles = [sa.profile["profile"] for c in scenario.customers for a in c.accounts for sa in a.service_agreements]
    for needed in ("residential_hourly", "gas_daily", "commercial_15min", "solar_net_metered"):
        assert needed in profiles
    assert profiles.count("commercial_15min") >= 2
    self_access = [a for a in scenario.authorizations if tps[a.third_party].user_type == "self_access"]
    assert self_access and self_access[0].customer == "lee"


def test_unknown_profile_names_line_and_field() -> None:
    text = GOOD.replace("profile: gas_daily", "profile: wind")
    err = _error(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "profile: wind" in row)
    assert err.path == "bad.yaml"
    assert err.line == line
    assert err.field_path == "customers[0].accounts[0].service_agreements[1].profile"
    assert "'wind' is not one of" in str(err)
    assert str(err).startswith(f"bad.yaml:{line}: customers[0]")


def test_missing_required_field_points_at_its_mapping() -> None:
    text = GOOD.replace('    tax_id: "945678901"\n', "")
    err = _error(text)
    assert err.field_path == "third_parties[2].tax_id"
    assert "is required" in err.message
    assert err.line is not None and "- key: bay-cca" in text.splitlines()[err.line - 1]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ('tax_id: "941234567"', 'tax_id: "94123"', "third_parties[0].tax_id", "exactly 9 digits"),
        ('client_id: "00102"', 'client_id: "00101"', "third_parties[1].client_id", "duplicate client_id"),
        ("display_name: NewCo Energy", "display_name: Sunny Solar", "third_parties[3].display_name", "unique"),
        ("history_months: 24", "history_months: 12", "third_parties[3].history_months", "24, 36 or 48"),
        ("notification_uri: https://localhost:9443/cca/notify", "notification_uri: http://x/notify",
         "third_parties[2].notification_uri", "https URL"),
        ("scale: 5800", "scale: -1", "customers[0].accounts[0].service_agreements[0].scale", "positive"),
        ("    customer: okafor\n", "    customer: nobody\n", "authorizations[1].customer", "unknown customer"),
        ("service_agreements: [okafor-solar]", "service_agreements: [rivera-gas]",
         "authorizations[1].service_agreements", "not a service agreement of customer"),
        ("data_groups: [Basic, Usage]", "data_groups: [Basic, Gossip]", "third_parties[3].data_groups", "Gossip"),
        ("    visible: true\n", "    visible: true\n    colour: blue\n", "third_parties[0].colour", "unknown field"),
        ("service_start: 2019-04-15\n          - key: rivera-gas",
         "service_start: soon\n          - key: rivera-gas",
         "customers[0].accounts[0].service_agreements[0].service_start", "not a date"),
    ],
)
def test_field_errors(old: str, new: str, field: str, message: str) -> None:
    assert old in GOOD, old
    text = GOOD.replace(old, new, 1)
    err = _error(text)
    assert err.field_path == field
    assert message in err.message
    assert err.line is not None


def test_invalid_yaml_reports_the_line() -> None:
    err = _error("name: x\nthird_parties: [\n  - oops\n")
    assert err.line is not None and err.line >= 2
    assert "not valid YAML" in err.message


def test_cli_validate_and_serve_refuse_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("profile: gas_daily", "profile: wind"))
    for args in (["scenario", "validate", str(bad)],
                 ["serve", "--scenario", str(bad), "--data-dir", str(tmp_path / "d"), "--api-port", "0",
                  "--portal-port", "0"]):
        out = subprocess.run([sys.executable, "-m", "mock_custodian", *args], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 2
        assert f"{bad}:" in out.stderr and "service_agreements[1].profile" in out.stderr
    good = subprocess.run([sys.executable, "-m", "mock_custodian", "scenario", "validate", str(DEFAULT_DEMO)],
                          capture_output=True, text=True, timeout=60)
    assert good.returncode == 0 and "valid" in good.stdout


def test_identifiers_are_seed_derived_and_stable() -> None:
    assert derive_digits(7, "sa", "x") == derive_digits(7, "sa", "x")
    assert derive_digits(7, "sa", "x") != derive_digits(8, "sa", "x")
    value = derive_digits(7, "usage_point", "x")
    assert len(value) == 10 and value.isdigit() and value[0] != "0"
