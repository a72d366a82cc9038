"""In-process traffic for the integration report's tests: the real app through Flask's test client.

The TLS layer is replaced by what it hands the app (surface, verified client certificate), and the
wall clock by a fake one the test moves, so pacing can be judged without sleeping.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mock_custodian import tls
from mock_custodian.app import create_app
from mock_custodian.cli.common import open_data_dir
from mock_custodian.clock import Clock
from mock_custodian.domain.report import report_for
from mock_custodian.settings import load_settings
from mock_custodian.store.models import ThirdParty, ThirdPartyCertificate

R = "/GreenButtonConnect/espi/1_1/resource"
TOKEN = "/datacustodian/oauth/v2/token"
CONTROL = "control-token-for-tests"


class WallClock:
    """The fake real time the app's clock reads: ``tick(s)`` is time passing between calls."""

    def __init__(self, start: float | None = None) -> None:
        self.t = float(int(time.time())) if start is None else start  # the world was loaded at real now

    def __call__(self) -> float:
        return self.t

    def tick(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class _Socket:
    """Stands in for gunicorn's TLS socket: the surface and the client certificate it verified."""

    surface: str
    peer_certificate: tls.PeerCertificate


class Traffic:
    """One app and database; calls as a registered third party (``client_id``) with its certificate."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        values = {"data_dir": data_dir, "control_token": CONTROL, "rate_limits_enabled": False,
                  "job_worker": False} | settings
        self.settings = load_settings(values, environ={})
        self.database = open_data_dir(self.settings, create=True).database
        self.app = create_app(self.settings, self.database)
        self.wall = WallClock()
        self.runtime = self.app.extensions["mock_custodian"]
        self.runtime.clock = Clock(self.database.read_clock_state, self.wall)
        self.client = self.app.test_client()
        self._load_credentials()

    def _load_credentials(self) -> None:
        """Client secrets and certificate fingerprints (a reset issues new secrets)."""
        with self.database.session() as db:
            rows = db.execute(select(ThirdParty.client_id, ThirdParty.client_secret,
                                     ThirdPartyCertificate.fingerprint_sha256)
                              .join(ThirdPartyCertificate, ThirdPartyCertificate.third_party_id == ThirdParty.id)).all()
        self.secrets = {client_id: secret for client_id, secret, _ in rows}
        self.fingerprints = {client_id: fp for client_id, _, fp in rows}

    def _environ(self, client_id: str | None, surface: str, chain_length: int) -> dict[str, Any]:
        peer = tls.NO_CERTIFICATE
        if client_id is not None:
            peer = tls.PeerCertificate(True, True, self.fingerprints[client_id], f"CN={client_id}",
                                       chain_length=chain_length)
        return {"gunicorn.socket": _Socket(surface, peer)}

    def token(self, client_id: str, tick: float = 0.0) -> str:
        """grant_type=client_credentials in the form body, as production clients send it."""
        response = self.post(TOKEN, client_id, data={"grant_type": "client_credentials"}, tick=tick,
                             basic=True)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["client_access_token"]

    def refresh(self, client_id: str, refresh_token: str, tick: float = 0.0) -> Any:
        return self.post(TOKEN, client_id, data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         tick=tick, basic=True)

    def post(self, path: str, client_id: str, *, data: dict[str, str] | None = None, tick: float = 0.0,
             basic: bool = False, bearer: str | None = None) -> Any:
        self.wall.tick(tick)
        headers = {}
        if basic:
            raw = f"{client_id}:{self.secrets[client_id]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.client.post(path, data=data or {}, headers=headers,
                                environ_base=self._environ(client_id, "api", 2))

    def get(self, path: str, client_id: str, bearer: str | None, *, tick: float = 0.0, chain_length: int = 2,
            query: dict[str, str] | None = None) -> Any:
        self.wall.tick(tick)
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return self.client.get(path, query_string=query, headers=headers,
                               environ_base=self._environ(client_id, "api", chain_length))

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = self.client.open(f"/__sim{path}", method=method, json=json,
                                    headers={"X-Control-Token": CONTROL},
                                    environ_base=self._environ(None, "portal", 0))
        assert response.status_code < 300, response.get_data(as_text=True)
        if path == "/reset":
            self._load_credentials()
        return response.get_json()

    def authorize(self, customer: str, client_id: str) -> dict[str, Any]:
        """A customer authorization and its code exchange, without the browser."""
        return self.control("POST", "/authorizations", {"customer": customer, "client_id": client_id})

    def report(self, **filters: Any) -> dict[str, Any]:
        return report_for(self.database, self.settings, self.runtime.clock.epoch(), **filters)

    def rules(self, **filters: Any) -> dict[str, dict[str, Any]]:
        """Findings by rule id (one client's traffic at a time in these tests)."""
        return {f["rule"]: f for f in self.report(**filters)["findings"]}
