"""Helpers every test tier shares (importable as ``support`` from any tier: pyproject's ``pythonpath``).

The modules beside this one hold the bigger helpers: ``support.inprocess`` (the app in-process, with a
``requests`` transport so a test written against a real server runs unchanged against the app),
``support.customer_flow`` (a customer's browser over HTTP), ``support.report_traffic`` (paced traffic
with a fake wall clock), ``support.cert_factory``, ``support.notify_receiver``,
``support.scripted_third_party``, ``support.browser`` (playwright) and ``support.pg_cluster``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import requests

from mock_custodian.store.db import Database

ROOT = Path(__file__).resolve().parents[2]  # the repository: docs/, examples/, pyproject.toml
TESTS = ROOT / "tests"

TOKEN = "/datacustodian/oauth/v2/token"
TEST_TOKEN = "/datacustodian/test/oauth/v2/token"
RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


class Server(Protocol):
    """What these helpers need of a server: a real one (``mock_custodian.testing.RunningServer``) or
    the app in-process (``support.inprocess.InProcessServer``), which has the same interface."""

    data_dir: Path
    api_base_url: str
    portal_base_url: str
    ca_bundle: str

    def third_party(self, client_id: str) -> dict[str, Any]: ...

    def cert(self, client_id: str) -> tuple[str, str]: ...


_DATABASES: dict[Path, Database] = {}


def database(server: Server | Path) -> Database:
    """The server's own SQLite database (a test may write what another surface would, or read the clock).

    For the app in-process, the app's own ``Database``: a second one on the same file in the same process
    would open and close the file (``Database`` fixes its mode), and closing any descriptor of a file drops
    every POSIX lock the process holds on it, the app's included; a CLI run beside it could then write
    under the app's feet. Otherwise one engine per data dir for the whole test process.
    """
    runtime = getattr(getattr(server, "app", None), "extensions", {}).get("mock_custodian")
    if runtime is not None:
        return runtime.database
    data_dir = server if isinstance(server, Path) else server.data_dir
    if data_dir not in _DATABASES:
        _DATABASES[data_dir] = Database(f"sqlite:///{data_dir / 'mock-custodian.db'}")
    return _DATABASES[data_dir]


def client_token(server: Server, client_id: str = "00101", endpoint: str = TOKEN) -> str:
    """A client access token (client_credentials in the query, Basic credentials, the client's certificate)."""
    tp = server.third_party(client_id)
    response = requests.post(f"{server.api_base_url}{endpoint}", params={"grant_type": "client_credentials"},
                             auth=(tp["client_id"], tp["client_secret"]), cert=server.cert(client_id),
                             verify=server.ca_bundle, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["client_access_token"]


def api_get(server: Server, client_id: str, path: str, bearer: str | None, timeout: float = 60,
            **kwargs: Any) -> requests.Response:
    """GET ``path`` (absolute, or relative to the API base) as ``client_id`` with its certificate."""
    url = path if path.startswith("https://") else server.api_base_url + path
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    headers.update(kwargs.pop("headers", {}) or {})
    return requests.get(url, headers=headers, cert=server.cert(client_id), verify=server.ca_bundle,
                        timeout=timeout, **kwargs)


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded by ``timeout``); that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not reached in {timeout}s")
        time.sleep(interval)


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


class StatusClient:
    """A third party's view for fault tests: a client access token and ReadServiceStatus."""

    def __init__(self, server: Server, client_id: str = "00101") -> None:
        self.server, self.client_id = server, client_id
        self.token = self.fetch_token().json()["client_access_token"]

    def fetch_token(self) -> requests.Response:
        tp = self.server.third_party(self.client_id)
        return requests.post(f"{self.server.api_base_url}{TOKEN}",
                             params={"grant_type": "client_credentials"}, auth=(self.client_id, tp["client_secret"]),
                             cert=self.server.cert(self.client_id), verify=self.server.ca_bundle, timeout=10)

    def status(self) -> requests.Response:
        return requests.get(f"{self.server.api_base_url}{RESOURCE}/ReadServiceStatus",
                            headers={"Authorization": f"Bearer {self.token}"}, cert=self.server.cert(self.client_id),
                            verify=self.server.ca_bundle, timeout=10)
