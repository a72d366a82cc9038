"""Feed layout and PG&E conventions of the writers (§7.1-7.12, §8.1, checklist 120-148)."""

from __future__ import annotations

import base64
import re
import tracemalloc
import uuid
from datetime import date

import pytest
from lxml import etree
from support.espi_samples import APPLICATION_INFO, CUSTOMER, SCOPE

from mock_custodian.espi import (
    INDEFINITE_END,
    AuthorizationValues,
    CustomerFeedItem,
    UsagePointRequest,
    application_information_entry,
    authorization_entry,
    batch_list_xml,
    customer_feed,
    meter_reading_id,
    reading_type_id,
    service_status_xml,
    usage_feed,
)
from mock_custodian.espi.admin import APPLICATION_INFORMATION_ELEMENTS
from mock_custodian.synth import ServiceAgreementModel, bills, day_bounds, iter_local_days

R = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource"
A = "{http://www.w3.org/2005/Atom}"
E = "{http://naesb.org/espi}"
C = "{http://naesb.org/espi/customer}"
SELF = f"{R}/Batch/Subscription/4095251/UsagePoint/5391320451"
FEED_ID = "3f0c1c8e-8a59-4f3e-9c51-0c2d9f1b7a10"


def sa(profile: str = "residential_hourly", **extra) -> ServiceAgreementModel:
    return ServiceAgreementModel.from_dict({"usage_point_id": "5391320451", "profile": profile, "seed": 5,
                                            "sa_start": "2025-01-01", **extra})


def window(first: date, last: date) -> tuple[int, int]:
    return day_bounds(first)[0], day_bounds(last)[1]


def build(requests, now=None, **kw) -> bytes:
    now = now if now is not None else day_bounds(date(2026, 11, 20))[0] + 3600.0
    return b"".join(usage_feed(requests, resource_base=R, self_href=SELF, now=now, feed_id=FEED_ID, **kw))


def kinds(doc: etree._Element) -> list[str]:
    return [etree.QName(e.find(f"{A}content")[0]).localname for e in doc.iter(f"{A}entry")]


def squeeze(seq: list[str]) -> list[str]:
    return [x for i, x in enumerate(seq) if i == 0 or seq[i - 1] != x]


def self_href(entry) -> str:
    return next(link.get("href") for link in entry.findall(f"{A}link") if link.get("rel") == "self")


def entries_of(doc, kind: str) -> list:
    return [e for e in doc.iter(f"{A}entry") if e.find(f"{A}content")[0].tag.endswith("}" + kind)]


# --------------------------------------------------------------------------- layout
def test_usage_feed_layout_and_envelope() -> None:
    body = build([UsagePointRequest("4095251", sa(rate_schedule="E-TOU-C"), *window(date(2026, 9, 25),
                                                                                  date(2026, 10, 5)))])
    assert body.startswith(b'<ns1:feed xmlns:ns1="http://www.w3.org/2005/Atom">')  # no XML declaration
    doc = etree.fromstring(body)
    assert [etree.QName(c).localname for c in doc[:4]] == ["id", "title", "updated", "link"]
    assert doc.findtext(f"{A}id") == FEED_ID
    assert doc.findtext(f"{A}title") == "Green Button Usage Feed"
    assert doc.find(f"{A}link").get("href") == SELF and doc.find(f"{A}link").get("rel") == "self"
    assert squeeze(kinds(doc)) == ["LocalTimeParameters", "ReadingType", "UsagePoint", "MeterReading",
                                   "IntervalBlock", "UsageSummary", "ProgramIdMappings"]
    assert kinds(doc).count("ReadingType") == 2  # hourly delivered + billed total
    for entry in doc.iter(f"{A}entry"):
        children = [etree.QName(c).localname + (":" + c.get("rel") if c.get("rel") else "") for c in entry]
        rels = [c for c in children if c.startswith("link:")]
        assert children[0] == "id" and children[-3:] == ["published", "updated", "content"]
        assert rels[:2] == ["link:up", "link:self"] and all(r == "link:related" for r in rels[2:])
        assert children[1 + len(rels)] == "title"
        for child in entry:
            xsi_type = child.get("{http://www.w3.org/2001/XMLSchema-instance}type")
            assert xsi_type == "ns1:" + {"id": "idType", "link": "linkType", "title": "textType",
                                         "published": "dateTimeType", "updated": "dateTimeType",
                                         "content": "contentType"}[etree.QName(child).localname]
        assert entry.findtext(f"{A}id") == str(uuid.uuid5(uuid.NAMESPACE_URL, self_href(entry)))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.findtext(f"{A}published"))
    titles = {kinds(doc)[i]: e.findtext(f"{A}title") for i, e in enumerate(doc.iter(f"{A}entry"))}
    assert titles["LocalTimeParameters"] == "DST FOR PACIFIC TIMEZONE"
    assert titles["ReadingType"] == "Type of Meter Reading Data"
    assert titles["UsagePoint"] == titles["MeterReading"] == "Green Button Data File"
    assert titles["ProgramIdMappings"] == "Time Of Use & Consumption Tier Code Info"
    assert b"Time Of Use &amp; Consumption Tier Code Info" in body
    ltp = entries_of(doc, "LocalTimeParameters")[0].find(f"{A}content")[0]
    assert [(etree.QName(c).localname, c.text) for c in ltp] == [
        ("dstEndRule", "B40E2000"), ("dstOffset", "3600"), ("dstStartRule", "360E2000"), ("tzOffset", "-28800")]


