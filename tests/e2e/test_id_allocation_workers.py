"""Concurrent consents and registrations across two real gunicorn workers never share an id (issue 12.3)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import support
from sqlalchemy import select

from mock_custodian import testing
from mock_custodian.pki import DevPKI
from mock_custodian.store.models import ThirdParty

THREADS = 8
ROUNDS = 5
CUSTOMERS = ("rivera", "harbor", "okafor")


def test_concurrent_consents_and_registrations_across_two_workers(tmp_path: Any) -> None:
    """8 threads x 5 rounds of consents (control API) and registrations (portal API): all ids distinct, no 5xx."""
    with testing.running(data_dir=tmp_path, workers=2) as server:
        dev = DevPKI(server.data_dir / "certs")
        certificates = {(n, r): dev.issue(f"race {n}-{r}").certificate.read_text()
                        for n in range(THREADS) for r in range(ROUNDS)}
        results: list[tuple[str, int, Any]] = []
        lock = threading.Lock()

        def work(n: int) -> None:
            for round_ in range(ROUNDS):
                consent = requests.post(
                    f"{server.portal_base_url}/__sim/authorizations",
                    json={"customer": CUSTOMERS[(n + round_) % 3], "client_id": "00101", "exchange": False},
                    headers={"X-Control-Token": server.control_token}, verify=server.ca_bundle, timeout=60)
                registration = requests.post(
                    f"{server.portal_base_url}/portal/api/registrations",
                    json=_registration(n, round_, certificates[n, round_]), verify=server.ca_bundle, timeout=60)
                with lock:
                    results.append(("consent", consent.status_code, consent.json()))
                    results.append(("registration", registration.status_code, registration.json()))

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(work, range(THREADS)))
        statuses = [(kind, status, body) for kind, status, body in results if status >= 300]
        assert not statuses, statuses[:3]
        authorization_ids = [body["authorization_id"] for kind, _, body in results if kind == "consent"]
        assert len(authorization_ids) == THREADS * ROUNDS == len(set(authorization_ids))
        names = [body["portal_username"] for kind, _, body in results if kind == "registration"]
        database = support.database(server)
        with database.session() as db:
            rows = db.execute(select(ThirdParty.client_id, ThirdParty.application_information_id)
                              .where(ThirdParty.portal_username.in_(names))).all()
        database.dispose()
        assert len(rows) == THREADS * ROUNDS
        assert len({client_id for client_id, _ in rows}) == len({info for _, info in rows}) == THREADS * ROUNDS


def _registration(n: int, round_: int, certificate: str) -> dict[str, Any]:
    name = f"Race {n}-{round_}"
    user = f"race-{n}-{round_}"
    return {
        "user_type": "Standard User", "legal_name": f"{name} LLC", "display_name": name, "tax_id": "931234567",
        "business_contact": {"name": "Bea", "email": f"{user}@biz.example", "phone": "415-555-0100"},
        "technical_contact": {"name": "Tim", "email": f"t-{user}@biz.example", "phone": "415-555-0101"},
        "portal_username": user, "portal_password": "race-password", "security_question": "q",
        "security_answer": "a", "description": "Race", "phone": "415-555-0102",
        "third_party_portal_uri": "https://race.example/start", "redirect_uri": "https://race.example/cb",
        "notification_uri": "https://race.example/notify", "data_groups": ["Basic", "Usage"],
        "history_months": 36, "visibility": True, "notify_daily": False, "terms_accepted": True,
        "certificate": certificate,
    }
