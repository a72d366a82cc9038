"""The customer side over real HTTPS with two gunicorn workers: a sign-in on one worker is honoured by the
other, and a code exchanged concurrently on both workers is granted once."""

from __future__ import annotations

import threading

from support.customer_flow import Browser, exchange

from mock_custodian import testing


def test_a_live_session_skips_sign_in_on_every_worker(fresh_demo_server: testing.RunningServer) -> None:
    browser = Browser(fresh_demo_server)
    consent = browser.sign_in(browser.start("00101"))
    assert "Share your energy data with Sunny Solar" in consent.text
    # Several requests: with two workers, both must recognise the session stored in the database.
    for _ in range(6):
        again = browser.start("00101", state="again")
        assert again.status_code == 200
        assert "Share your energy data with Sunny Solar" in again.text
        assert "Sign in to Share My Data" not in again.text


def test_code_is_single_use_under_concurrent_exchanges(fresh_demo_server: testing.RunningServer) -> None:
    server = fresh_demo_server
    code = _code(server)
    results: list[int] = []

    def attempt() -> None:
        results.append(exchange(server, "00101", code).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 400, 400, 400, 400, 400]


def _code(server: testing.RunningServer, client_id: str = "00101", username: str = "rivera", **consent) -> str:
    return Browser(server).authorize(client_id, username, **consent)["authorization_code"]
