"""The catalog of edge-case customers (``--scenario catalog``, docs/catalog.md): one test per row.

Every row is driven only the way an integrator would: the consent pages (``fresh_catalog.authorize``), the
public API with the third party's certificate and tokens, and the simulated clock; the control API
only reads (customers, notifications) and moves time. The docs table is generated from the scenario's
``situation`` texts and ``ROWS`` below, and ``test_docs_table_is_current`` keeps it from drifting
(``MOCK_CUSTODIAN_WRITE_CATALOG_DOCS=1`` rewrites it). The app runs in-process; the rows a delivered
notification proves need the job worker and run end-to-end (tests/e2e/test_catalog_notifications.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree
from support import ROOT, inprocess
from support.catalog import (
    SUNNY,
    advance_to,
    api,
    authorization_status,
    client_token,
    day_window,
    fresh_token,
    local_midnight,
    sas,
    texts,
    usage,
    usage_points,
    z,
)
from support.customer_flow import Browser, exchange, redirect_params, token

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.scenario.parse import BUILTIN_SCENARIOS, account_check_digit, load_scenario_file

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
DOCS = ROOT / "docs" / "catalog.md"
NOTIFICATION_ROWS = ROOT / "tests" / "e2e" / "test_catalog_notifications.py"  # rows a delivered notification proves

# user name -> (when, on the simulated clock; what a client should see). "What happens" is the
# scenario's own ``situation`` text, so the table and /__sim/customers say the same thing.
ROWS: dict[str, tuple[str, str]] = {
    "gas-only": ("always", "one UsagePoint with ServiceCategory kind 1 (gas); IntervalBlocks of one 86400 s "
                 "reading a day"),
    "non-interval": ("always", "MeterReading feed without IntervalBlocks; no interval readings for any window; "
                     "UsageSummary bills present"),
    "solar-nem": ("always", "two ReadingTypes and MeterReadings per UsagePoint: flowDirection 1 (delivered) and 19 "
                  "(received)"),
    "two-meters": ("always", "two MeterReadings (one per meter) under one UsagePoint"),
    "mv90": ("always", "a day is published two days later than other meters: yesterday's window is 204 while a "
             "normal meter's is 200"),
    "fifty-sas": ("always", "50 UsagePoints in one subscription (one account)"),
    "new-service": ("load day until 06:00 next day (Pacific)", "204 for usage until the service's first day is "
                    "published the next morning; then 200 with readings"),
    "moves-out-3d": ("3 days after consent", "a BatchList notification naming the Authorization; the electric "
                     "UsagePoint leaves the subscription (gas stays)"),
    "gap-estimates-finals": ("load day; +1, +2 and +4 days 06:00", "the load day's readings: absent when "
                             "published (204), then estimated (quality 8) a day later, then final (quality 17) three "
                             "days after that, each with a new `updated`"),
    "corrected-last-month": ("load time + 1 day", "readings of the last 30 days come back with quality 7 and new "
                             "values; `updated-min` after the correction finds them"),
    "revised-bill": ("load time + 1 day", "the UsageSummary of the bill about 40 days back changes its totals and "
                     "`updated`"),
    "dst-week": ("move the clock across a DST change", "a 23-hour day (spring) or 25-hour day (autumn) of "
                 "hourly readings in that window"),
    "cancels-after-2h": ("consent + 2 h; next midnight", "a BatchList notification naming the Authorization at +2 h; "
                         "data 200 until local midnight, then 403 and Authorization status 0"),
    "removes-sa-next-day": ("consent + 1 day", "a notification; the gas UsagePoint leaves the subscription "
                            "(403), electric stays"),
    "shortens-to-tomorrow": ("consent + 1 h; end of the next day", "a notification; the Authorization's "
                             "`expires_at` becomes the end of the next day; afterwards 403"),
    "expires-tonight": ("load day, midnight (Pacific)", "Authorization status 1 today, 0 after midnight"),
    "guest": ("always", "My Energy sign-in refused; Guest Access tab: account number plus check digit and "
              "phone from /__sim/customers; the consent page asks for an e-mail address; the consent covers "
              "that account"),
    "demand-response": ("always", "RetailDRPrgInfo lists the SmartAC enrollment"),
    "unlinked-account": ("consent + 1 day", "a notification; the rental UsagePoint leaves the subscription, "
                         "the home one stays"),
    "on-hold": ("always", "400 unauthorized_client from the production token endpoint; ApplicationInformation "
                "status 3 (on hold)"),
    "expired-in-testing": ("always", "401 invalid_client from the token endpoint"),
    "receiver-down": ("each notification", "every notification POST answered 500, retried after 1, 5 and 15 "
                      "simulated minutes, then `failed` in /__sim/notifications"),
}
CATALOG_START = "<!-- catalog table: generated by tests/app/test_catalog.py -->"
CATALOG_END = "<!-- end of catalog table -->"


def catalog_entries() -> list[tuple[str, str, str]]:
    """(user name, kind, situation) of every catalog entry (the entries the demo does not have)."""
    catalog = load_scenario_file(BUILTIN_SCENARIOS["catalog"])
    demo = load_scenario_file(BUILTIN_SCENARIOS["demo"])
    known = {c.key for c in demo.customers} | {t.key for t in demo.third_parties}
    out = [(c.username, "customer", c.situation or "") for c in catalog.customers if c.key not in known]
    out += [(t.portal_username or t.key, f"third party {t.client_id}", t.situation or "")
            for t in catalog.third_parties if t.key not in known]
    return out


def docs_table() -> str:
    lines = ["| user name | what happens | when (simulated clock) | what a client sees |", "| --- | --- | --- | --- |"]
    for username, kind, situation in catalog_entries():
        when, sees = ROWS[username]
        who = f"`{username}`" + ("" if kind == "customer" else f" ({kind})")
        lines.append(f"| {who} | {situation} | {when} | {sees} |")
    return "\n".join(lines)


def test_every_catalog_entry_has_a_situation_a_row_and_a_test() -> None:
    entries = catalog_entries()
    assert [u for u, _, s in entries if not s] == []
    assert sorted(u for u, _, _ in entries) == sorted(ROWS)
    tests = {name for name in globals() if name.startswith("test_row_")}
    tests |= set(re.findall(r"^def (test_row_\w+)\(", NOTIFICATION_ROWS.read_text(), re.M))  # end-to-end rows
    assert sorted(tests) == sorted(f"test_row_{u.replace('-', '_')}" for u in ROWS)


def test_docs_table_is_current() -> None:
    text = DOCS.read_text()
    head, rest = text.split(CATALOG_START, 1)
    _, tail = rest.split(CATALOG_END, 1)
    wanted = f"{head}{CATALOG_START}\n{docs_table()}\n{CATALOG_END}{tail}"
    if os.environ.get("MOCK_CUSTODIAN_WRITE_CATALOG_DOCS") == "1":
        DOCS.write_text(wanted)
    assert text == wanted, "docs/catalog.md is stale: run with MOCK_CUSTODIAN_WRITE_CATALOG_DOCS=1"


def test_catalog_loads_in_under_a_second_beside_the_demo(tmp_path: Path) -> None:
    from mock_custodian.domain.world import load_world
    from mock_custodian.pki import DevPKI
    from mock_custodian.store.db import Database

    pki = DevPKI(tmp_path / "certs")
    pki.ensure([])
    database = Database(f"sqlite:///{tmp_path / 'world.db'}")
    database.create_schema()
    load_world(database, load_scenario_file("catalog"), pki)  # first load also issues the client certificates
    started = time.perf_counter()
    scenario = load_scenario_file("catalog")
    load_world(database, scenario, pki)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0  # generous for a loaded CI machine; measured ~0.4 s (docs/catalog.md)
    demo_keys = {c.key for c in load_scenario_file("demo").customers}
    assert demo_keys <= {c.key for c in scenario.customers}


# --- the server and helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    running = inprocess.start(tmp_path_factory.mktemp("catalog") / "data", scenario="catalog",
                            settings={"async_delay_s": 0})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh_catalog(server: testing.RunningServer) -> testing.RunningServer:
    """Each row starts from the freshly loaded catalog, at real time."""
    server.reset()
    return server


# --- service agreements ---------------------------------------------------------------------------------


def test_row_gas_only(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("gas-only", SUNNY)
    (sa,) = sas(fresh_catalog, "gas-only").values()
    response = usage(fresh_catalog, consent, sa["usage_point_id"], **day_window(local_midnight(fresh_catalog, -7), 3))
    assert response.status_code == 200, response.text
    assert "1" in texts(response.text, "kind")  # ServiceCategory kind 1: gas
    assert set(texts(response.text, "intervalLength")) == {"86400"}
    assert len(texts(response.text, "IntervalReading")) == 3


def test_row_non_interval(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("non-interval", SUNNY)
    (sa,) = sas(fresh_catalog, "non-interval").values()
    sub, bearer = consent["authorization_id"], consent["token"]["access_token"]
    readings = api(fresh_catalog, SUNNY, f"/Subscription/{sub}/UsagePoint/{sa['usage_point_id']}/MeterReading", bearer)
    assert readings.status_code == 200 and "IntervalBlock" not in readings.text
    blocks = usage(fresh_catalog, consent, sa["usage_point_id"], **day_window(local_midnight(fresh_catalog, -20), 10))
    assert texts(blocks.text, "IntervalReading") == [] if blocks.status_code == 200 else blocks.status_code == 204
    window = day_window(local_midnight(fresh_catalog, -120), 110)
    bills = api(fresh_catalog, SUNNY, f"/Subscription/{sub}/UsagePoint/{sa['usage_point_id']}/UsageSummary", bearer,
                **window)
    assert bills.status_code == 200 and len(texts(bills.text, "UsageSummary")) >= 2


def test_row_solar_nem(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("solar-nem", SUNNY)
    (sa,) = sas(fresh_catalog, "solar-nem").values()
    response = usage(fresh_catalog, consent, sa["usage_point_id"], **day_window(local_midnight(fresh_catalog, -3)))
    assert response.status_code == 200
    assert sorted(texts(response.text, "flowDirection")) == ["1", "19"]
    assert len(texts(response.text, "MeterReading")) == 2


def test_row_two_meters(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("two-meters", SUNNY)
    (sa,) = sas(fresh_catalog, "two-meters").values()
    assert sa["meters"] == 2
    response = api(fresh_catalog, SUNNY,
                   f"/Subscription/{consent['authorization_id']}/UsagePoint/{sa['usage_point_id']}"
                   "/MeterReading", consent["token"]["access_token"])
    assert response.status_code == 200
    assert len(texts(response.text, "MeterReading")) == 2


def test_row_mv90(fresh_catalog: testing.RunningServer) -> None:
    mv90 = fresh_catalog.authorize("mv90", SUNNY)
    normal = fresh_catalog.authorize("two-meters", SUNNY)
    yesterday = day_window(local_midnight(fresh_catalog, -1))
    noon = local_midnight(fresh_catalog) + dt.timedelta(hours=12)
    advance_to(fresh_catalog, noon)  # after 06:00: yesterday is published for every ordinary meter
    fresh_token(fresh_catalog, mv90)
    fresh_token(fresh_catalog, normal)
    (mv,) = sas(fresh_catalog, "mv90").values()
    (other,) = sas(fresh_catalog, "two-meters").values()
    assert usage(fresh_catalog, normal, other["usage_point_id"], **yesterday).status_code == 200
    assert usage(fresh_catalog, mv90, mv["usage_point_id"], **yesterday).status_code == 204
    advance_to(fresh_catalog, noon + dt.timedelta(days=2))
    fresh_token(fresh_catalog, mv90)
    published = usage(fresh_catalog, mv90, mv["usage_point_id"], **yesterday)
    assert published.status_code == 200 and len(texts(published.text, "IntervalReading")) >= 92


def test_row_fifty_sas(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("fifty-sas", SUNNY)
    assert len(usage_points(fresh_catalog, consent)) == 50
    assert usage_points(fresh_catalog, consent) == {sa["usage_point_id"] for sa in sas(fresh_catalog,
                                                                                       "fifty-sas").values()}


def test_row_new_service(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("new-service", SUNNY)
    (sa,) = sas(fresh_catalog, "new-service").values()
    today = day_window(local_midnight(fresh_catalog))
    assert usage(fresh_catalog, consent, sa["usage_point_id"], **today).status_code == 204
    advance_to(fresh_catalog, local_midnight(fresh_catalog, 1) + dt.timedelta(hours=7))
    fresh_token(fresh_catalog, consent)
    published = usage(fresh_catalog, consent, sa["usage_point_id"], **today)
    assert published.status_code == 200 and len(texts(published.text, "IntervalReading")) >= 23


# --- data -------------------------------------------------------------------------------------------------


def _qualities(xml: str) -> set[str]:
    """The qualities readings carry (none: every reading is of the default quality, 17)."""
    return set(texts(xml, "quality"))


def test_row_gap_estimates_finals(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("gap-estimates-finals", SUNNY)
    (sa,) = sas(fresh_catalog, "gap-estimates-finals").values()
    load_day = local_midnight(fresh_catalog)
    window = day_window(load_day)
    advance_to(fresh_catalog, local_midnight(fresh_catalog, 1) + dt.timedelta(hours=7))
    fresh_token(fresh_catalog, consent)
    assert usage(fresh_catalog, consent, sa["usage_point_id"], **window).status_code == 204  # published without the day
    advance_to(fresh_catalog, load_day + dt.timedelta(days=2, hours=7))
    fresh_token(fresh_catalog, consent)
    estimated = usage(fresh_catalog, consent, sa["usage_point_id"], **window)
    assert estimated.status_code == 200 and _qualities(estimated.text) == {"8"}
    advance_to(fresh_catalog, load_day + dt.timedelta(days=4, hours=7))
    fresh_token(fresh_catalog, consent)
    final = usage(fresh_catalog, consent, sa["usage_point_id"], **window)
    assert final.status_code == 200 and _qualities(final.text) in (set(), {"17"})
    assert texts(final.text, "value") != texts(estimated.text, "value")


def test_row_corrected_last_month(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("corrected-last-month", SUNNY)
    (sa,) = sas(fresh_catalog, "corrected-last-month").values()
    window = day_window(local_midnight(fresh_catalog, -10))
    before = usage(fresh_catalog, consent, sa["usage_point_id"], **window)
    assert before.status_code == 200 and "7" not in _qualities(before.text)
    correction_time = fresh_catalog.clock.now() + dt.timedelta(days=1)
    fresh_catalog.clock.advance(days=1, minutes=5)
    fresh_token(fresh_catalog, consent)
    after = usage(fresh_catalog, consent, sa["usage_point_id"], **window)
    assert _qualities(after.text) == {"7"}
    old = [float(v) for v in texts(before.text, "value")]
    new = [float(v) for v in texts(after.text, "value")]
    assert sum(new) == pytest.approx(sum(old) * 1.1, rel=0.02)
    found = usage(fresh_catalog, consent, sa["usage_point_id"],
                  **{"updated-min": z(correction_time - dt.timedelta(minutes=1))})
    assert found.status_code == 200 and len(texts(found.text, "IntervalBlock")) >= 28


def test_row_revised_bill(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("revised-bill", SUNNY)
    (sa,) = sas(fresh_catalog, "revised-bill").values()
    path = f"/Subscription/{consent['authorization_id']}/UsagePoint/{sa['usage_point_id']}/UsageSummary"
    window = day_window(local_midnight(fresh_catalog, -80), 75)

    def bills() -> dict[str, tuple[str, list[str]]]:
        response = api(fresh_catalog, SUNNY, path, consent["token"]["access_token"], **window)
        assert response.status_code == 200, response.text
        root = etree.fromstring(response.content)
        out = {}
        for entry in root.iter("{*}entry"):
            start = [e.text for e in entry.iter("{*}start")]
            values = [e.text for e in entry.iter("{*}value")]
            out[start[0] if start else ""] = (entry.find("{*}updated").text, values)
        return out

    before = bills()
    fresh_catalog.clock.advance(days=1, minutes=5)
    fresh_token(fresh_catalog, consent)
    after = bills()
    changed = [k for k in before if before[k] != after.get(k)]
    assert len(changed) == 1
    assert before[changed[0]][0] != after[changed[0]][0] and before[changed[0]][1] != after[changed[0]][1]


def _next_dst_change(after: dt.date) -> dt.date:
    day = after + dt.timedelta(days=1)
    for _ in range(400):
        start = dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), PACIFIC)
        if end.timestamp() - start.timestamp() != 86400:
            return day
        day += dt.timedelta(days=1)
    raise AssertionError("no DST change within 400 days")


def test_row_dst_week(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("dst-week", SUNNY)
    (sa,) = sas(fresh_catalog, "dst-week").values()
    change = _next_dst_change(fresh_catalog.clock.now().astimezone(PACIFIC).date())
    start = dt.datetime.combine(change, dt.time(), PACIFIC)
    end = dt.datetime.combine(change + dt.timedelta(days=1), dt.time(), PACIFIC)
    hours = int(end.timestamp() - start.timestamp()) // 3600
    advance_to(fresh_catalog, start + dt.timedelta(days=1,
                                                   hours=12))  # the default window (yesterday) is the change day
    fresh_token(fresh_catalog, consent)
    default = usage(fresh_catalog, consent, sa["usage_point_id"])
    assert default.status_code == 200
    assert hours in (23, 25) and len(texts(default.text, "IntervalReading")) == hours
    week = usage(fresh_catalog, consent, sa["usage_point_id"], **day_window(start - dt.timedelta(days=5), 6))
    assert len(texts(week.text, "IntervalReading")) == 5 * 24 + hours


# --- authorization ------------------------------------------------------------------------------------


def test_row_expires_tonight(fresh_catalog: testing.RunningServer) -> None:
    listing = api(fresh_catalog, SUNNY, "/Authorization", client_token(fresh_catalog, SUNNY))
    tonight = str(int(local_midnight(fresh_catalog, 1).timestamp()))
    root = etree.fromstring(listing.content)
    mine = [entry.find("{*}link[@rel='self']").get("href").rsplit("/", 1)[1] for entry in root.iter("{*}entry")
            if [e.text for e in entry.iter("{*}expires_at")] == [tonight]]
    assert len(mine) == 1, listing.text[:2000]
    mine = int(mine[0])
    assert authorization_status(fresh_catalog, mine) == "1"
    advance_to(fresh_catalog, local_midnight(fresh_catalog, 1) + dt.timedelta(minutes=1))
    assert authorization_status(fresh_catalog, mine) == "0"


def test_row_guest(fresh_catalog: testing.RunningServer) -> None:
    customer = next(c for c in fresh_catalog.customers() if c["username"] == "guest")
    account = customer["accounts"][0]["account_number"]
    browser = Browser(fresh_catalog)
    page = browser.start(SUNNY, state="g-1")
    refused = browser.sign_in(page, "guest", "demo")  # no online account: the user name cannot sign in
    assert "The user name or password is incorrect." in refused.text
    page = browser.start(SUNNY, state="g-1")
    page = browser.guest_sign_in(page, account + account_check_digit(account), customer["phone"])
    assert page.status_code == 200, page.text[:500]
    params = dict(redirect_params(browser.consent(page, email="gus.guest@example.com")))
    issued = exchange(fresh_catalog, SUNNY, params["authorization_code"])
    assert issued.status_code == 200, issued.text
    consent = {"authorization_id": int(issued.json()["resourceURI"].rsplit("/", 1)[1]), "token": issued.json()}
    assert usage_points(fresh_catalog, consent) == {customer["accounts"][0]["service_agreements"][0]["usage_point_id"]}


def test_row_demand_response(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("demand-response", SUNNY)
    response = api(fresh_catalog, SUNNY, f"/Batch/RetailDRPrgInfo/{consent['authorization_id']}",
                   consent["token"]["access_token"])
    assert response.status_code == 200 and "SmartAC" in response.text
    other = fresh_catalog.authorize("gas-only", SUNNY)
    empty = api(fresh_catalog, SUNNY, f"/Batch/RetailDRPrgInfo/{other['authorization_id']}",
                other["token"]["access_token"])
    assert "SmartAC" not in empty.text


# --- third parties ------------------------------------------------------------------------------------


def test_row_on_hold(fresh_catalog: testing.RunningServer) -> None:
    refused = token(fresh_catalog, "00121", grant_type="client_credentials")
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    tp = fresh_catalog.third_party("00121")
    info = requests.get(f"{fresh_catalog.api_base_url}{RESOURCE}/ApplicationInformation/"
                        f"{tp['application_information_id']}",
                        headers={"Authorization": f"Bearer {tp['registration_access_token']}"},
                        cert=fresh_catalog.cert("00121"), verify=fresh_catalog.ca_bundle, timeout=30)
    assert info.status_code == 200, info.text
    assert texts(info.text, "dataCustodianApplicationStatus") == ["3"]


def test_row_expired_in_testing(fresh_catalog: testing.RunningServer) -> None:
    refused = token(fresh_catalog, "00122", grant_type="client_credentials")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


# --- the general scenario features the catalog relies on (in-process) -------------------------------------

BASE = """
extends: demo
customers:
  - key: x
    situation: Something happens.
    accounts:
      - service_agreements:
          - {key: x-e, profile: residential_hourly, scale: 5000, rate_schedule: E-1, service_start: -1d}
