"""Shared fixtures: the real server (gunicorn, TLS, client certificates) on random local ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_custodian import testing


def assert_valid_espi(*documents: bytes | Path) -> None:
    """Every document validates against the schemas shipped in mock_custodian/espi/schemas (no skip)."""
    from mock_custodian.espi.validate import format_outcome, validate_bytes

    failures = []
    for i, document in enumerate(documents):
        name = str(document) if isinstance(document, Path) else f"document {i}"
        outcome = validate_bytes(document.read_bytes() if isinstance(document, Path) else document)
        if not outcome.ok:
            failures.extend(format_outcome(name, outcome))
    assert not failures, "\n".join(failures)


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