def test_ids_and_links_follow_pge_conventions() -> None:
    assert reading_type_id(72, 3600, 1) == "NzI6bnVsbDozNjAwOjE="
    assert reading_type_id(72, 900, 19) == "NzI6bnVsbDo5MDA6MTk="
    assert reading_type_id(72, None, 4) == "NzI6bnVsbDpudWxsOjQ="
    assert reading_type_id(169, 86400, 1) == "MTY5Om51bGw6ODY0MDA6MQ=="
    assert meter_reading_id("NzI6bnVsbDozNjAwOjE=", 1) == "TnpJNmJuVnNiRG96TmpBd09qRT06MQ=="
    assert meter_reading_id("NzI6bnVsbDo5MDA6MQ==", 2) == "TnpJNmJuVnNiRG81TURBNk1RPT06Mg=="
    doc = etree.fromstring(build([UsagePointRequest("4095251", sa(), *window(date(2026, 10, 3), date(2026, 10, 3)))]))
    up = f"{R}/Subscription/4095251/UsagePoint"
    mr = f"{up}/5391320451/MeterReading/TnpJNmJuVnNiRG96TmpBd09qRT06MQ=="
    links = {kinds(doc)[i]: [(lk.get("rel"), lk.get("href")) for lk in e.findall(f"{A}link")]
             for i, e in enumerate(doc.iter(f"{A}entry"))}
    assert links["UsagePoint"] == [("up", up), ("self", f"{up}/5391320451"),
                                   ("related", f"{up}/5391320451/MeterReading"),
                                   ("related", f"{up}/5391320451/UsageSummary"),
                                   ("related", f"{R}/LocalTimeParameters/1")]
    assert links["MeterReading"] == [("up", f"{up}/5391320451/MeterReading"), ("self", mr),
                                     ("related", f"{mr}/IntervalBlock"),
                                     ("related", f"{R}/ReadingType/NzI6bnVsbDozNjAwOjE="),
                                     ("related", f"{R}/LocalTimeParameters/1")]
    start = int(day_bounds(date(2026, 10, 3))[0])
    assert start == 1791010800  # 2026-10-03 00:00 PDT
    assert links["IntervalBlock"] == [("up", f"{mr}/IntervalBlock"), ("self", f"{mr}/IntervalBlock/{start}")]
    block = entries_of(doc, "IntervalBlock")[0]
    assert block.findtext(f"{A}title") == f"IntervalBlock_{start}"
    assert entries_of(doc, "MeterReading")[0].find(f"{A}content")[0].tag == f"{E}MeterReading"
    assert len(entries_of(doc, "MeterReading")[0].find(f"{A}content")[0]) == 0


