"""Own meter data served through the real API (issue 19): an exported SA re-imported and served back
identically, a hand-made CSV, a "yesterday" past the file's end, and a shaped profile's pattern."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import requests
from lxml import etree
from support import inprocess

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from mock_custodian.espi.usage import meter_reading_id, reading_type_id

RES = "/GreenButtonConnect/espi/1_1/resource"
NS = {"e": "http://naesb.org/espi"}
NOW = dt.datetime(2026, 10, 20, 12, tzinfo=PACIFIC).timestamp()
WEEKDAY = [1, 1, 1, 1, 1, 1, 2, 3, 2, 1, 1, 1, 1, 1, 1, 1, 2, 3, 5, 6, 5, 3, 2, 1]

SCENARIO = f"""\
name: own-serving
seed: 11
third_parties:
  - key: app
    client_id: "00101"
    display_name: Own Data App
    tax_id: "941234567"
    redirect_uri: https://localhost:9443/cb
    portal_uri: https://localhost:9443/start
    notification_uri: https://localhost:9443/notify
customers:
  - key: gen
    accounts:
      - service_agreements:
          - {{key: gen-solar, profile: solar_net_metered, service_start: 2024-01-01}}
  - key: csvhome
    accounts:
      - service_agreements:
          - key: csv-home
            data: {{file: reads.csv, interval: 3600, uom: kWh}}
  - key: shapehome
    accounts:
      - service_agreements:
          - key: shaped-home
            profile: shaped
            service_start: 2024-01-01
            shape:
              annual: 4000
              noise: 0.2
              weekday: {WEEKDAY}
              weekend: {[3] * 24}
              seasons: {{summer: {{weight: 1.5}}}}
"""

COPY = """\
  - key: copyhome
    accounts:
      - service_agreements:
          - key: copy-solar
            data: {file: gen.xml}
"""


def at(y: int, m: int, d: int, hour: int = 0) -> int:
    return int(dt.datetime(y, m, d, hour, tzinfo=PACIFIC).timestamp())


def csv_rows() -> list[tuple[int, int, int]]:
    """(start, value in Wh x 10^-3, quality) of the hand-made CSV: a week of hourly reads from 2026-10-01."""
    rows = []
    for h in range(7 * 24):
        start = at(2026, 10, 1) + 3600 * h
        rows.append((start, 250 + 17 * (h % 24) + (h // 24), 8 if h % 50 == 7 else 17))
    return rows


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("own-data")
    lines = ["start,value,quality"]
    lines += [f"{dt.datetime.fromtimestamp(t, PACIFIC).strftime('%Y-%m-%dT%H:%M')},{v / 1e6},{q}"
              for t, v, q in csv_rows()]
    (folder / "reads.csv").write_text("\n".join(lines) + "\n")
    (folder / "first.yaml").write_text(SCENARIO)
    srv = inprocess.start(folder / "data", scenario=folder / "first.yaml")
    srv.clock.freeze(NOW)
    export = subprocess.run(
        [sys.executable, "-m", "mock_custodian", "export", "--data-dir", str(folder / "data"), "gen-solar",
         "--start", "2026-09-01", "--end", "2026-10-15", "-o", str(folder / "gen.xml")],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert export.returncode == 0, export.stderr
    (folder / "second.yaml").write_text(SCENARIO + COPY)
    srv.control("POST", "/scenario", json={"path": str(folder / "second.yaml")})
    srv.clock.freeze(NOW)
    srv.refresh_credentials()
    yield srv
    srv.stop()


def usage_point(server: testing.RunningServer, sa_key: str) -> str:
    for customer in server.customers():
        for account in customer["accounts"]:
            for sa in account["service_agreements"]:
                if sa["key"] == sa_key:
                    return sa["usage_point_id"]
    raise AssertionError(sa_key)


def readings(server: testing.RunningServer, customer: str, sa_key: str, interval: int, flow: int,
             start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(start, duration, value, quality) of every IntervalReading served for one MeterReading."""
    granted = server.authorize(customer, "00101", service_agreements=[sa_key], groups=["Usage"], via="control")
    up = usage_point(server, sa_key)
    mr = meter_reading_id(reading_type_id(72, interval, flow), 1)
    response = requests.get(
        f"{server.api_base_url}{RES}/Subscription/{granted['authorization_id']}/UsagePoint/{up}/MeterReading/{mr}"
        "/IntervalBlock", params={"published-min": str(start), "published-max": str(end)},
        headers={"Authorization": f"Bearer {granted['token']['access_token']}"}, cert=server.cert("00101"),
        verify=server.ca_bundle, timeout=120)
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.text[:300]
    out = []
    for r in etree.fromstring(response.content).iterfind(".//e:IntervalReading", NS):
        out.append((int(r.findtext("e:timePeriod/e:start", namespaces=NS)),
                    int(r.findtext("e:timePeriod/e:duration", namespaces=NS)),
                    int(r.findtext("e:value", namespaces=NS)),
                    int(r.findtext("e:ReadingQuality/e:quality", namespaces=NS))))
    return out


