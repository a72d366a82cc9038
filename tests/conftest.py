"""Shared fixtures: the real server (gunicorn, TLS, client certificates) on random local ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_custodian import testing

SHARED = Path(__file__).resolve().parents[2] / "shared"
ESPI_VALIDATE = SHARED / "tools" / "espi-validate"


@pytest.fixture(scope="session")
def pge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """One demo-scenario server for the whole session (two workers, like a real deployment)."""
    server = testing.start(tmp_path_factory.mktemp("pge"), workers=2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def customer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """Customer-authorization tests: the demo plus two registrations (tests/customer_flow.py), two workers."""
    from customer_flow import start_server

    server = start_server(tmp_path_factory.mktemp("customer-authorization"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def quirks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """The same world with every section-9 quirk the customer-authorization tests switch (customer_flow.QUIRKS)."""
    from customer_flow import QUIRKS, start_server

    server = start_server(tmp_path_factory.mktemp("customer-authorization-quirks"), QUIRKS, workers=1)
    try:
        yield server
    finally:
        server.stop()
