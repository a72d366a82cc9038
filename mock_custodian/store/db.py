"""Engine, sessions and the few shared-state primitives (clock row, id counters).

SQLite runs in WAL mode with a busy timeout so several gunicorn workers and a job worker can share
one file; any other SQLAlchemy URL (PostgreSQL) works unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..clock import Clock, ClockState
from .models import Base, SimClock, SimMeta

SCHEMA_ATTEMPTS = 3
_CLOCK_SQL = "SELECT offset_s, frozen_at FROM sim_clock WHERE id = 1"


class Database:
    """One engine per process; recreate after fork (``dispose``) so no connection is shared."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            self.engine.dispose(close=False)
            self._pid = os.getpid()

    def create_schema(self) -> None:
        # Another process may create the same tables at the same moment (a reset's reload while the job
        # worker restarts): "already exists" then means the work is done; check again rather than fail.
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                Base.metadata.create_all(self.engine)
                break
            except OperationalError as exc:
                if "already exists" not in str(exc) or attempt == SCHEMA_ATTEMPTS - 1:
                    raise
        with self.session() as db:
            if db.get(SimClock, 1) is None:
                db.add(SimClock(id=1, offset_s=0.0, frozen_at=None))

        from .migrate import add_missing_columns

        add_missing_columns(self.engine)  # an older data dir's tables gain the newer columns

    def drop_schema(self) -> None:
        Base.metadata.drop_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A short transaction: commit on success, roll back on any error."""
        self._check_fork()
        db = self.sessions()
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            db.close()

    # --- clock -----------------------------------------------------------------------------
    def read_row(self, sql: str) -> tuple | None:
        """One row of a fixed, parameterless query on a pooled driver connection (a committed read).

        For the few reads every request makes (the clock, the service status): without the ORM's and
        Core's per-statement work, which cost more than the read itself (issue 17).
        """
        self._check_fork()
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(sql)
                row = cursor.fetchone()
            finally:
                cursor.close()
            conn.commit()  # end the read's transaction where the driver opened one (PostgreSQL)
            return None if row is None else tuple(row)
        finally:
            conn.close()

    def read_clock_state(self) -> ClockState:
        row = self.read_row(_CLOCK_SQL)
        if row is None:
            return ClockState()
        return ClockState(float(row[0] or 0.0), None if row[1] is None else float(row[1]))

    def write_clock_state(self, state: ClockState) -> None:
        with self.session() as db:
            row = db.get(SimClock, 1) or SimClock(id=1)
            row.offset_s = state.offset_s
            row.frozen_at = state.frozen_at
            db.add(row)

    def clock(self) -> Clock:
        return Clock(self.read_clock_state)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def meta_get(db: Session, key: str) -> str | None:
    row = db.get(SimMeta, key)
    return row.value if row else None


def meta_set(db: Session, key: str, value: str) -> None:
    row = db.get(SimMeta, key)
    if row is None:
        db.add(SimMeta(key=key, value=value))
    else:
        row.value = value


def next_id(db: Session, counter: str, start: int) -> int:
    """Allocate the next value of a platform-wide counter (AuthorizationID never reused)."""
    query = select(SimMeta).where(SimMeta.key == f"counter:{counter}")
    if db.bind is not None and db.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    row = db.execute(query).scalar_one_or_none()
    if row is None:
        value = start
        db.add(SimMeta(key=f"counter:{counter}", value=str(value)))
    else:
        value = int(row.value) + 1
        row.value = str(value)
    db.flush()
    return value
