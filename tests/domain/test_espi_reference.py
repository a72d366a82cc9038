"""Checked-in reference feeds for both DST days must match byte for byte.

They pin the whole pipeline: profile values, hash noise, TOU codes, block
cuts at local midnight, ids, links and serialization. Regenerate (after an
intended change, and review the diff) with::

    MOCK_CUSTODIAN_REGENERATE_REFERENCE=1 python -m pytest tests/domain/test_espi_reference.py
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from mock_custodian.espi import UsagePointRequest, usage_feed
from mock_custodian.synth import ServiceAgreementModel, day_bounds

REFERENCE = Path(__file__).parent / "reference"
R = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource"
SUBSCRIPTION = "4095251"
FEED_ID = "5b0e1f0a-3d7c-4c1e-9a53-0f7c1d2e3a4b"

SERVICE_AGREEMENTS = [
    {"usage_point_id": "5391320451", "profile": "residential_hourly", "rate_schedule": "E-TOU-C", "seed": 2026,
     "climate_zone": 12, "sa_start": "2024-01-01"},
    {"usage_point_id": "5391320452", "profile": "solar_net_metered", "seed": 2026, "climate_zone": 4,
     "sa_start": "2024-01-01"},
    {"usage_point_id": "5391320453", "profile": "gas_daily", "seed": 2026, "climate_zone": 12,
     "sa_start": "2024-01-01"},
]

CASES = {
    "spring-forward-2026-03-08.xml": date(2026, 3, 8),
    "fall-back-2026-11-01.xml": date(2026, 11, 1),
}


def reference_feed(day: date) -> bytes:
    start, end = day_bounds(day)
    now = end + 2 * 86400 + 7 * 3600 + 0.123  # frozen: two days later, 07:00:00.123 local-ish
    requests = [UsagePointRequest(SUBSCRIPTION, ServiceAgreementModel.from_dict(d), start, end)
                for d in SERVICE_AGREEMENTS]
    return b"".join(usage_feed(requests, resource_base=R, self_href=f"{R}/Batch/Subscription/{SUBSCRIPTION}",
                               now=now, feed_id=FEED_ID))


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_feed_matches_byte_for_byte(name: str) -> None:
    produced = reference_feed(CASES[name])
    path = REFERENCE / name
    if os.environ.get("MOCK_CUSTODIAN_REGENERATE_REFERENCE"):
        path.write_bytes(produced)
    expected = path.read_bytes()
    assert produced == expected, f"{name} differs from the checked-in reference feed"


@pytest.mark.parametrize(("name", "hours"), [("spring-forward-2026-03-08.xml", 23), ("fall-back-2026-11-01.xml", 25)])
def test_reference_feeds_show_the_dst_day(name: str, hours: int) -> None:
    """The checked-in files themselves carry the short and the long day (guards a bad regeneration)."""
    doc = etree.fromstring((REFERENCE / name).read_bytes())
    espi = "{http://naesb.org/espi}"
    counts = sorted(len(b.findall(f"{espi}IntervalReading")) for b in doc.iter(f"{espi}IntervalBlock"))
    durations = {b.findtext(f"{espi}interval/{espi}duration") for b in doc.iter(f"{espi}IntervalBlock")}
    assert counts == [1, hours, hours * 4, hours * 4]  # gas, hourly, 15-min delivered and received
    assert durations == {str(hours * 3600)}