def test_an_exported_sa_imported_as_a_new_sa_is_served_back_identically(server: testing.RunningServer) -> None:
    start, end = at(2026, 9, 1), at(2026, 10, 15)
    for flow in (1, 19):
        original = readings(server, "gen", "gen-solar", 900, flow, start, end)
        assert len(original) == 44 * 96
        assert readings(server, "copyhome", "copy-solar", 900, flow, start, end) == original
    assert usage_point(server, "copy-solar") != usage_point(server, "gen-solar")


def test_yesterday_past_the_files_end_continues_its_pattern(server: testing.RunningServer) -> None:
    yesterday = readings(server, "copyhome", "copy-solar", 900, 1, at(2026, 10, 19), at(2026, 10, 20))
    week_before = readings(server, "copyhome", "copy-solar", 900, 1, at(2026, 10, 12), at(2026, 10, 13))
    assert len(yesterday) == 96
    assert [v for _, _, v, _ in yesterday] == [v for _, _, v, _ in week_before]  # same weekday, same month


def test_a_hand_made_csv_is_served_as_written(server: testing.RunningServer) -> None:
    served = readings(server, "csvhome", "csv-home", 3600, 1, at(2026, 10, 1), at(2026, 10, 8))
    assert [(t, v, q) for t, _, v, q in served] == csv_rows()
    assert {d for _, d, _, _ in served} == {3600}


def test_a_shaped_profiles_pattern_and_annual_total_are_visible_in_served_data(server: testing.RunningServer) -> None:
    served = readings(server, "shapehome", "shaped-home", 3600, 1, at(2025, 1, 1), at(2026, 1, 1))
    assert len(served) == 8760
    assert abs(sum(v for _, _, v, _ in served) / 4e9 - 1) < 0.02
    by_day: dict[dt.date, list[int]] = {}
    for t, _, v, _ in served:
        by_day.setdefault(dt.datetime.fromtimestamp(t, PACIFIC).date(), []).append(v)
    weekdays = [d for d in by_day if d.weekday() < 5 and d.month in (3, 4)]
    evening = sum(by_day[d][19] for d in weekdays) / len(weekdays)
    night = sum(by_day[d][3] for d in weekdays) / len(weekdays)
    assert evening > 4 * night  # the weekday shape's 19:00 peak
    def mean(days: list[dt.date]) -> float:
        return sum(sum(by_day[d]) for d in days) / len(days)
    saturdays = [d for d in by_day if d.weekday() == 5 and d.month in (3, 4)]
    assert mean(saturdays) > 1.3 * mean(weekdays)  # 72 vs 47 units a day
    july_weekdays = [d for d in by_day if d.weekday() < 5 and d.month == 7]
    assert 1.3 < mean(july_weekdays) / mean(weekdays) < 1.7  # the summer weight
