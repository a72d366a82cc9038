"""The background checkpoint keeps SQLite's write-ahead log from growing under steady writes (issue 17)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from mock_custodian.store.db import start_checkpoints

WRITES = 3000


def _largest_log(tmp_path: Path, restart_at: int) -> int:
    """Frames the log file reached while one connection wrote row after row and another kept reading."""
    path = tmp_path / "wal.db"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x BLOB)")
    setup.commit()
    setup.close()
    stop = threading.Event()
    start_checkpoints(f"sqlite:///{path}", every_s=0.01, restart_at=restart_at, stop=stop)
    reading = threading.Event()

    def read() -> None:  # readers come and go all the time, as a server's requests do
        conn = sqlite3.connect(path, isolation_level=None)
        while not reading.wait(0.0005):
            conn.execute("SELECT count(*) FROM t").fetchone()
        conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    writer = sqlite3.connect(path, isolation_level=None, timeout=10)
    writer.execute("PRAGMA synchronous=NORMAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the background thread checkpoints
    try:
        for _ in range(WRITES):  # a commit, then a moment's work, as a request's own
            writer.execute("INSERT INTO t VALUES (zeroblob(3000))")  # about a page a commit
            time.sleep(0.0002)
        return Path(f"{path}-wal").stat().st_size // 4096  # before the last connection closes and removes it
    finally:
        reading.set()
        reader.join()
        stop.set()
        writer.close()


def test_the_log_starts_over_under_steady_writes(tmp_path: Path) -> None:
    assert _largest_log(tmp_path, restart_at=100) < WRITES // 2



def test_without_a_restart_the_log_grows(tmp_path: Path) -> None:
    assert _largest_log(tmp_path, restart_at=10**9) >= WRITES
