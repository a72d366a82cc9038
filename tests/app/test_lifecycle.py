"""The world over time (issue 9): publication lag, gap -> estimate -> final, corrections, bill revisions,
account and SA events, all driven by the clock and control calls, never by sleeping."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import requests
import support
from lxml import etree
from sqlalchemy import select
from support import inprocess

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.store.models import Notification, ServiceAgreement
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.readings import iter_day_readings

RES = "/GreenButtonConnect/espi/1_1/resource"
NS = {"a": "http://www.w3.org/2005/Atom", "e": "http://naesb.org/espi", "c": "http://naesb.org/espi/customer"}
HOURLY = "TnpJNmJuVnNiRG96TmpBd09qRT06MQ=="


def at(y: int, m: int, d: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(y, m, d, hour, minute, tzinfo=PACIFIC).timestamp()


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def world(tmp_path: Path):  # noqa: ANN201
    server = inprocess.start(tmp_path / "d")
    server.clock.freeze(at(2026, 10, 20, 12))
    yield server
    server.stop()


class Sub:
    """One customer authorization of Sunny Solar (00101) and how to read it."""

    def __init__(self, server: testing.RunningServer, customer: str, sa_key: str, groups: list[str]) -> None:
        granted = server.authorize(customer, "00101", service_agreements=[sa_key], groups=groups, via="control")
        self.server, self.id = server, granted["authorization_id"]
        self.token = granted["token"]["access_token"]
        self.refresh_token = granted["token"]["refresh_token"]
        database = support.database(server)
        with database.session() as db:
            sa = db.execute(select(ServiceAgreement).where(ServiceAgreement.key == sa_key)).scalar_one()
            self.model = ServiceAgreementModel.from_dict(sa.profile)
        self.up = self.model.usage_point_id

    def renew(self) -> None:
        """Access tokens live an hour of simulated time: refresh after moving the clock, as a TP would."""
        tp = self.server.third_party("00101")
        body = requests.post(f"{self.server.api_base_url}/datacustodian/oauth/v2/token",
                             params={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
                             auth=("00101", tp["client_secret"]), cert=self.server.cert("00101"),
                             verify=self.server.ca_bundle, timeout=30).json()
        self.token, self.refresh_token = body["access_token"], body["refresh_token"]

    def get(self, path: str, **params: str) -> requests.Response:
        self.renew()
        return requests.get(f"{self.server.api_base_url}{RES}/Subscription/{self.id}/UsagePoint/{self.up}{path}",
                            params=params, headers={"Authorization": f"Bearer {self.token}"},
                            cert=self.server.cert("00101"), verify=self.server.ca_bundle, timeout=30)

    def blocks(self, day_start: float, day_end: float, **extra: str) -> requests.Response:
        return self.get(f"/MeterReading/{HOURLY}/IntervalBlock", **{"published-min": str(int(day_start)),
                                                                    "published-max": str(int(day_end)), **extra})


def readings(response: requests.Response) -> list[tuple[int, int, int]]:
    """(start, value, quality) of every IntervalReading."""
    assert response.status_code == 200, response.text
    doc = etree.fromstring(response.content)
    return [(int(r.findtext("e:timePeriod/e:start", namespaces=NS)), int(r.findtext("e:value", namespaces=NS)),
             int(r.findtext("e:ReadingQuality/e:quality", namespaces=NS)))
            for r in doc.iterfind(".//e:IntervalReading", namespaces=NS)]


def updated_times(response: requests.Response) -> list[str]:
    return etree.fromstring(response.content).xpath("//a:entry/a:updated/text()", namespaces=NS)


def test_a_day_appears_exactly_at_its_publication_time(world: testing.RunningServer) -> None:
    sub = Sub(world, "rivera", "rivera-electric", ["Usage"])
    day, next_day = at(2026, 10, 20), at(2026, 10, 21)
    world.clock.set(at(2026, 10, 21, 5, 59))
    assert sub.blocks(day, next_day).status_code == 204
    world.clock.set(at(2026, 10, 21, 6, 0))
    shown = sub.blocks(day, next_day)
    assert len(readings(shown)) == 24
    assert updated_times(shown) == ["2026-10-21T13:00:00.000Z"]  # published 06:00 PDT = 13:00Z


def test_gap_then_estimate_then_final(world: testing.RunningServer) -> None:
    sub = Sub(world, "rivera", "rivera-electric", ["Usage"])
    day, next_day = at(2026, 10, 18), at(2026, 10, 19)
    # Four hours (08:00-12:00) of 2026-10-18 missing when first published, estimated after a day, final after five.
    world.clock.set(at(2026, 10, 18, 22))  # declared before the day is published
    world.control("POST", "/data-changes", json={
        "kind": "gap", "sa": "rivera-electric", "start": iso(at(2026, 10, 18, 8)), "end": iso(at(2026, 10, 18, 12)),
        "estimate_after": 86400, "final_after": 5 * 86400, "estimate_quality": 8})
    metered = [v for b in iter_day_readings(sub.model, 1, 1, day, next_day) for v in b.values]
    world.clock.set(at(2026, 10, 19, 7))
    first = readings(sub.blocks(day, next_day))
    assert len(first) == 20
    assert all(not at(2026, 10, 18, 8) <= start < at(2026, 10, 18, 12) for start, _, _ in first)
    world.clock.set(at(2026, 10, 20, 7))
    estimated_response = sub.blocks(day, next_day)
    estimated = readings(estimated_response)
    assert len(estimated) == 24
    assert [q for s, _, q in estimated if at(2026, 10, 18, 8) <= s < at(2026, 10, 18, 12)] == [8] * 4
    assert [q for s, _, q in estimated if not at(2026, 10, 18, 8) <= s < at(2026, 10, 18, 12)] == [17] * 20
    assert updated_times(estimated_response) == [iso(at(2026, 10, 20, 6)).replace("Z", ".000Z")]
    world.clock.set(at(2026, 10, 24, 7))
    final = readings(sub.blocks(day, next_day))
    assert [q for _, _, q in final] == [17] * 24
    assert [v for _, v, _ in final] == metered  # final values are the metered ones


def test_correction_sets_updated_and_is_found_by_updated_min(world: testing.RunningServer) -> None:
    sub = Sub(world, "rivera", "rivera-electric", ["Usage", "Billing"])
    day, next_day = at(2026, 10, 10), at(2026, 10, 11)
    before = readings(sub.blocks(day, next_day))
    world.control("POST", "/data-changes", json={
        "kind": "correction", "sa": "rivera-electric", "start": iso(day), "end": iso(next_day), "factor": 1.5})
    after_response = sub.blocks(day, next_day)
    after = readings(after_response)
    assert [v for _, v, _ in after] == [round(v * 1.5) for _, v, _ in before]
    assert {q for _, _, q in after} == {7}
    now_iso = iso(at(2026, 10, 20, 12)).replace("Z", ".000Z")
    assert updated_times(after_response) == [now_iso]
    # updated-min finds exactly the corrected block among October's days.
    found = sub.get(f"/MeterReading/{HOURLY}/IntervalBlock", **{"updated-min": str(int(at(2026, 10, 20, 11))),
                                                                "updated-max": str(int(at(2026, 10, 20, 13)))})
    starts = etree.fromstring(found.content).xpath("//e:IntervalBlock/e:interval/e:start/text()", namespaces=NS)
    assert starts == [str(int(day))]
    # The bill covering the day is revised: its UsageSummary's updated time is the correction's, and its
    # total still equals the sum of the (corrected) intervals.
    summaries = sub.get("/UsageSummary", **{"updated-min": str(int(at(2026, 10, 20, 11)))})
    if summaries.status_code == 204:
        pytest.skip("the corrected day's billing period has no bill yet on this read cycle")
    doc = etree.fromstring(summaries.content)
    assert doc.xpath("//a:entry/a:updated/text()", namespaces=NS) == [now_iso]
    period_start = int(doc.findtext(".//e:billingPeriod/e:start", namespaces=NS))
    period_end = period_start + int(doc.findtext(".//e:billingPeriod/e:duration", namespaces=NS))
    corrected = readings(sub.blocks(period_start, period_end))
    assert int(doc.findtext(".//e:overallConsumptionLastPeriod/e:value", namespaces=NS)) == sum(
        v for _, v, _ in corrected)


def test_bill_revision_changes_the_usage_summary(world: testing.RunningServer) -> None:
    sub = Sub(world, "rivera", "rivera-electric", ["Usage", "Billing"])
    window = {"published-min": iso(at(2026, 8, 1)), "published-max": iso(at(2026, 10, 1))}
    original = etree.fromstring(sub.get("/UsageSummary", **window).content)
    first_start = original.xpath("//e:billingPeriod/e:start/text()", namespaces=NS)[0]
    world.control("POST", "/data-changes", json={"kind": "bill_revision", "sa": "rivera-electric",
                                                 "within": int(first_start) + 86400, "factor": 1.2})
    revised = etree.fromstring(sub.get("/UsageSummary", **window).content)
    def total(doc: etree._Element) -> int:
        return int(doc.xpath("//e:UsageSummary", namespaces=NS)[0].findtext(
            "e:overallConsumptionLastPeriod/e:value", namespaces=NS))
    assert total(revised) > total(original)
    assert revised.xpath("//a:entry/a:updated/text()", namespaces=NS)[0] == iso(
        at(2026, 10, 20, 12)).replace("Z", ".000Z")


def test_move_out_ends_access_and_notifies(world: testing.RunningServer) -> None:
    granted = world.authorize("rivera", "00101", groups=["Usage"], via="control")
    sub_id, token = granted["authorization_id"], granted["token"]["access_token"]
    world.control("POST", "/events", json={"event": "move_out", "sa": "rivera-gas"})
    headers = {"Authorization": f"Bearer {token}"}
    listing = requests.get(f"{world.api_base_url}{RES}/Subscription/{sub_id}/UsagePoint", headers=headers,
                           cert=world.cert("00101"), verify=world.ca_bundle, timeout=30)
    assert listing.status_code == 200 and len(etree.fromstring(listing.content).xpath("//a:entry", namespaces=NS)) == 1
    database = support.database(world)
    with database.session() as db:
        notes = db.execute(select(Notification)).scalars().all()
        assert any(f"/Authorization/{sub_id}" in n.body for n in notes)
        sa = db.execute(select(ServiceAgreement).where(ServiceAgreement.key == "rivera-gas")).scalar_one()
        assert sa.status == "Closed" and sa.service_end is not None
    cat = requests.post(f"{world.api_base_url}/datacustodian/oauth/v2/token",
                        params={"grant_type": "client_credentials"},
                        auth=("00101", world.third_party("00101")["client_secret"]), cert=world.cert("00101"),
                        verify=world.ca_bundle, timeout=30).json()["client_access_token"]
    entry = requests.get(f"{world.api_base_url}{RES}/Authorization/{sub_id}",
                         headers={"Authorization": f"Bearer {cat}"}, cert=world.cert("00101"),
                         verify=world.ca_bundle, timeout=30).text
    assert "AccountCollection=1;" in entry


def test_scheduled_meter_exchange_applies_when_the_clock_arrives(world: testing.RunningServer) -> None:
    sub = Sub(world, "okafor", "okafor-solar", ["Usage", "ProgramEnrollment"])
    world.control("POST", "/events", json={"event": "meter_exchange", "sa": "okafor-solar",
                                           "at": iso(at(2026, 10, 25)), "serial": "1009999999"})
    feed = requests.get(f"{world.api_base_url}{RES}/Batch/RetailCustomer/{sub.id}",
                        headers={"Authorization": f"Bearer {sub.token}"}, cert=world.cert("00101"),
                        verify=world.ca_bundle, timeout=30)
    assert b"1009999999" not in feed.content
    world.clock.set(at(2026, 10, 25, 1))
    sub.renew()
    feed = requests.get(f"{world.api_base_url}{RES}/Batch/RetailCustomer/{sub.id}",
                        headers={"Authorization": f"Bearer {sub.token}"}, cert=world.cert("00101"),
                        verify=world.ca_bundle, timeout=30)
    assert b"1009999999" in feed.content
    # The usage point and its MeterReading carry on.
    assert sub.get("/MeterReading").status_code == 200


def test_bad_lifecycle_requests_are_refused(world: testing.RunningServer) -> None:
    for body, message in (
        ({"kind": "gap", "sa": "rivera-electric", "start": iso(at(2026, 10, 5)), "end": iso(at(2026, 10, 4))},
         "end must be after start"),
        ({"kind": "correction", "sa": "rivera-electric", "start": iso(at(2022, 1, 1)), "end": iso(at(2022, 1, 2))},
         "3 years"),
        ({"kind": "teleport", "sa": "rivera-electric"}, "kind must be one of"),
    ):
        with pytest.raises(testing.ControlAPIError) as info:
            world.control("POST", "/data-changes", json=body)
        assert info.value.status == 400 and message in str(info.value)


def test_demo_timeline_is_visible_out_of_the_box(tmp_path: Path) -> None:
    server = inprocess.start(tmp_path / "demo")
    try:
        changes = server.control("GET", "/data-changes")["changes"]
        assert {c["kind"] for c in changes} == {"correction", "gap"}
        events = server.control("GET", "/events")["events"]
        assert [e["event"] for e in events] == ["meter_exchange"]
        server.clock.set(server.clock.now().timestamp() + 1)  # any request applies what is due
        assert server.control("GET", "/events")["events"][0]["applied_at"] is not None
    finally:
        server.stop()
