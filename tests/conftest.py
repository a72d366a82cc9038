"""Fixtures every tier shares: the demo world as a real server (gunicorn, TLS, client certificates, on
random local ports) for tests/e2e; the demo and the customer-authorization worlds in-process
(``support.inprocess``) for tests/app.

Session-scoped (one per xdist worker): tests that use them leave the world as they found it or reset it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mock_custodian import testing

TIER_ORDER = {"e2e": 0, "app": 1, "domain": 2}
# The files that take longest (``pytest --durations``), started before everything else. Only a scheduling
# hint: a stale entry costs time, never a test.
LONGEST_FIRST = ("e2e/test_production_clients.py", "app/test_fuzz.py", "e2e/test_pytest_plugin.py",
                 "e2e/test_async_batch.py", "app/test_registration.py")


def _run_order(item: pytest.Item) -> tuple[int, int]:
    name = f"{item.path.parent.name}/{item.path.name}"
    if name in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(name))
    return (1, TIER_ORDER.get(item.path.parent.name, 1))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first, then the slow tier: xdist hands out whole files in collection order, so the
    many small domain files fill the workers' gaps at the end instead of one long file starting last."""
    items.sort(key=_run_order)


@pytest.fixture(scope="session", autouse=True)
def _close_the_shared_browser() -> Iterator[None]:
    """The browser tests share one Chromium per test process (support/browser.py); close it at the end."""
    yield
    from support.browser import close_shared_browser

    close_shared_browser()


# --- real servers (tests/e2e) ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """One demo-scenario server for the whole session (two workers, like a real deployment).

    Not the plugin's ``pge`` (reset before each test): this one is shared as it is."""
    server = testing.start(tmp_path_factory.mktemp("demo"), workers=2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_demo_server(demo_server: testing.RunningServer) -> Iterator[testing.RunningServer]:
    """``demo_server`` reset to the demo world for a test that changes it, and reset again afterwards, so the
    tests that share it as it is (credentials, the request log) find it as it started."""
    demo_server.reset()
    try:
        yield demo_server
    finally:
        demo_server.reset()


# --- the same worlds in-process (tests/app) -------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """The demo world in-process, with ``RunningServer``'s interface (support.inprocess.start)."""
    from support import inprocess

    server = inprocess.start(tmp_path_factory.mktemp("demo-app"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def customer_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """The customer-authorization world in-process: the demo plus two registrations (support/customer_flow.py)."""
    from support.customer_flow import start_app

    server = start_app(tmp_path_factory.mktemp("customer-authorization-app"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def quirks_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """The same world with every section-9 quirk the customer-authorization tests switch (customer_flow.QUIRKS)."""
    from support.customer_flow import QUIRKS, start_app

    server = start_app(tmp_path_factory.mktemp("customer-authorization-quirks-app"), QUIRKS)
    try:
        yield server
    finally:
        server.stop()
