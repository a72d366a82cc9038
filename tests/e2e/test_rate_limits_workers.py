"""The per-second vendor budget of spec 6.7 counted in the database across two real gunicorn workers (checklist 116)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import requests
import support

from mock_custodian import testing
from mock_custodian.clock import PACIFIC, ClockState

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


@pytest.fixture
def limited(tmp_path: Path):  # noqa: ANN201
    """Two workers, the documents' strict limits, the clock frozen. The bucket refills every 5 real seconds
    (not 1), so 'two calls in a row are refused' holds however slow a loaded machine is."""
    server = testing.start(tmp_path / "d", workers=2, env={
        "MOCK_CUSTODIAN_RATE_LIMITS_ENABLED": "true",
        "MOCK_CUSTODIAN_RATE_LIMIT_PROFILE": "strict",  # the documents' reading: every call, depth 1
        "MOCK_CUSTODIAN_RATE_LIMIT_VENDOR_PER_SECOND": "0.2",
    })
    support.database(server).write_clock_state(
        ClockState(frozen_at=dt.datetime(2026, 6, 1, 12, tzinfo=PACIFIC).timestamp()))
    yield server
    server.stop()


def test_one_request_per_second_per_vendor_across_client_ids_and_workers(limited: testing.RunningServer) -> None:
    # Sunny Solar (00101) and a second registration under the same Tax ID would share the budget; the demo
    # gives each registration its own Tax ID, so give NewCo (00104) Sunny's Tax ID here.
    db = support.database(limited)
    with db.session() as session:
        from mock_custodian.store.models import ThirdParty

        tps = {tp.client_id: tp for tp in session.query(ThirdParty)}
        tps["00104"].tax_id = tps["00101"].tax_id
    assert _hit(limited, "00101").status_code == 401
    refused = _hit(limited, "00104")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    # Another vendor is unaffected.
    assert _hit(limited, "00102").status_code == 401
    # The per-second bucket runs on real time (issue 20): moving the simulated clock does not refill it...
    db.write_clock_state(ClockState(frozen_at=db.read_clock_state().frozen_at + 3600))
    assert _hit(limited, "00104").status_code == 429
    # ...a few real seconds do, although the simulated clock stays frozen.
    deadline = time.monotonic() + 20
    while (status := _hit(limited, "00104").status_code) == 429 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert status == 401


def _hit(server: testing.RunningServer, client_id: str) -> requests.Response:
    # No bearer token: the answer is 401 unless a rate limit (checked first) answers 429.
    with requests.Session() as session:
        return session.get(f"{server.api_base_url}{RESOURCE}/ReadServiceStatus", cert=server.cert(client_id),
                           verify=server.ca_bundle, timeout=10)
