"""Engine, sessions and the few shared-state primitives (clock row, id counters).

SQLite runs in WAL mode with a busy timeout so several gunicorn workers and a job worker can share
one file; any other SQLAlchemy URL (PostgreSQL) works unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import BigInteger, Engine, Text, cast, create_engine, event, make_url, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mock_custodian.clock import Clock, ClockState
from mock_custodian.store import at_rest
from mock_custodian.store.models import Base, SimClock, SimMeta

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
        """Create missing tables and columns; upgrade an older database's plain-text secrets (then scrub).

        Another process may create the same tables at the same moment (serve and a worker at first
        start): "already exists" then means the work is done; check again rather than fail.
        """
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                Base.metadata.create_all(self.engine)
                break
            except OperationalError as exc:
                if "already exists" not in str(exc) or attempt == SCHEMA_ATTEMPTS - 1:
                    raise
        from mock_custodian.store.migrate import add_missing_columns

        add_missing_columns(self.engine)  # an older data dir's tables gain the newer columns
        with self.session() as db:
            if db.get(SimClock, 1) is None:
                db.add(SimClock(id=1, offset_s=0.0, frozen_at=None))
                at_rest.mark_current(db)
                upgraded = False
            else:
                upgraded = at_rest.upgrade(self.engine, db)
        if upgraded:
            at_rest.scrub(self.engine)

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
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            at_rest.private_sqlite_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed: no deleted secret lingers
            cur.close()

        return engine
    if url.startswith(("postgresql://", "postgres://")):  # psycopg 3 (the `postgres` extra), not psycopg2
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url, pool_pre_ping=True)


MAX_ROW_ID = 2**63 - 1  # the largest INTEGER SQLite and PostgreSQL's BIGINT hold


def row_id(text: object) -> int | None:
    """A path segment as a stored integer id, or None when no row can have it (not ASCII digits, or
    beyond what the database's INTEGER holds): callers answer 404, never an overflow."""
    value = str(text)
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number <= MAX_ROW_ID else None


def clear_world(db: Session) -> None:
    """Delete every row (ids start again) inside the caller's transaction; the clock runs on real time.

    A reset must never leave a moment without tables: a worker or job reading meanwhile sees the old
    world or the new one (dropping and recreating tables gave them "no such table" errors).
    """
    tables = list(reversed(Base.metadata.sorted_tables))
    if db.get_bind().dialect.name == "postgresql":
        names = ", ".join(f'"{table.name}"' for table in tables)
        db.execute(sql_text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.execute(table.delete())
    db.add(SimClock(id=1, offset_s=0.0, frozen_at=None))
    at_rest.mark_current(db)
    db.flush()


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
    """Allocate the next value of a platform-wide counter (AuthorizationID never reused, client_id).

    One atomic ``UPDATE ... RETURNING`` (after an idempotent insert of the counter row), so several
    processes sharing the database never hand out the same value: on SQLite a read-then-write would run
    the read outside any transaction and lose updates.
    """
    key = f"counter:{counter}"
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.execute(insert(SimMeta).values(key=key, value=str(start - 1)).on_conflict_do_nothing(index_elements=["key"]))
    value = db.execute(
        update(SimMeta)
        .where(SimMeta.key == key)
        .values(value=cast(cast(SimMeta.value, BigInteger) + 1, Text))
        .returning(SimMeta.value)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(value)
