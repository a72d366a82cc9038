"""ESPI resource API over real TLS (issue 5; spec 2, 6.1-6.3, 6.8, 8; checklist 2-6, 88-95, 111-115, 120-150)."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path

import pytest
import requests
import support
from lxml import etree
from sqlalchemy import select
from support import assert_valid_espi, inprocess

from mock_custodian import testing
from mock_custodian.clock import PACIFIC, ClockState
from mock_custodian.scenario.parse import DEFAULT_DEMO
from mock_custodian.store.models import ServiceAgreement
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.readings import iter_day_readings

RES = "/GreenButtonConnect/espi/1_1/resource"
NS = {"a": "http://www.w3.org/2005/Atom", "e": "http://naesb.org/espi", "c": "http://naesb.org/espi/customer"}
GROUPS = ("Usage", "Billing", "Basic", "Account", "ProgramEnrollment")
# A fixed simulated "now" so windows, bills and publication are reproducible: 2026-11-10 10:00 Pacific.
NOW = dt.datetime(2026, 11, 10, 10, tzinfo=PACIFIC).timestamp()


def local_midnight(y: int, m: int, d: int) -> int:
    return int(dt.datetime(y, m, d, tzinfo=PACIFIC).timestamp())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Demo world plus NewCo approved (a second Standard third party), clock frozen at NOW."""
    folder = tmp_path_factory.mktemp("resources")
    scenario = folder / "scenario.yaml"
    scenario.write_text(DEFAULT_DEMO.read_text().replace("    status: accepted\n", "    status: approved\n"))
    srv = inprocess.start(folder / "data", scenario=scenario)
    srv.clock.freeze(NOW)
    yield srv
    srv.stop()


