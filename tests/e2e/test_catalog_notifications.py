"""The catalog rows whose proof is a notification the job worker delivered (the sink over real HTTPS): moves
out, cancels, removes an SA, shortens, an unlinked account, a receiver that is down. The other rows run
in-process: tests/app/test_catalog.py."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from support.catalog import (
    SUNNY,
    advance_to,
    api,
    authorization_notices,
    authorization_status,
    client_token,
    day_window,
    fresh_token,
    local_midnight,
    sas,
    texts,
    usage,
    usage_points,
    usage_points_status,
)

from mock_custodian import testing


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    running = testing.start(tmp_path_factory.mktemp("catalog") / "data", scenario="catalog",
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


def test_row_moves_out_3d(fresh_catalog: testing.RunningServer) -> None:
    fresh_catalog.use_sink(SUNNY)
    consent = fresh_catalog.authorize("moves-out-3d", SUNNY)
    points = {k: v["usage_point_id"] for k, v in sas(fresh_catalog, "moves-out-3d").items()}
    assert usage_points(fresh_catalog, consent) == set(points.values())
    fresh_catalog.clock.advance(hours=71)
    fresh_token(fresh_catalog, consent)
    assert usage_points(fresh_catalog, consent) == set(points.values())
    fresh_catalog.clock.advance(hours=2)
    fresh_token(fresh_catalog, consent)
    assert authorization_notices(fresh_catalog, SUNNY, consent["authorization_id"])
    assert usage_points(fresh_catalog, consent) == {points["moves-out-gas"]}
    assert {sa["status"] for sa in sas(fresh_catalog, "moves-out-3d").values()} == {"Closed", "Active"}


def test_row_cancels_after_2h(fresh_catalog: testing.RunningServer) -> None:
    fresh_catalog.use_sink(SUNNY)
    start = local_midnight(fresh_catalog) + dt.timedelta(hours=9)
    advance_to(fresh_catalog, start)
    consent = fresh_catalog.authorize("cancels-after-2h", SUNNY)
    (sa,) = sas(fresh_catalog, "cancels-after-2h").values()
    window = day_window(local_midnight(fresh_catalog, -2))
    fresh_catalog.clock.advance(hours=1, minutes=59)
    assert not [n for n in fresh_catalog.notifications(SUNNY) if str(consent["authorization_id"]) in n["body"]]
    fresh_catalog.clock.advance(minutes=2)
    fresh_token(fresh_catalog, consent)
    assert authorization_notices(fresh_catalog, SUNNY, consent["authorization_id"])
    assert usage(fresh_catalog, consent, sa["usage_point_id"], **window).status_code == 200  # until midnight
    assert authorization_status(fresh_catalog, consent["authorization_id"]) == "1"
    advance_to(fresh_catalog, local_midnight(fresh_catalog, 1) + dt.timedelta(minutes=1))
    assert usage(fresh_catalog, consent, sa["usage_point_id"], **window).status_code == 403
    assert authorization_status(fresh_catalog, consent["authorization_id"]) == "0"


def test_row_removes_sa_next_day(fresh_catalog: testing.RunningServer) -> None:
    fresh_catalog.use_sink(SUNNY)
    consent = fresh_catalog.authorize("removes-sa-next-day", SUNNY)
    points = {k: v["usage_point_id"] for k, v in sas(fresh_catalog, "removes-sa-next-day").items()}
    assert usage_points(fresh_catalog, consent) == set(points.values())
    fresh_catalog.clock.advance(days=1, minutes=1)
    fresh_token(fresh_catalog, consent)
    assert authorization_notices(fresh_catalog, SUNNY, consent["authorization_id"])
    assert usage_points(fresh_catalog, consent) == {points["removes-electric"]}
    gone = api(fresh_catalog, SUNNY, f"/Subscription/{consent['authorization_id']}/UsagePoint/{points['removes-gas']}",
               consent["token"]["access_token"])
    assert gone.status_code in (403, 404)


def test_row_shortens_to_tomorrow(fresh_catalog: testing.RunningServer) -> None:
    fresh_catalog.use_sink(SUNNY)
    advance_to(fresh_catalog, local_midnight(fresh_catalog) + dt.timedelta(hours=9))
    consent = fresh_catalog.authorize("shortens-to-tomorrow", SUNNY)
    auth_id = consent["authorization_id"]
    before = api(fresh_catalog, SUNNY, f"/Authorization/{auth_id}", client_token(fresh_catalog, SUNNY))
    assert texts(before.text, "expires_at") == ["253402300799"]
    fresh_catalog.clock.advance(hours=1, minutes=1)
    assert authorization_notices(fresh_catalog, SUNNY, auth_id)
    after = api(fresh_catalog, SUNNY, f"/Authorization/{auth_id}", client_token(fresh_catalog, SUNNY))
    tomorrow_ends = local_midnight(fresh_catalog, 2)
    assert texts(after.text, "expires_at") == [str(int(tomorrow_ends.timestamp()))]
    advance_to(fresh_catalog, tomorrow_ends - dt.timedelta(minutes=1))
    assert authorization_status(fresh_catalog, auth_id) == "1"
    advance_to(fresh_catalog, tomorrow_ends + dt.timedelta(minutes=1))
    assert authorization_status(fresh_catalog, auth_id) == "0"
    assert usage_points_status(fresh_catalog, consent) == 403


def test_row_unlinked_account(fresh_catalog: testing.RunningServer) -> None:
    fresh_catalog.use_sink(SUNNY)
    consent = fresh_catalog.authorize("unlinked-account", SUNNY)
    points = {k: v["usage_point_id"] for k, v in sas(fresh_catalog, "unlinked-account").items()}
    assert usage_points(fresh_catalog, consent) == set(points.values())
    fresh_catalog.clock.advance(days=1, minutes=1)
    fresh_token(fresh_catalog, consent)
    assert authorization_notices(fresh_catalog, SUNNY, consent["authorization_id"])
    assert usage_points(fresh_catalog, consent) == {points["unlinked-home-electric"]}
    customer = next(c for c in fresh_catalog.customers() if c["username"] == "unlinked-account")
    assert [a["linked"] for a in customer["accounts"]] == [True, False]


def test_row_receiver_down(fresh_catalog: testing.RunningServer) -> None:
    consent = fresh_catalog.authorize("gas-only", "00123")
    fresh_catalog.authorize("gas-only", "00123")  # the customer authorizes again: the first is replaced and notified
    notes = authorization_notices(fresh_catalog, "00123", consent["authorization_id"])
    assert notes[0]["attempts"][0]["status"] == 500
    for minutes in (1, 5, 15):
        fresh_catalog.clock.advance(minutes=minutes, seconds=5)
        fresh_catalog.release_jobs()
    for _ in range(150):
        note = next(n for n in fresh_catalog.notifications("00123") if n["id"] == notes[0]["id"])
        if note["status"] == "failed":
            break
        fresh_catalog.release_jobs()
        time.sleep(0.2)
    assert note["status"] == "failed" and [a["status"] for a in note["attempts"]] == [500] * 4
    assert len(fresh_catalog.sink("receiver-down")) >= 4