def test_reading_type_content_per_stream() -> None:
    def rt(profile: str, **extra) -> dict[str, dict[str, str]]:
        doc = etree.fromstring(build([UsagePointRequest("1", sa(profile, **extra),
                                                        *window(date(2026, 1, 5), date(2026, 3, 5)))]))
        out = {}
        for e in entries_of(doc, "ReadingType"):
            out[self_href(e).rsplit("/", 1)[1]] = {etree.QName(c).localname: c.text for c in e.find(f"{A}content")[0]}
        return out

    hourly = rt("residential_hourly")
    assert hourly["NzI6bnVsbDozNjAwOjE="]["intervalLength"] == "3600"
    assert hourly["NzI6bnVsbDozNjAwOjE="]["measuringPeriod"] == "7"
    assert hourly["NzI6bnVsbDpudWxsOjQ="]["intervalLength"] == "0"  # FB_04 D062: every ReadingType has one
    assert list(hourly["NzI6bnVsbDozNjAwOjE="]) == [
        "accumulationBehaviour", "commodity", "dataQualifier", "defaultQuality", "flowDirection", "intervalLength",
        "kind", "powerOfTenMultiplier", "timeAttribute", "uom", "measuringPeriod"]
    quarter = rt("commercial_15min", voltage="primary")
    assert quarter["NzI6bnVsbDo5MDA6MQ=="]["measuringPeriod"] == "2"
    assert quarter["NzI6bnVsbDo5MDA6MQ=="]["commodity"] == "2"  # primary voltage
    gas = rt("gas_daily")["MTY5Om51bGw6ODY0MDA6MQ=="]
    assert (gas["uom"], gas["commodity"], gas["intervalLength"]) == ("169", "7", "86400")
    assert set(rt("solar_net_metered")) >= {"NzI6bnVsbDo5MDA6MQ==", "NzI6bnVsbDo5MDA6MTk="}
    assert "NzI6bnVsbDo5MDA6NA==" in rt("solar_net_metered", flow_directions=[4])


# --------------------------------------------------------------------------- blocks and readings
@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25), (date(2026, 6, 1), 24)])
def test_one_block_per_local_day_with_true_length(day: date, hours: int) -> None:
    doc = etree.fromstring(build([UsagePointRequest("1", sa(), *window(day, day))]))
    (block,) = entries_of(doc, "IntervalBlock")
    ib = block.find(f"{A}content")[0]
    start = int(ib.findtext(f"{E}interval/{E}start"))
    assert start == day_bounds(day)[0]
    assert int(ib.findtext(f"{E}interval/{E}duration")) == hours * 3600
    readings = ib.findall(f"{E}IntervalReading")
    assert len(readings) == hours
    assert [etree.QName(c).localname for c in readings[0]] == ["ReadingQuality", "timePeriod", "value"]
    starts = [int(r.findtext(f"{E}timePeriod/{E}start")) for r in readings]
    assert starts == list(range(start, start + hours * 3600, 3600))
    legacy = etree.fromstring(build([UsagePointRequest("1", sa(), *window(day, day))], dst_block_duration="86400"))
    assert legacy.findtext(f".//{E}interval/{E}duration") == "86400"


def test_blocks_per_meter_reading_quality_tou_and_kinds() -> None:
    two = etree.fromstring(build([UsagePointRequest("1", sa("commercial_15min", meters=2, mv90=True),
                                                    *window(date(2026, 4, 1), date(2026, 4, 3)))]))
    mr_ids = [self_href(e).rsplit("/", 1)[1] for e in entries_of(two, "MeterReading")]
    assert [base64.b64decode(m).decode().rsplit(":", 1)[1] for m in mr_ids] == ["1", "2"]
    assert len(entries_of(two, "IntervalBlock")) == 6
    assert {q.text for q in two.iter(f"{E}quality")} == {"14"}  # MV90
    assert {len(b.find(f"{A}content")[0].findall(f"{E}IntervalReading")) for b in entries_of(two, "IntervalBlock")} \
        == {96}
    tou = etree.fromstring(build([UsagePointRequest("1", sa(rate_schedule="E-TOU-C"),
                                                    *window(date(2026, 7, 1), date(2026, 7, 1)))]))
    codes = [int(t.text) for t in tou.iter(f"{E}tou")]
    assert codes == [1 if 16 <= h < 21 else 2 for h in range(24)]
    assert {q.text for q in tou.iter(f"{E}quality")} == {"17"}
    pim = entries_of(tou, "ProgramIdMappings")[0].find(f"{A}content")[0]
    assert [(m.findtext(f"{E}code"), m.findtext(f"{E}name")) for m in pim] == [
        ("1", "SPK"), ("2", "SOP"), ("3", "SPP"), ("4", "WPK"), ("5", "WPP"), ("6", "WOP"), ("7", "MPK"),
        ("8", "MOP"), ("9", "MXO")]
    gas = etree.fromstring(build([UsagePointRequest("1", sa("gas_daily"), *window(date(2026, 1, 1),
                                                                                  date(2026, 1, 3)))]))
    assert not list(gas.iter(f"{E}tou")) and not entries_of(gas, "ProgramIdMappings")
    assert gas.findtext(f".//{E}ServiceCategory/{E}kind") == "1"
    assert tou.findtext(f".//{E}ServiceCategory/{E}kind") == "0"
    assert [len(b.find(f"{A}content")[0].findall(f"{E}IntervalReading")) for b in entries_of(gas, "IntervalBlock")] \
        == [1, 1, 1]


