"""pytest plugin (entry point ``pytest11``): a real mock PG&E for a third party's test suite.

Fixtures:

- ``pge``: the session's server, reset to the session's scenario before the test (world, clock, tokens,
  faults, logs and sink start clean, even after an earlier test loaded another scenario). A test
  marked ``@pytest.mark.mock_custodian(scenario=..., settings=...)``
  gets a dedicated server instead, stopped after it.
- ``pge_session``: the session's server as it is (no reset), for module-level setup.
- ``pge_factory``: ``pge_factory(scenario=None, settings=None, workers=1)`` starts more servers,
  all stopped after the test.

Each server is the real stack (gunicorn, TLS, client certificates) on free ports in its own data
dir under pytest's temporary directory, so pytest-xdist workers never share one. Configure with
``--mock-custodian-scenario FILE``, ``--mock-custodian-setting NAME=VALUE`` (repeatable), or the ini
keys ``mock_custodian_scenario``, ``mock_custodian_settings`` (lines of NAME=VALUE) and
``mock_custodian_workers``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .scenario import BUILTIN_SCENARIOS
from .testing import RunningServer, start


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mock-custodian", "mock PG&E Share My Data server")
    group.addoption("--mock-custodian-scenario", default=None, metavar="FILE",
                    help="scenario YAML for the session's mock PG&E (default: the built-in demo)")
    group.addoption("--mock-custodian-setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a mock-custodian setting for the session's server (repeatable)")
    parser.addini("mock_custodian_scenario", "scenario YAML for the session's mock PG&E", default="")
    parser.addini("mock_custodian_settings", "mock-custodian settings, one NAME=VALUE per line", type="linelist",
                  default=[])
    parser.addini("mock_custodian_workers", "gunicorn workers per mock PG&E server", default="1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mock_custodian(scenario=None, settings=None, workers=1): give this test its own mock PG&E server"
    )


def _settings(config: pytest.Config) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in [*config.getini("mock_custodian_settings"), *config.getoption("mock_custodian_setting")]:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"mock-custodian setting {item!r} is not NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _scenario(config: pytest.Config) -> Path | None:
    given = config.getoption("mock_custodian_scenario") or config.getini("mock_custodian_scenario")
    if not given:
        return None
    path = Path(given)
    if not path.is_absolute():
        path = Path(config.rootpath) / path
    if given in BUILTIN_SCENARIOS and not path.exists():
        return BUILTIN_SCENARIOS[given]  # a built-in by name: --mock-custodian-scenario catalog
    return path


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pge_session(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[RunningServer]:
    """The session's mock PG&E (one per xdist worker), in its own data dir."""
    server = start(
        tmp_path_factory.mktemp(f"mock-custodian-{_worker()}"),
        scenario=_scenario(pytestconfig),
        workers=int(pytestconfig.getini("mock_custodian_workers") or 1),
        settings=_settings(pytestconfig),
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pge_factory(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
                ) -> Iterator[Callable[..., RunningServer]]:
    """Start extra servers for one test: ``pge_factory(scenario=..., settings={...})``."""
    started: list[RunningServer] = []

    def make(scenario: Path | str | None = None, settings: dict[str, Any] | None = None, workers: int = 1,
             env: dict[str, str] | None = None) -> RunningServer:
        merged = {**_settings(pytestconfig), **(settings or {})}
        server = start(tmp_path_factory.mktemp(f"mock-custodian-{_worker()}-own"),
                       scenario=scenario if scenario is not None else _scenario(pytestconfig),
                       workers=workers, settings=merged, env=env)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def pge(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A mock PG&E in the scenario's starting state: the session's server after a reset, or this test's own."""
    marker = request.node.get_closest_marker("mock_custodian")
    if marker is not None:
        factory = request.getfixturevalue("pge_factory")
        yield factory(**marker.kwargs)
        return
    server: RunningServer = request.getfixturevalue("pge_session")
    server.restore()  # the session's scenario, even if an earlier test loaded another
    yield server
