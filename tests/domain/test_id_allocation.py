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