def test_non_interval_sa_has_summaries_only() -> None:
    doc = etree.fromstring(build([UsagePointRequest("1", sa("non_interval"), *window(date(2026, 1, 1),
                                                                                     date(2026, 6, 30)))]))
    assert squeeze(kinds(doc)) == ["LocalTimeParameters", "ReadingType", "UsagePoint", "UsageSummary"]
    assert len(entries_of(doc, "UsageSummary")) >= 5


def test_usage_summary_gating_and_totals_match_the_feed_intervals() -> None:
    model = sa("residential_hourly", rate_schedule="E-TOU-C", read_cycle="A")
    first, last = date(2026, 5, 1), date(2026, 5, 31)
    full = etree.fromstring(build([UsagePointRequest("1", model, *window(first, last), program_enrollment=True)]))
    (summary,) = [e.find(f"{A}content")[0] for e in entries_of(full, "UsageSummary")
                  if e.findtext(f"{A}title") == f"UsageSummary_{day_bounds(first)[0]}"]
    names = [etree.QName(c).localname for c in summary]
    assert squeeze(names) == ["billingPeriod", "billLastPeriod", "costAdditionalLastPeriod",
                              "costAdditionalDetailLastPeriod", "currency",
                              "overallConsumptionLastPeriod", "qualityOfReading", "statusTimeStamp", "commodity",
                              "tariffProfile", "readCycle"]
    amounts = [int(a.text) for a in summary.iterfind(f"{E}costAdditionalDetailLastPeriod/{E}amount")]
    assert int(summary.findtext(f"{E}billLastPeriod")) == sum(amounts)
    feed_total = sum(int(v.text) for v in full.iter(f"{E}value") if v.getparent().tag == f"{E}IntervalReading")
    assert int(summary.findtext(f"{E}overallConsumptionLastPeriod/{E}value")) == feed_total
    assert summary.findtext(f"{E}overallConsumptionLastPeriod/{E}readingTypeRef") == \
        f"{R}/ReadingType/NzI6bnVsbDpudWxsOjQ="
    assert (summary.findtext(f"{E}tariffProfile"), summary.findtext(f"{E}readCycle")) == ("E-TOU-C", "A")
    assert full.findtext(f".//{E}serviceDeliveryPoint/{E}tariffProfile") == "E-TOU-C"
    plain = etree.fromstring(build([UsagePointRequest("1", model, *window(first, last), billing=False)]))
    summary = entries_of(plain, "UsageSummary")[0].find(f"{A}content")[0]
    # costAdditionalLastPeriod (always 0) stays for FB_16 test D093; no other money element does.
    assert [etree.QName(c).localname for c in summary] == [
        "billingPeriod", "costAdditionalLastPeriod", "overallConsumptionLastPeriod", "qualityOfReading",
        "statusTimeStamp", "commodity"]
    assert summary.findtext(f"{E}costAdditionalLastPeriod") == "0"
    assert plain.find(f".//{E}serviceDeliveryPoint") is None
    usage_off = etree.fromstring(build([UsagePointRequest("1", model, *window(first, last), usage=False)]))
    assert squeeze(kinds(usage_off)) == ["LocalTimeParameters", "ReadingType", "UsagePoint", "UsageSummary"]