"""


@pytest.mark.parametrize(("extra", "field", "message"), [
    ("timeline: [{event: cancel_authorization, customer: nobody, after_consent: 2h}]",
     "timeline[3].customer", "needs a known customer key, not 'nobody'"),
    ("timeline: [{event: cancel_authorization, customer: x, after_consent: 2h, at: +1d}]",
     "timeline[3].after_consent", "give either at or after_consent, not both"),
    ("timeline: [{event: edit_authorization, customer: x, after_consent: 1d}]",
     "timeline[3]", "edit_authorization needs remove_service_agreements or end_date"),
    ("timeline: [{event: edit_authorization, customer: x, remove_service_agreements: [rivera-gas]}]",
     "timeline[3].remove_service_agreements", "'rivera-gas' is not a service agreement of customer 'x'"),
    ("timeline: [{event: edit_authorization, customer: x, end_date: tomorrow}]",
     "timeline[3].end_date", "is not an end date"),
    ("timeline: [{event: gap, sa: x-e, start: -2d, end: -1d, after_consent: 1d}]",
     "timeline[3].after_consent", "only account and customer events can be anchored to a consent"),
    ("timeline: [{event: move_out, sa: x-e, customer: x}]",
     "timeline[3].customer", "move_out names its service agreement or account, not a customer"),
    ("authorizations: [{third_party: sunny, customer: x, ends_at: +1d, ends_on: +1d}]",
     "authorizations[2].ends_on", "give either ends_at or ends_on, not both"),
])
def test_new_scenario_fields_report_file_line_and_field(extra: str, field: str, message: str) -> None:
    from mock_custodian.scenario.parse import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + extra + "\n", "mine.yaml")
    assert caught.value.field_path == field and message in caught.value.message
    assert caught.value.path == "mine.yaml" and caught.value.line == BASE.count("\n") + 1


def test_extends_merges_the_base_and_checks_references_across_it(tmp_path: Path) -> None:
    from mock_custodian.scenario.parse import ScenarioError, parse_scenario

    scenario = parse_scenario(BASE + "authorizations: [{third_party: sunny, customer: x, ends_on: +0d}]\n", "m.yaml")
    demo = load_scenario_file("demo")
    assert [c.key for c in scenario.customers] == [c.key for c in demo.customers] + ["x"]
    assert scenario.seed == demo.seed and scenario.customers[-1].situation == "Something happens."
    assert scenario.customers[-1].accounts[0].service_agreements[0].service_start == "-1d"
    with pytest.raises(ScenarioError, match="duplicate customer key 'rivera'"):
        parse_scenario("extends: demo\ncustomers: [{key: rivera, accounts: []}]\n", "dup.yaml")
    with pytest.raises(ScenarioError, match="cannot read"):
        parse_scenario("extends: missing.yaml\n", str(tmp_path / "m.yaml"))
    (tmp_path / "child.yaml").write_text("extends: demo\n")
    with pytest.raises(ScenarioError, match="cannot be extended"):
        parse_scenario("extends: child.yaml\n", str(tmp_path / "grandchild.yaml"))


def test_consent_anchored_events_follow_each_consent(tmp_path: Path) -> None:
    """after_consent schedules per consent (and per third party when named), in the consent's own time."""
    from sqlalchemy import select

    from mock_custodian.domain.authorizations import Duration, create_customer_authorization
    from mock_custodian.domain.lifecycle import apply_due_events
    from mock_custodian.domain.world import load_world
    from mock_custodian.pki import DevPKI
    from mock_custodian.scenario.parse import parse_scenario
    from mock_custodian.store.db import Database
    from mock_custodian.store.models import AccountEvent, Customer, ThirdParty

    yaml_text = BASE + ("timeline:\n  - {event: cancel_authorization, customer: x, third_party: sunny, "
                        "after_consent: 2h}\n")
    pki = DevPKI(tmp_path / "certs")
    pki.ensure([])
    database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    database.create_schema()
    load_world(database, parse_scenario(yaml_text, "m.yaml"), pki)
    with database.session() as db:
        assert db.execute(select(AccountEvent).where(AccountEvent.kind == "cancel_authorization")).first() is None
        customer = db.execute(select(Customer).where(Customer.key == "x")).scalar_one()
        sunny, newco = (db.execute(select(ThirdParty).where(ThirdParty.client_id == c)).scalar_one()
                        for c in ("00101", "00104"))
        now = 1_800_000_000.0
        made = {}
        for tp in (sunny, newco):
            made[tp.client_id] = create_customer_authorization(
                db, tp=tp, customer_id=customer.id, data_groups=["Usage"],
                service_agreement_ids=[customer.accounts[0].service_agreements[0].id], duration=Duration(None),
                now=now, resource_base="https://x/r", redirect_uri=tp.redirect_uri).authorization
        events = db.execute(select(AccountEvent).where(AccountEvent.kind == "cancel_authorization")).scalars().all()
        assert [(e.at, e.params["authorization_id"]) for e in events] == [(now + 7200, made["00101"].id)]
        assert [e for e in apply_due_events(db, now + 7199, "https://x/r") if e.kind == "cancel_authorization"] == []
        (applied,) = apply_due_events(db, now + 7200, "https://x/r")
        assert applied.outcome["authorizations"] == [made["00101"].id]
        assert made["00101"].revoked_reason == "cancelled" and made["00104"].revoked_reason is None


def test_situations_are_listed_by_the_control_api_and_the_command_line(server: testing.RunningServer) -> None:
    import subprocess
    import sys

    entries = {u: s for u, kind, s in catalog_entries() if kind == "customer"}
    listed = {c["username"]: c["situation"] for c in server.customers()}
    assert {u: listed[u] for u in entries} == entries and listed["rivera"] is None
    situations = {t["client_id"]: t.get("situation") for t in server.credentials["third_parties"]}
    assert situations["00123"] == "Its notification receiver is down (every POST answers 500)."
    printed = subprocess.run([sys.executable, "-m", "mock_custodian", "customers", "--data-dir", str(server.data_dir)],
                             check=True, capture_output=True, text=True, env=server.env).stdout
    line = next(row for row in printed.splitlines() if row.startswith("guest "))
    assert entries["guest"] in line


def test_built_in_scenarios_load_by_name(server: testing.RunningServer) -> None:
    assert server.load_scenario("demo")["name"] == "demo"
    assert "guest" not in {c["username"] for c in server.customers()}
    server.restore()
    assert server.control("GET", "/scenario")["name"] == "catalog"
    assert "guest" in {c["username"] for c in server.customers()}