class Client:
    """A third party's HTTP client: its certificate, and a bearer token."""

    def __init__(self, server: testing.RunningServer, client_id: str, token: str | None) -> None:
        self.server, self.client_id, self.token = server, client_id, token

    def get(self, path: str, method: str = "GET", **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(method, f"{self.server.api_base_url}{RES}{path}", params=params, headers=headers,
                                cert=self.server.cert(self.client_id), verify=self.server.ca_bundle, timeout=60)


def cat(server: testing.RunningServer, client_id: str) -> Client:
    tp = server.third_party(client_id)
    response = requests.post(f"{server.api_base_url}/datacustodian/oauth/v2/token",
                             params={"grant_type": "client_credentials"}, auth=(client_id, tp["client_secret"]),
                             cert=server.cert(client_id), verify=server.ca_bundle, timeout=30)
    assert response.status_code == 200, response.text
    return Client(server, client_id, response.json()["client_access_token"])


def authorize(server: testing.RunningServer, customer: str, client_id: str = "00101", groups=GROUPS,  # noqa: ANN001
              sas: list[str] | None = None, via: str = "control") -> tuple[Client, str]:
    result = server.authorize(customer, client_id, service_agreements=sas, groups=list(groups), via=via)
    return Client(server, client_id, result["token"]["access_token"]), str(result["authorization_id"])


def xml(response: requests.Response) -> etree._Element:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return etree.fromstring(response.content)


def validate(tmp_path: Path, *responses: requests.Response) -> None:
    assert_valid_espi(*(response.content for response in responses))


def usage_point_ids(client: Client, sub: str) -> list[str]:
    doc = xml(client.get(f"/Subscription/{sub}/UsagePoint"))
    return [h.rsplit("/", 1)[1] for h in doc.xpath("//a:entry/a:link[@rel='self']/@href", namespaces=NS)]


def meter_reading_ids(client: Client, sub: str, up: str) -> list[str]:
    doc = xml(client.get(f"/Subscription/{sub}/UsagePoint/{up}/MeterReading"))
    return [h.rsplit("/", 1)[1] for h in doc.xpath("//a:entry/a:link[@rel='self']/@href", namespaces=NS)]


def sa_model(server: testing.RunningServer, key: str) -> tuple[ServiceAgreementModel, str]:
    database = support.database(server)
    with database.session() as db:
        sa = db.execute(select(ServiceAgreement).where(ServiceAgreement.key == key)).scalar_one()
        return ServiceAgreementModel.from_dict(sa.profile), sa.sa_number


# --------------------------------------------------------------------------------------------------


def test_tree_with_defaults_and_every_document_validates(server: testing.RunningServer, tmp_path: Path) -> None:
    client, sub = authorize(server, "rivera")
    ups = usage_point_ids(client, sub)
    assert len(ups) == 2 and all(len(u) == 10 and u.isdigit() for u in ups)
    electric, electric_sa = sa_model(server, "rivera-electric")
    assert electric.usage_point_id in ups and electric_sa not in ups  # UsagePointID is not the SA number
    up = electric.usage_point_id
    assert meter_reading_ids(client, sub, up) == ["TnpJNmJuVnNiRG96TmpBd09qRT06MQ=="]  # hourly, meter 1
    mr = "TnpJNmJuVnNiRG96TmpBd09qRT06MQ=="
    # No dates: exactly the previous local day (T-1), one block of 24 hourly readings.
    t1 = client.get(f"/Subscription/{sub}/UsagePoint/{up}/MeterReading/{mr}/IntervalBlock")
    doc = xml(t1)
    starts = doc.xpath("//e:IntervalBlock/e:interval/e:start/text()", namespaces=NS)
    assert starts == [str(local_midnight(2026, 11, 9))]
    assert len(doc.xpath("//e:IntervalReading", namespaces=NS)) == 24
    assert doc.xpath("//a:entry/a:title/text()", namespaces=NS) == [f"IntervalBlock_{starts[0]}"]
    block = client.get(f"/Subscription/{sub}/UsagePoint/{up}/MeterReading/{mr}/IntervalBlock/{starts[0]}/")
    assert etree.fromstring(block.content).tag == "{http://www.w3.org/2005/Atom}entry"
    summaries = client.get(f"/Subscription/{sub}/UsagePoint/{up}/UsageSummary",
                           **{"published-min": "2026-07-01T07:00:00Z", "published-max": "2026-11-01T07:00:00Z"})
    assert len(xml(summaries).xpath("//e:UsageSummary", namespaces=NS)) >= 3
    batch = client.get(f"/Batch/Subscription/{sub}/UsagePoint/{up}",
                       **{"published-min": "2026-10-01T07:00:00Z", "published-max": "2026-11-01T07:00:00Z"})
    kinds = [c.tag.split("}")[1] for c in xml(batch).xpath("//a:entry/a:content/*", namespaces=NS)]
    assert kinds[:4] == ["LocalTimeParameters", "ReadingType", "ReadingType", "UsagePoint"]
    assert kinds[4] == "MeterReading" and kinds[5] == "IntervalBlock" and kinds[-1] == "ProgramIdMappings"
    assert "UsageSummary" in kinds
    assert xml(batch).xpath("/a:feed/a:title/text()", namespaces=NS) == ["Green Button Usage Feed"]
    assert xml(batch).xpath("/a:feed/a:link[@rel='self']/@href", namespaces=NS) == [
        f"{server.api_base_url}{RES}/Batch/Subscription/{sub}/UsagePoint/{up}"]
    customer = client.get(f"/Batch/RetailCustomer/{sub}")
    assert xml(customer).xpath("/a:feed/a:title/text()", namespaces=NS) == ["Green Button Customer Feed"]
    admin = cat(server, "00101")
    tree = f"/Subscription/{sub}/UsagePoint"
    validate(tmp_path, client.get(tree), client.get(f"{tree}/{up}"), client.get(f"{tree}/{up}/MeterReading"),
             client.get(f"{tree}/{up}/MeterReading/{mr}"), t1, block, summaries, batch, customer,
             client.get("/ReadingType"), client.get("/ReadingType/NzI6bnVsbDozNjAwOjE="),
             client.get("/LocalTimeParameters"), client.get("/LocalTimeParameters/1"),
             client.get("/ProgramIdMapping/1"), admin.get("/Authorization"), admin.get(f"/Authorization/{sub}"))


def test_a_month_of_15_minute_data_matches_the_data_engine(server: testing.RunningServer) -> None:
    client, sub = authorize(server, "harbor", sas=["harbor-store"])
    model, _ = sa_model(server, "harbor-store")
    mr = meter_reading_ids(client, sub, model.usage_point_id)[0]
    start, end = local_midnight(2026, 10, 1), local_midnight(2026, 11, 1)
    response = client.get(f"/Subscription/{sub}/UsagePoint/{model.usage_point_id}/MeterReading/{mr}/IntervalBlock",
                          **{"published-min": str(start), "published-max": str(end)})
    doc = xml(response)
    served = [int(v) for v in doc.xpath("//e:IntervalReading/e:value/text()", namespaces=NS)]
    expected = [v for block in iter_day_readings(model, 1, 1, start, end) for v in block.values]
    assert len(served) == 31 * 96  # October 2026 has no DST change (fall-back is 2026-11-01)
    assert served == expected


def test_dates_window_rules(server: testing.RunningServer) -> None:
    client, sub = authorize(server, "okafor", sas=["okafor-solar"])
    model, _ = sa_model(server, "okafor-solar")
    base = f"/Subscription/{sub}/UsagePoint/{model.usage_point_id}/MeterReading"
    mr = meter_reading_ids(client, sub, model.usage_point_id)[0]
    path = f"{base}/{mr}/IntervalBlock"
    zulu = client.get(path, **{"published-min": "2026-10-05T07:00:00Z", "published-max": "2026-10-06T07:00:00Z"})
    epoch = client.get(path, **{"publishedmin": str(local_midnight(2026, 10, 5)),
                                "published-max": str(local_midnight(2026, 10, 6))})
    strip = re.compile(rb"<ns1:id>[^<]*</ns1:id>|<ns1:updated>[^<]*</ns1:updated>")
    assert strip.sub(b"", zulu.content) == strip.sub(b"", epoch.content)
    bad = client.get(path, **{"published-min": "2026-10-05T00:00:00-07:00"})
    assert bad.status_code == 400 and "published-min" in bad.json()["error_description"]
    reversed_ = client.get(path, **{"published-min": "1791183600", "published-max": "1791183600"})
    assert reversed_.status_code == 400
    # Nothing published yet for today: 204 with an empty body.
    today = client.get(path, **{"published-min": str(local_midnight(2026, 11, 10))})
    assert today.status_code == 204 and today.content == b""
    # A window reaching before the history start is trimmed silently to whole days from it.
    early = xml(client.get(path, **{"published-min": "1262304000", "published-max": str(local_midnight(2023, 12, 1))}))
    first = int(early.xpath("//e:IntervalBlock/e:interval/e:start/text()", namespaces=NS)[0])
    history_start = NOW - 36 * 365 * 86400 // 12
    assert history_start <= first < history_start + 86400
    # updated-min/updated-max select by the Atom updated time: day D's block is updated when it is published.
    published_oct5 = dt.datetime(2026, 10, 6, 6, tzinfo=PACIFIC).timestamp()
    by_updated = xml(client.get(path, **{"updated-min": str(int(published_oct5)),
                                         "updated-max": str(int(published_oct5) + 1)}))
    assert by_updated.xpath("//e:IntervalBlock/e:interval/e:start/text()", namespaces=NS) == [
        str(local_midnight(2026, 10, 5))]


def _expect(groups: set[str]) -> dict[str, int]:
    usage, billing = "Usage" in groups, "Billing" in groups
    customer = bool(groups & {"Basic", "Account", "ProgramEnrollment"})
    return {
        "usage_points": 200 if usage or billing else 403,
        "meter_readings": 200 if usage else 403,
        "interval_blocks": 200 if usage else 403,
        "usage_summaries": 200 if usage or billing else 403,
        "batch": 200 if usage or billing else 403,
        "retail_customer": 200 if customer else 403,
        "dr": 204 if "ProgramEnrollment" in groups else 403,
    }


def test_scope_matrix_every_group_combination(server: testing.RunningServer) -> None:
    """Each of the 31 non-empty group sets against every data endpoint gives exactly what §6.8 says."""
    model, sa_number = sa_model(server, "rivera-electric")
    up = model.usage_point_id
    window = {"published-min": "2026-08-01T07:00:00Z", "published-max": "2026-11-01T07:00:00Z"}
    for size in range(1, 6):
        for combo in itertools.combinations(GROUPS, size):
            groups = set(combo)
            client, sub = authorize(server, "rivera", groups=combo, sas=["rivera-electric"])
            mr = "TnpJNmJuVnNiRG96TmpBd09qRT06MQ=="
            got = {
                "usage_points": client.get(f"/Subscription/{sub}/UsagePoint"),
                "meter_readings": client.get(f"/Subscription/{sub}/UsagePoint/{up}/MeterReading"),
                "interval_blocks": client.get(f"/Subscription/{sub}/UsagePoint/{up}/MeterReading/{mr}/IntervalBlock"),
                "usage_summaries": client.get(f"/Subscription/{sub}/UsagePoint/{up}/UsageSummary", **window),
                "batch": client.get(f"/Batch/Subscription/{sub}/UsagePoint/{up}", **window),
                "retail_customer": client.get(f"/Batch/RetailCustomer/{sub}"),
                "dr": client.get(f"/Batch/RetailDRPrgInfo/{sub}"),
            }
            assert {k: r.status_code for k, r in got.items()} == _expect(groups), combo
            for key, response in got.items():
                if response.status_code == 403:
                    assert response.json()["error"] == "insufficient_scope", (combo, key)
            if got["usage_summaries"].status_code == 200:
                money = b"billLastPeriod" in got["usage_summaries"].content
                assert money == ("Billing" in groups), combo
                assert (b"tariffProfile" in got["usage_summaries"].content) == ("Billing" in groups), combo
            if got["batch"].status_code == 200:
                assert (b"<ns0:IntervalBlock" in got["batch"].content) == ("Usage" in groups), combo
            if got["usage_points"].status_code == 200:
                assert (b"tariffProfile" in got["usage_points"].content) == ("ProgramEnrollment" in groups), combo
            if got["retail_customer"].status_code == 200:
                body = got["retail_customer"].content
                assert (b"Maria Rivera" in body) == ("Basic" in groups), combo
                assert (sa_number.encode() in body) == ("Account" in groups), combo
                if "Account" not in groups:
                    assert f"******{sa_number[-4:]}".encode() in body, combo


def test_isolation_between_third_parties_and_subscriptions(server: testing.RunningServer) -> None:
    a_client, a_sub = authorize(server, "okafor", "00101", sas=["okafor-solar"])
    b_client, b_sub = authorize(server, "harbor", "00104", groups=("Basic", "Usage"), sas=["harbor-sign"])
    for path in (f"/Subscription/{a_sub}/UsagePoint", f"/Batch/RetailCustomer/{a_sub}",
                 f"/Batch/Subscription/{a_sub}/UsagePoint/1234567890"):
        response = b_client.get(path)
        assert response.status_code == 403, path
    assert b_client.get("/Subscription/999999999/UsagePoint").status_code == 404
    # A usage point of another subscription, under one's own subscription id.
    other_up, _ = sa_model(server, "okafor-solar")
    assert b_client.get(f"/Subscription/{b_sub}/UsagePoint/{other_up.usage_point_id}").status_code == 403
    # Client B's certificate with client A's token.
    stolen = Client(server, "00104", a_client.token)
    assert stolen.get(f"/Subscription/{a_sub}/UsagePoint").status_code == 403
    # Authorization resources: another client's id is 403, an unknown one 404.
    b_cat = cat(server, "00104")
    assert b_cat.get(f"/Authorization/{a_sub}").status_code == 403
    assert b_cat.get("/Authorization/1").status_code == 404
    assert b_cat.get(f"/Authorization/{a_sub}", method="DELETE").status_code == 403
    # Token classes: a CAT on the subscription tree, an AT on the Authorization list.
    assert b_cat.get(f"/Subscription/{b_sub}/UsagePoint").json()["error"] == "insufficient_scope"
    assert a_client.get("/Authorization").status_code == 403
    # Missing bearer: 401.
    assert Client(server, "00101", None).get(f"/Subscription/{a_sub}/UsagePoint").status_code == 401


def test_authorization_resources_and_revocation(server: testing.RunningServer) -> None:
    client, sub = authorize(server, "jlee", "00101", groups=("Usage",))
    admin = cat(server, "00101")
    listing = xml(admin.get("/Authorization"))
    uris = listing.xpath("//e:Authorization/e:resourceURI/text()", namespaces=NS)
    base = f"{server.api_base_url}{RES}"
    assert uris[0] == f"{base}/Batch/Bulk/00101"
    assert uris[1].startswith(f"{base}/ApplicationInformation/")
    ids = [int(h.rsplit("/", 1)[1]) for h in listing.xpath("//a:entry/a:link[@rel='self']/@href", namespaces=NS)][2:]
    assert ids == sorted(ids) and int(sub) in ids
    entry = xml(admin.get(f"/Authorization/{sub}"))
    names = [c.tag.split("}")[1] for c in entry.xpath("//e:Authorization/*", namespaces=NS)]
    assert names == ["authorizedPeriod", "publishedPeriod", "status", "expires_at", "scope", "token_type",
                     "resourceURI", "authorizationURI", "customerResourceURI"]
    assert entry.xpath("//e:expires_at/text()", namespaces=NS) == ["253402300799"]
    assert entry.xpath("//e:status/text()", namespaces=NS) == ["1"]
    assert entry.xpath("//e:resourceURI/text()", namespaces=NS) == [f"{base}/Subscription/{sub}"]
    assert client.get(f"/Subscription/{sub}/UsagePoint").status_code == 200
    # PUT and POST are 405; DELETE of the bulk entry is 403.
    assert admin.get(f"/Authorization/{sub}", method="PUT").status_code == 405
    assert admin.get(f"/Authorization/{sub}", method="POST").status_code == 405
    bulk_id = listing.xpath("//a:entry/a:link[@rel='self']/@href", namespaces=NS)[0].rsplit("/", 1)[1]
    assert admin.get(f"/Authorization/{bulk_id}", method="DELETE").status_code == 403
    deleted = admin.get(f"/Authorization/{sub}", method="DELETE")
    assert deleted.status_code == 200 and deleted.content == b""
    assert admin.get(f"/Authorization/{sub}", method="DELETE").status_code == 200  # idempotent
    assert xml(admin.get(f"/Authorization/{sub}")).xpath("//e:status/text()", namespaces=NS) == ["0"]
    refused = client.get(f"/Subscription/{sub}/UsagePoint")
    assert refused.status_code == 403


def test_maintenance_answers_503_and_status_0(server: testing.RunningServer) -> None:
    client, sub = authorize(server, "okafor", "00101", sas=["okafor-solar"])
    assert server.control("POST", "/service-status", json={"current_status": 0}) == {"current_status": 0}
    try:
        admin = cat(server, "00101")
        status = admin.get("/ReadServiceStatus")
        assert status.status_code == 200 and "<currentStatus>0</currentStatus>" in status.text
        down = client.get(f"/Subscription/{sub}/UsagePoint")
        assert down.status_code == 503 and down.json() == {"error": "service_unavailable"}
    finally:
        server.control("POST", "/service-status", json={"current_status": 1})
    assert client.get(f"/Subscription/{sub}/UsagePoint").status_code == 200
    with pytest.raises(testing.ControlAPIError):
        server.control("POST", "/service-status", json={"current_status": 5})


def test_t2_default_window(tmp_path: Path) -> None:
    srv = inprocess.start(tmp_path / "d", settings={"default_window": "T-2"})
    try:
        support.database(srv).write_clock_state(ClockState(frozen_at=NOW))
        client, sub = authorize(srv, "rivera", sas=["rivera-electric"])
        model, _ = sa_model(srv, "rivera-electric")
        doc = xml(client.get(f"/Subscription/{sub}/UsagePoint/{model.usage_point_id}/MeterReading/"
                             "TnpJNmJuVnNiRG96TmpBd09qRT06MQ==/IntervalBlock"))
        assert doc.xpath("//e:IntervalBlock/e:interval/e:start/text()", namespaces=NS) == [
            str(local_midnight(2026, 11, 8))]
    finally:
        srv.stop()


def test_end_to_end_through_the_browser_consent_flow(server: testing.RunningServer) -> None:
    """Consent through the real pages -> token -> usage points -> a month of data equal to the engine's."""
    client, sub = authorize(server, "harbor", "00101", sas=["harbor-kitchen"], via="consent")
    model, _ = sa_model(server, "harbor-kitchen")
    assert usage_point_ids(client, sub) == [model.usage_point_id]
    mrs = meter_reading_ids(client, sub, model.usage_point_id)
    assert [m[-4:] for m in mrs] and len(mrs) == 2  # two meters: decoded ids end in :1 and :2
    start, end = local_midnight(2026, 9, 1), local_midnight(2026, 10, 1)
    for meter, mr in enumerate(mrs, 1):
        doc = xml(client.get(f"/Subscription/{sub}/UsagePoint/{model.usage_point_id}/MeterReading/{mr}/IntervalBlock",
                             **{"published-min": str(start), "published-max": str(end)}))
        served = [int(v) for v in doc.xpath("//e:IntervalReading/e:value/text()", namespaces=NS)]
        assert served == [v for b in iter_day_readings(model, meter, 1, start, end) for v in b.values]
