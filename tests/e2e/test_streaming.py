"""Big answers stream, and a response slower than gunicorn's worker timeout is not cut off (issue 2)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import requests
from lxml import etree

from mock_custodian import testing
from mock_custodian.clock import PACIFIC

RES = "/GreenButtonConnect/espi/1_1/resource"


def test_slow_reader_outlives_the_worker_timeout(tmp_path: Path) -> None:
    server = testing.start(tmp_path / "d", env={"MOCK_CUSTODIAN_WORKER_TIMEOUT": "2"})
    try:
        server.clock.freeze(dt.datetime(2026, 11, 10, 10, tzinfo=PACIFIC).timestamp())
        granted = server.authorize("okafor", "00101", service_agreements=["okafor-solar"], groups=["Usage"],
                                   via="control")
        sub, token = granted["authorization_id"], granted["token"]["access_token"]
        up = requests.get(f"{server.api_base_url}{RES}/Subscription/{sub}/UsagePoint",
                          headers={"Authorization": f"Bearer {token}"}, cert=server.cert("00101"),
                          verify=server.ca_bundle, timeout=30).text.split("/UsagePoint/")[1].split('"')[0]
        started = time.monotonic()
        with requests.get(f"{server.api_base_url}{RES}/Batch/Subscription/{sub}/UsagePoint/{up}",
                          params={"published-min": "2026-04-01T07:00:00Z", "published-max": "2026-10-01T07:00:00Z"},
                          headers={"Authorization": f"Bearer {token}"}, cert=server.cert("00101"),
                          verify=server.ca_bundle, timeout=30, stream=True) as response:
            assert response.status_code == 200
            body = bytearray()
            for chunk in response.iter_content(128 * 1024):  # a slow consumer: ~1.3 MB/s
                body.extend(chunk)
                time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert elapsed > 3 * 2, f"the response took only {elapsed:.1f}s; the test proves nothing"
        feed = etree.fromstring(bytes(body))  # complete and well-formed: not cut off
        readings = feed.findall(".//{http://naesb.org/espi}IntervalReading")
        assert len(readings) == 2 * 96 * 183  # two flow directions, 183 days of 15-minute data
        assert "WORKER TIMEOUT" not in server.log()
    finally:
        server.stop()
