"""Ids are allocated by one atomic statement, so concurrent workers never hand out the same one (issue 12.3)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from mock_custodian.store.db import Database, next_id
from mock_custodian.store.models import SimMeta

THREADS = 8
ROUNDS = 5
CUSTOMERS = ("rivera", "harbor", "okafor")


def test_next_id_is_one_statement_and_starts_at_start(tmp_path: Any) -> None:
    database = Database(f"sqlite:///{tmp_path / 'ids.db'}")
    database.create_schema()
    with database.session() as db:
        assert [next_id(db, "thing", 100) for _ in range(3)] == [100, 101, 102]
    with database.session() as db:
        assert db.execute(select(SimMeta.value).where(SimMeta.key == "counter:thing")).scalar_one() == "102"
        assert next_id(db, "thing", 100) == 103


def test_next_id_from_many_threads_on_one_sqlite_file(tmp_path: Any) -> None:
    """Separate connections (as separate processes have) racing on one counter never repeat a value."""
    database = Database(f"sqlite:///{tmp_path / 'ids.db'}")
    database.create_schema()
    seen: list[int] = []
    lock = threading.Lock()

    def take(_: int) -> None:
        for _ in range(20):
            with database.session() as db:
                value = next_id(db, "race", 1)
            with lock:
                seen.append(value)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(take, range(THREADS)))
    assert sorted(seen) == list(range(1, THREADS * 20 + 1))


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


