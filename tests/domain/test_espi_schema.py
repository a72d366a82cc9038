"""Every resource type, for every profile, passes `mock-custodian validate` (real writer output, shipped schemas)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from support.espi_samples import APPLICATION_INFO, CUSTOMER, SCOPE

from mock_custodian.espi import (
    INDEFINITE_END,
    AuthorizationValues,
    CustomerFeedItem,
    ReadingTypeSpec,
    UsagePointPaths,
    UsagePointRequest,
    application_information_entry,
    authorization_entry,
    batch_list_xml,
    customer_feed,
    feed,
    interval_block_entry,
    local_time_parameters_entry,
    meter_reading_entry,
    meter_readings_of,
    program_id_mappings_entry,
    reading_type_entry,
    service_status_xml,
    usage_feed,
    usage_point_entry,
    usage_summary_entry,
)
from mock_custodian.synth import PROFILE_NAMES, ServiceAgreementModel, bills, day_bounds, day_readings

R = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource"
NOW = day_bounds(date(2026, 11, 20))[0] + 7 * 3600.0


def validate(paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mock_custodian", "validate", *map(str, paths)],
                          capture_output=True, text=True)


def assert_all_valid(paths: list[Path]) -> None:
    result = validate(paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(f"{len(paths)} valid, 0 invalid")


def sa_for(profile: str, **extra) -> ServiceAgreementModel:
    return ServiceAgreementModel.from_dict(
        {"usage_point_id": "5391320451", "profile": profile, "seed": 11, "sa_start": "2026-01-01", **extra})


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_usage_feed_of_every_profile_validates(profile: str, tmp_path: Path) -> None:
    # the window spans the fall-back day and a closed bill, so blocks, summaries and TOU all appear
    sa = sa_for(profile, meters=2 if profile == "commercial_15min" else 1)
    start, end = day_bounds(date(2026, 10, 20))[0], day_bounds(date(2026, 11, 3))[0]
    req = UsagePointRequest("4095251", sa, start, end, program_enrollment=True)
    body = b"".join(usage_feed([req], resource_base=R, self_href=f"{R}/Batch/Subscription/4095251", now=NOW))
    no_billing = b"".join(usage_feed([UsagePointRequest("4095251", sa, start, end, billing=False)],
                                     resource_base=R, self_href=f"{R}/Batch/Subscription/4095251", now=NOW))
    assert b"UsageSummary_" in body
    assert (b"IntervalBlock_" in body) == (profile != "non_interval")
    paths = [tmp_path / "feed.xml", tmp_path / "no_billing.xml"]
    paths[0].write_bytes(body)
    paths[1].write_bytes(no_billing)
    assert_all_valid(paths)


def test_each_resource_entry_validates_standalone(tmp_path: Path) -> None:
    docs: dict[str, bytes] = {}
    t = NOW
    for name, spec in {
        "rt_hourly": ReadingTypeSpec(72, 3600, 1, 1),
        "rt_15min": ReadingTypeSpec(72, 900, 1, 1),
        "rt_received": ReadingTypeSpec(72, 900, 19, 1),
        "rt_net": ReadingTypeSpec(72, 900, 4, 2),
        "rt_gas_daily": ReadingTypeSpec(169, 86400, 1, 7),
        "rt_billed": ReadingTypeSpec(72, None, 4, 1),
        "rt_gas_billed": ReadingTypeSpec(169, None, 1, 7),
    }.items():
        docs[name] = reading_type_entry(spec, resource_base=R, published=t, updated=t, root=True)
    for profile in PROFILE_NAMES:
        sa = sa_for(profile, mv90=profile == "commercial_15min")
        paths = UsagePointPaths(R, "4095251", sa.usage_point_id)
        docs[f"up_{profile}"] = usage_point_entry(paths, service_kind=1 if sa.commodity == "gas" else 0,
                                                  tariff_profile=sa.rate_schedule, published=t, updated=t, root=True)
        for meter, flow, rt, mr_id in meter_readings_of(sa):
            docs[f"mr_{profile}_{flow}"] = meter_reading_entry(paths, mr_id, rt.id, published=t, updated=t, root=True)
            block = day_readings(sa, meter, flow, date(2026, 3, 8))
            docs[f"ib_{profile}_{flow}"] = interval_block_entry(paths, mr_id, block, published=t, updated=t, root=True)
        bill = next(iter(bills(sa, day_bounds(date(2026, 5, 1))[0], day_bounds(date(2026, 6, 1))[0], NOW)))
        docs[f"us_{profile}"] = usage_summary_entry(paths, bill, published=t, updated=t, root=True)
        docs[f"us_nobill_{profile}"] = usage_summary_entry(paths, bill, published=t, updated=t, root=True,
                                                           billing=False)
        # a resource-level collection: the MeterReading feed (empty for a non-interval SA)
        docs[f"mr_feed_{profile}"] = b"".join(feed(
            (meter_reading_entry(paths, mr_id, rt.id, published=t, updated=t)
             for _, _, rt, mr_id in meter_readings_of(sa)), self_href=paths.meter_readings, updated=t))
    ev = sa_for("ev_charging")
    docs["plain_style"] = b"".join(usage_feed(
        [UsagePointRequest("4095251", ev, *day_bounds(date(2026, 11, 1)))], resource_base=R, self_href=R, now=NOW,
        style="plain"))
    assert b'xsi:type="ns1:' not in docs["plain_style"]
    docs["ltp"] = local_time_parameters_entry(resource_base=R, published=t, updated=t, root=True)
    docs["pim"] = program_id_mappings_entry(resource_base=R, published=t, updated=t, root=True)
    docs["status"] = service_status_xml(1)
    docs["batchlist"] = batch_list_xml([f"{R}/Batch/Bulk/00123?correlationID=98cd4976-0000-4000-8000-000000000001",
                                        f"{R}/Authorization/4095251"])
    docs["appinfo"] = application_information_entry(APPLICATION_INFO, application_information_id="7000123",
                                                     resource_base=R, published=t, updated=t)
    for name, end in (("auth_indefinite", INDEFINITE_END), ("auth_fixed", 1798790400)):
        docs[name] = authorization_entry(AuthorizationValues(
            "4095251", 1719853925, end, 1625245925, 1, SCOPE, f"{R}/Subscription/4095251",
            customer_resource_uri=f"{R}/Batch/RetailCustomer/4095251"), resource_base=R, published=t, updated=t,
            root=True)
    docs["auth_feed"] = b"".join(feed([authorization_entry(AuthorizationValues(
        "4095250", 1719853925, INDEFINITE_END, 1719853925, 1, SCOPE, f"{R}/Batch/Bulk/00123"),
        resource_base=R, published=t, updated=t)], self_href=f"{R}/Authorization", updated=t))
    for groups in (("Basic",), ("Account",), ("ProgramEnrollment",), ("Basic", "Account", "ProgramEnrollment")):
        docs["cust_" + "_".join(groups)] = b"".join(customer_feed(
            [CustomerFeedItem("92772", CUSTOMER, groups)], resource_base=R,
            self_href=f"{R}/Batch/RetailCustomer/92772", now=t))
    docs["cust_dr"] = b"".join(customer_feed([CustomerFeedItem("92772", CUSTOMER)], resource_base=R,
                                             self_href=f"{R}/Batch/RetailDRPrgInfo/92772", now=t, dr_only=True))
    files = []
    for name, body in docs.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(body)
        files.append(path)
    assert_all_valid(files)


def test_validator_has_teeth(tmp_path: Path) -> None:
    """The same writer output with two ReadingType children swapped must be rejected."""
    good = reading_type_entry(ReadingTypeSpec(72, 3600, 1, 1), resource_base=R, published=NOW, updated=NOW, root=True)
    bad = good.replace(b"<ns0:accumulationBehaviour>4</ns0:accumulationBehaviour><ns0:commodity>1</ns0:commodity>",
                       b"<ns0:commodity>1</ns0:commodity><ns0:accumulationBehaviour>4</ns0:accumulationBehaviour>")
    assert bad != good
    path = tmp_path / "bad.xml"
    path.write_bytes(bad)
    assert validate([path]).returncode == 1