def test_summaries_appear_only_once_billed() -> None:
    model = sa("residential_hourly", read_cycle="A")
    june = window(date(2026, 6, 1), date(2026, 6, 30))
    closes = day_bounds(date(2026, 7, 1))[0]
    before = etree.fromstring(build([UsagePointRequest("1", model, *june)], now=closes + 3600))
    after = etree.fromstring(build([UsagePointRequest("1", model, *june)], now=closes + 86400))
    assert [e.findtext(f"{A}title") for e in entries_of(after, "UsageSummary")][-1] == \
        f"UsageSummary_{day_bounds(date(2026, 6, 1))[0]}"
    assert len(entries_of(after, "UsageSummary")) == len(entries_of(before, "UsageSummary")) + 1


def test_feed_orders_usage_points_and_emits_shared_reading_types_once() -> None:
    a = UsagePointRequest("20", sa(), *window(date(2026, 2, 1), date(2026, 2, 1)))
    other = ServiceAgreementModel.from_dict({"usage_point_id": "1111111111", "sa_start": "2025-01-01"})
    b = UsagePointRequest("3", other, *window(date(2026, 2, 1), date(2026, 2, 1)))
    doc = etree.fromstring(build([a, b]))
    ups = [self_href(e).rsplit("/", 1)[1] for e in entries_of(doc, "UsagePoint")]
    assert ups == ["1111111111", "5391320451"]  # subscription 3 before 20 (numeric order)
    rts = [self_href(e) for e in entries_of(doc, "ReadingType")]
    assert len(rts) == len(set(rts))


# --------------------------------------------------------------------------- determinism, hooks, streaming
def test_reruns_are_byte_identical_and_feed_id_is_fresh_unless_given() -> None:
    req = [UsagePointRequest("1", sa("solar_net_metered"), *window(date(2026, 3, 7), date(2026, 3, 9)))]
    assert build(req) == build(req)
    now = 1_790_000_000.0
    one = b"".join(usage_feed(req, resource_base=R, self_href=SELF, now=now))
    two = b"".join(usage_feed(req, resource_base=R, self_href=SELF, now=now))
    id_one, id_two = (etree.fromstring(x).findtext(f"{A}id") for x in (one, two))
    assert id_one != id_two and uuid.UUID(id_one).version == 4
    assert one.replace(id_one.encode(), b"") == two.replace(id_two.encode(), b"")


def test_days_filter_and_entry_times_hook() -> None:
    model = sa()
    d2 = day_bounds(date(2026, 5, 2))[0]
    corrected = 1_780_000_000.5
    req = UsagePointRequest("1", model, *window(date(2026, 5, 1), date(2026, 5, 3)), days={d2},
                            include_usage_summaries=False)
    doc = etree.fromstring(build([req], entry_times=lambda href: (corrected, corrected) if href.endswith(
        f"/IntervalBlock/{d2}") else None))
    (block,) = entries_of(doc, "IntervalBlock")
    assert block.findtext(f"{A}title") == f"IntervalBlock_{d2}"
    assert block.findtext(f"{A}updated") == "2026-05-28T20:26:40.500Z"


def test_feed_streams_in_bounded_chunks_with_flat_memory() -> None:
    model = sa("commercial_15min", sa_start="2020-01-01")

    def peak(days: int) -> tuple[int, int]:
        start = day_bounds(date(2022, 1, 1))[0]
        req = UsagePointRequest("1", model, start, start + days * 86400, include_usage_summaries=False)
        tracemalloc.start()
        largest = total = 0
        for chunk in usage_feed([req], resource_base=R, self_href=SELF, now=2e9, chunk_size=32768):
            assert isinstance(chunk, bytes)
            largest = max(largest, len(chunk))
            total += len(chunk)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert largest < 32768 + 40_000  # one block entry past the target at most
        return top, total

    peak(400)  # warm the bounded caches (weather, calibration, templates) so only streaming state is measured
    small, small_bytes = peak(20)
    big, big_bytes = peak(400)
    assert big_bytes > 19 * small_bytes
    # 20x the output, about the same peak: only bounded caches (<= 64 channel-days) and one chunk are live
    assert big < 1.5 * small + 300_000
    assert big < big_bytes / 15


