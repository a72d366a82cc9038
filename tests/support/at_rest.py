"""What "private at rest" means for a data dir: shared by the in-process and the serve-level tests."""

from __future__ import annotations

import stat
from pathlib import Path

PRIVATE = ("mock-custodian.db", "mock-custodian.db-wal", "mock-custodian.db-shm", "server.json",
           "certs/ca-key.pem", "certs/intermediate-key.pem", "certs/server/key.pem")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(data_dir: Path, names: tuple[str, ...] = PRIVATE) -> None:
    """The folder 0700, every private file that exists 0600, every key 0600, and the database made."""
    assert mode(data_dir) == 0o700
    for name in names:
        path = data_dir / name
        if path.exists():
            assert mode(path) == 0o600, (name, oct(mode(path)))
    for key in (data_dir / "certs").rglob("key.pem"):
        assert mode(key) == 0o600, key
    assert (data_dir / "mock-custodian.db").exists()


def database_bytes(data_dir: Path) -> bytes:
    """The database, its WAL and shared memory, as stored: what an attacker with the files would read."""
    return b"".join(p.read_bytes() for p in data_dir.glob("mock-custodian.db*"))
