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

The clock: every plugin server's simulated clock starts **running** from 12:00 Pacific on the current
(real, Pacific) day, set again at each ``pge`` reset, so a "fetch yesterday" test finds yesterday
published (06:00 Pacific) at any hour the suite runs. ``--mock-custodian-start`` / the ini key
``mock_custodian_start`` / ``@pytest.mark.mock_custodian(start=...)`` change it: ``real`` (no shift),
``HH:MM`` (Pacific, today), ``YYYY-MM-DD`` (12:00 Pacific that day) or an instant with zone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_custodian.clock import DEFAULT_TEST_START, real_epoch, start_instant
from mock_custodian.scenario.parse import BUILTIN_SCENARIOS
from mock_custodian.testing import RunningServer
from mock_custodian.testing import start as _start


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
    group.addoption("--mock-custodian-start", default=None, metavar="WHEN",
                    help="where each test's simulated clock starts, running: real, HH:MM (Pacific, today), "
                         f"YYYY-MM-DD (12:00 Pacific) or an instant with zone (default {DEFAULT_TEST_START})")
    parser.addini("mock_custodian_start", "where each test's simulated clock starts (default 12:00 Pacific today)",
                  default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mock_custodian(scenario=None, settings=None, workers=1, start=None): give this test its own "
                   "mock PG&E server (start alone only moves where the shared server's clock starts)"
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


def _start_spec(config: pytest.Config) -> str:
    spec = config.getoption("mock_custodian_start") or config.getini("mock_custodian_start") or DEFAULT_TEST_START
    try:
        start_instant(spec, 0.0)
    except ValueError as exc:
        raise pytest.UsageError(f"mock-custodian: {exc}") from None
    return spec


def start_clock(server: RunningServer, spec: str) -> None:
    """Set the server's clock to the start instant; it keeps running (jobs, token expiry, refills move on)."""
    instant = start_instant(spec, real_epoch())
    if instant is not None:
        server.clock.set(instant)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pge_session(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[RunningServer]:
    """The session's mock PG&E (one per xdist worker), in its own data dir."""
    server = _start(
        tmp_path_factory.mktemp(f"mock-custodian-{_worker()}"),
        scenario=_scenario(pytestconfig),
        workers=int(pytestconfig.getini("mock_custodian_workers") or 1),
        settings=_settings(pytestconfig),
    )
    try:
        start_clock(server, _start_spec(pytestconfig))
        yield server
    finally:
        server.stop()


@pytest.fixture
def pge_factory(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
                ) -> Iterator[Callable[..., RunningServer]]:
    """Start extra servers for one test: ``pge_factory(scenario=..., settings={...})``."""
    started: list[RunningServer] = []

    def make(scenario: Path | str | None = None, settings: dict[str, Any] | None = None, workers: int = 1,
             env: dict[str, str] | None = None, start: str | None = None) -> RunningServer:
        merged = {**_settings(pytestconfig), **(settings or {})}
        server = _start(tmp_path_factory.mktemp(f"mock-custodian-{_worker()}-own"),
                        scenario=scenario if scenario is not None else _scenario(pytestconfig),
                        workers=workers, settings=merged, env=env)
        started.append(server)
        start_clock(server, start or _start_spec(pytestconfig))
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
    kwargs = dict(marker.kwargs) if marker is not None else {}
    spec = kwargs.get("start") or _start_spec(request.config)
    if set(kwargs) - {"start"}:
        factory = request.getfixturevalue("pge_factory")
        yield factory(**kwargs)
        return
    server: RunningServer = request.getfixturevalue("pge_session")
    server.restore()  # the session's scenario, even if an earlier test loaded another
    start_clock(server, spec)
    yield server