# --------------------------------------------------------------------------- other resources
def test_authorization_content_order_and_indefinite_end() -> None:
    a = AuthorizationValues("4095251", 1719853925, INDEFINITE_END, 1625245925, 1, SCOPE, f"{R}/Subscription/4095251",
                            customer_resource_uri=f"{R}/Batch/RetailCustomer/4095251")
    doc = etree.fromstring(authorization_entry(a, resource_base=R, published=1719853925, updated=1719853925,
                                               root=True))
    content = doc.find(f"{A}content")[0]
    assert [etree.QName(c).localname for c in content] == [
        "authorizedPeriod", "publishedPeriod", "status", "expires_at", "scope", "token_type", "resourceURI",
        "authorizationURI", "customerResourceURI"]
    assert content.findtext(f"{E}expires_at") == "253402300799"
    assert content.findtext(f"{E}authorizationURI") == f"{R}/Authorization/4095251"
    assert doc.find(f"{A}title") is None
    assert doc.findtext(f"{A}published") == "2024-07-01T17:12:05.000Z"
    fixed = AuthorizationValues("7", 1719853925, 1798790400, 1719853925, 0, SCOPE, f"{R}/Subscription/7")
    content = etree.fromstring(authorization_entry(fixed, resource_base=R, published=1, updated=1, root=True))
    assert content.findtext(f".//{E}authorizedPeriod/{E}duration") == str(1798790400 - 1719853925)
    assert content.find(f".//{E}customerResourceURI") is None


def test_application_information_has_31_elements_in_order() -> None:
    doc = etree.fromstring(application_information_entry(APPLICATION_INFO, application_information_id="7000123",
                                                         resource_base=R, published=1, updated=1))
    content = doc.find(f"{A}content")[0]
    assert content.tag == f"{E}ApplicationInformation"
    assert [etree.QName(c).localname for c in content] == list(APPLICATION_INFORMATION_ELEMENTS)
    assert len(content) == 31
    values = {etree.QName(c).localname: c.text for c in content}
    assert values["dataCustodianScopeSelectionScreenURI"] == "https://sharemydata.pge.com/myAuthorization/?clientId=00123"
    assert values["dataCustodianBulkRequestURI"] == f"{R}/Batch/Bulk/00123"
    assert [c.text for c in content if c.tag == f"{E}grant_types"] == [
        "authorization_code", "client_credentials", "refresh_token"]
    assert doc.findtext(f"{A}title") == "Acme Energy"
    with pytest.raises(ValueError, match="client_secret"):
        application_information_entry({k: v for k, v in APPLICATION_INFO.items() if k != "client_secret"},
                                      application_information_id="7000123", resource_base=R, published=1, updated=1)


def test_service_status_and_batch_list() -> None:
    assert service_status_xml() == (
        b'<ServiceStatus xmlns="http://naesb.org/espi" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="http://naesb.org/espi espiDerived.xsd"><currentStatus>1</currentStatus></ServiceStatus>')
    body = batch_list_xml([f"{R}/Batch/Bulk/1?correlationID=a&x=1", f"{R}/Authorization/2"])
    assert b"correlationID=a&amp;x=1" in body
    doc = etree.fromstring(body)
    assert [r.text for r in doc] == [f"{R}/Batch/Bulk/1?correlationID=a&x=1", f"{R}/Authorization/2"]


def test_customer_feed_gating_links_and_escaping() -> None:
    def build_customer(groups) -> etree._Element:
        return etree.fromstring(b"".join(customer_feed([CustomerFeedItem("92772", CUSTOMER, groups)],
                                                       resource_base=R, self_href=f"{R}/Batch/RetailCustomer/92772",
                                                       now=1.7e9, feed_id=FEED_ID)))

    full = build_customer(("Basic", "Account", "ProgramEnrollment"))
    assert full.findtext(f"{A}title") == "Green Button Customer Feed"
    kinds_full = squeeze(kinds(full))
    assert kinds_full == ["Customer", "CustomerAccount", "CustomerAgreement", "ServiceLocation", "Meter",
                          "DemandResponseProgram", "CustomerAgreement", "ServiceLocation", "Meter"]
    assert all(e.find(f"{A}content")[0].tag.startswith(C) for e in full.iter(f"{A}entry"))
    assert full.findtext(f".//{C}Customer/{C}name") == "María O'Brien & Söhne <Trust>"
    agreements = [e for e in full.iter(f"{A}entry") if e.find(f"{A}content")[0].tag == f"{C}CustomerAgreement"]
    # The agreement entry is keyed by its agreement key, never the UsagePoint id (issue 20, spec 7.12).
    keys = [self_href(e).rsplit("/", 1)[1] for e in agreements]
    assert all(len(k) == 10 and k.isdigit() and k not in ("5391320451", "5391320452") for k in keys)
    assert agreements[0].findtext(f".//{C}name") == "0098765432"
    assert agreements[0].findtext(f".//{C}type") == "RES"
    assert agreements[0].findtext(f".//{C}signDate") == "1577865600"
    location = [e for e in full.iter(f"{A}entry") if e.find(f"{A}content")[0].tag == f"{C}ServiceLocation"][0]
    related = [lk.get("href") for lk in location.findall(f"{A}link") if lk.get("rel") == "related"]
    # The address-bearing location names the UsagePoint id; its meters hang under the agreement key.
    assert "/CustomerAgreement/5391320451/ServiceLocation/" in self_href(location)
    location_id = self_href(location).rsplit("/", 1)[1]
    assert related == [f"{self_href(agreements[0])}/ServiceLocation/{location_id}/EndDevice"]
    assert location.findtext(f".//{C}mainAddress/{C}streetDetail/{C}addressGeneral") == "12 Elm St"
    assert full.findtext(f".//{C}DemandResponseProgram/{C}programName") == "SmartAC"

    basic = build_customer(("Basic",))
    assert squeeze(kinds(basic)) == ["Customer", "CustomerAccount", "CustomerAgreement", "ServiceLocation",
                                     "CustomerAgreement", "ServiceLocation"]
    assert basic.findtext(f".//{C}CustomerAgreement/{C}name") == "******5432"
    assert basic.find(f".//{C}signDate") is None and basic.find(f".//{C}CustomerAccount/{C}name") is None
    assert b"1234567890" not in etree.tostring(basic)  # neither account number nor its id leak
    assert basic.findtext(f".//{C}Customer/{C}name") == "María O'Brien & Söhne <Trust>"
    account = build_customer(("Account",))
    assert account.find(f".//{C}Customer/{C}name") is None
    assert account.find(f".//{C}mainAddress") is None
    assert account.findtext(f".//{C}CustomerAccount/{C}name") == "1234567890"


def test_text_that_xml_cannot_carry_is_replaced_not_emitted() -> None:
    from mock_custodian.espi.customer import CustomerInfo

    odd = CustomerInfo("1", "Bad\x01Name & \"quotes\"", CUSTOMER.accounts)
    body = b"".join(customer_feed([CustomerFeedItem("1", odd, ("Basic",))], resource_base=R, self_href=R, now=1))
    assert etree.fromstring(body).findtext(f".//{C}Customer/{C}name") == "Bad\ufffdName & \"quotes\""


def test_usage_summary_money_is_in_hundred_thousandths() -> None:
    model = sa("residential_hourly", read_cycle="A")
    bill = next(bills(model, *window(date(2026, 3, 1), date(2026, 3, 31)), now=2e9))
    charge = [i for i in bill.line_items if i.item_kind == 4][0]
    days = len(list(iter_local_days(bill.start, bill.end)))
    assert days == 31 and bill.end - bill.start == 31 * 86400 - 3600  # March holds the 23-hour day
    assert charge.amount == days * 79_000  # $0.79 a day


def test_entry_ids_of_a_shared_prefix_are_the_uuid5_of_each_href() -> None:
    """The IntervalBlock writer's ids (prefix hashed once) equal ``entry_id`` and Python's own UUIDv5."""
    import uuid

    from mock_custodian.espi.atom import EntryIds, entry_id

    prefix = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Subscription/7/UsagePoint/9/MeterReading/1/IntervalBlock/"
    ids = EntryIds(prefix)
    for key in ("1767254400", "0", "x%2Fy"):
        assert ids(key) == entry_id(prefix + key) == str(uuid.uuid5(uuid.NAMESPACE_URL, prefix + key))
