"""Engine, sessions and the few shared-state primitives (clock row, id counters).

SQLite runs in WAL mode with a busy timeout so several gunicorn workers and a job worker can share
one file; any other SQLAlchemy URL (PostgreSQL) works unchanged.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Engine, Text, cast, create_engine, event, make_url, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mock_custodian.clock import Clock, ClockState
from mock_custodian.store import at_rest
from mock_custodian.store.models import Base, SimClock, SimMeta

SCHEMA_ATTEMPTS = 3
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Sql:
    """A fixed statement with ``:name`` parameters, rendered once for each driver's parameter style.

    The hot path of every API request (issue 17) runs a dozen small statements; through SQLAlchemy each
    cost ten times what the database spends on it, so these run on the driver connection directly.
    SQLite's driver takes ``:name`` as written; PostgreSQL's (psycopg) takes ``%(name)s``, from
    ``postgresql`` where that dialect needs other SQL.
    """

    __slots__ = ("named", "pyformat", "writes")

    def __init__(self, sql: str, postgresql: str | None = None) -> None:
        self.named = sql
        self.pyformat = _NAMED.sub(r"%(\1)s", (postgresql or sql).replace("%", "%%"))
        self.writes = sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")

    def __repr__(self) -> str:
        return f"Sql({self.named!r})"


BUSY_TIMEOUT_S = 30.0  # how long a statement waits for another connection's write lock


def _execute(conn: Any, sql: str, params: Any, patient: bool) -> Any:
    """The cursor after running ``sql``; on an impatient SQLite connection, SQLite's wait done here instead.

    SQLite's own busy handler sleeps 1, 2, 5, 10 ms ... between tries for a lock another connection holds:
    on the hot path, where a write transaction lasts well under a millisecond, that first sleep alone
    cost more than the request (issue 17). An impatient connection (busy timeout 0) fails at once and
    this loop tries again after 50 us, doubling up to 2 ms, for at most :data:`BUSY_TIMEOUT_S`. Only a
    statement outside a transaction is retried: a read, or the first write, whose implicit BEGIN is
    rolled back first; inside a write transaction the lock is already held.
    """
    if patient:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        return cursor
    delay, deadline = 50e-6, None
    while True:
        outside = not conn.in_transaction
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            return cursor
        except sqlite3.OperationalError as exc:
            cursor.close()
            if not outside or getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            if conn.in_transaction:
                conn.rollback()
            now = time.monotonic()
            deadline = deadline or now + BUSY_TIMEOUT_S
            if now > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.002)


class Raw:
    """A driver (DBAPI) connection running prebuilt :class:`Sql` statements, inside whatever transaction
    it is in: a :meth:`Database.transaction` or :meth:`Database.statements` block, or an ORM session's
    (:func:`raw_of`).

    ``patient``: the connection waits for locks itself (busy timeout); else :func:`_execute` does.
    ``begin_on_write``: on an autocommit connection (the hot path's SQLite pool), the first write of a
    :meth:`Database.transaction` block opens the transaction (``BEGIN IMMEDIATE``, which takes the write
    lock, retried like any statement); in a :meth:`Database.statements` block each statement commits by
    itself.
    """

    __slots__ = ("conn", "dialect", "patient", "begin_on_write", "_pyformat")

    def __init__(self, conn: Any, dialect: str, patient: bool = True) -> None:
        self.conn = conn
        self.dialect = dialect
        self.patient = patient
        self.begin_on_write = False
        self._pyformat = dialect != "sqlite"

    def execute(self, stmt: Sql, params: dict[str, Any] | None = None) -> Any:
        """The driver's cursor after running ``stmt`` (close it, or use :meth:`one` / :meth:`all` / :meth:`run`)."""
        if stmt.writes and self.begin_on_write and not self.conn.in_transaction:
            _execute(self.conn, "BEGIN IMMEDIATE", (), self.patient).close()
        return _execute(self.conn, stmt.pyformat if self._pyformat else stmt.named, params or {}, self.patient)

    def end(self, commit: bool) -> None:
        """Commit or roll back what the block left open (nothing, for autocommit statements)."""
        if commit:
            self.conn.commit()
        else:
            self.conn.rollback()

    def one(self, stmt: Sql, params: dict[str, Any] | None = None) -> tuple | None:
        cursor = self.execute(stmt, params)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    def all(self, stmt: Sql, params: dict[str, Any] | None = None) -> list[tuple]:
        cursor = self.execute(stmt, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def run(self, stmt: Sql, params: dict[str, Any] | None = None) -> int:
        """Run a statement that returns no rows; the number of rows it changed."""
        cursor = self.execute(stmt, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()


def raw_of(db: Session | Raw) -> Raw:
    """The driver connection under an ORM session's transaction (statements run inside it), or ``db`` itself."""
    if isinstance(db, Raw):
        return db
    conn = db.connection()
    return Raw(conn.connection.driver_connection, conn.dialect.name)


_CLOCK_SQL = "SELECT offset_s, frozen_at FROM sim_clock WHERE id = 1"


class _Kept:
    """A SQLite connection detached from the pool, reached as a pooled one is (``driver_connection``)."""

    __slots__ = ("driver_connection", "__weakref__")

    def __init__(self, driver: Any) -> None:
        self.driver_connection = driver


class Database:
    """One engine per process; recreate after fork (``dispose``) so no connection is shared."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Prebuilt statements (transaction, statements, read_row, hold) borrow the same pool; on SQLite
        # the borrowed connection is made impatient for the while (autocommit, busy timeout 0: _execute
        # waits for locks instead) and patient again before it goes back for the ORM.
        self._patient = not url.startswith("sqlite")
        self._pid = os.getpid()
        self._held = threading.local()  # this thread's connection between hold() and release()
        self._kept: weakref.WeakSet[_Kept] = weakref.WeakSet()  # each thread's own SQLite connection
        self._inherited: list[Any] = []

    def dispose(self) -> None:
        """Close every connection: the pool's and each thread's own (before the file is replaced, or a fork).

        Only when no request is running on this database (a test restoring a snapshot, a command
        handing over to the server it starts).
        """
        self.engine.dispose()
        kept, self._kept = list(self._kept), weakref.WeakSet()
        self._held = threading.local()
        for conn in kept:
            conn.driver_connection.close()

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            self.engine.dispose(close=False)
            self._inherited.append((self._held, self._kept))  # the parent's connections: never closed here
            self._held = threading.local()
            self._kept = weakref.WeakSet()
            self._pid = os.getpid()

    def hold(self) -> None:
        """Keep one driver connection for this thread until :meth:`release`.

        A request's :meth:`transaction` blocks and :meth:`read_row` reads then share it: one connection
        per request instead of one pool checkout per block (issue 17). The connection holds no
        transaction between blocks, so the handler's ORM sessions (other connections) never wait on it.
        On SQLite it is the thread's own connection, kept across requests (:meth:`_thread_connection`).
        """
        self._check_fork()
        held = self._held
        if getattr(held, "conn", None) is None:
            if self._patient:
                conn = self._borrow()
                held.raw = Raw(conn.driver_connection, self.engine.dialect.name, self._patient)
            else:
                conn, held.raw = self._thread_connection()
            held.conn = conn
            held.depth = 0

    def release(self) -> None:
        """End what the held connection left open; a pooled one goes back to the pool."""
        held = self._held
        conn = getattr(held, "conn", None)
        if conn is None:
            return
        held.conn = None
        if self._patient:
            held.raw = None
            conn.close()  # back to the pool (PostgreSQL)
        elif conn.driver_connection.in_transaction:
            conn.driver_connection.rollback()

    def _thread_connection(self) -> tuple[Any, Raw]:
        """This thread's own SQLite connection for prebuilt statements, made once and kept.

        Taken from the pool once and detached from it: impatient and autocommit for good, so a request
        pays neither a pool checkout and check-in nor the two statements that switched a pooled
        connection's busy handling there and back (issue 17). It closes when its thread ends.
        """
        held = self._held
        kept = getattr(held, "own", None)
        if kept is None:
            pooled = self._borrow()
            pooled.detach()
            conn = _Kept(pooled.dbapi_connection)
            self._kept.add(conn)
            kept = held.own = (conn, Raw(conn.driver_connection, self.engine.dialect.name, patient=False))
        return kept

    def _borrow(self) -> Any:
        """A pooled connection for prebuilt statements (made impatient and autocommit on SQLite)."""
        conn = self.engine.raw_connection()
        if not self._patient:
            try:
                driver = conn.driver_connection
                driver.execute("PRAGMA busy_timeout=0").close()
                driver.isolation_level = None
            except BaseException:
                conn.close()
                raise
        return conn

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

    def transaction(self) -> AbstractContextManager[Raw]:
        """A short transaction on a pooled driver connection, for prebuilt :class:`Sql` statements.

        Commit on success, roll back on any error. The transaction opens at the first write (reads
        before it are committed reads), as under a session. On a connection this thread holds
        (:meth:`hold`), a block inside another block joins the outer one.
        """
        return self._block(begin_on_write=True)

    def statements(self) -> AbstractContextManager[Raw]:
        """Like :meth:`transaction`, but on SQLite each statement commits by itself (issue 17).

        For the hot path's blocks whose writes are single statements (the rate count, a token, the
        request-log row): the write lock is then held only inside SQLite, never across the interpreter's
        scheduling of other threads between statements. Elsewhere (PostgreSQL) it is a transaction.
        """
        return self._block(begin_on_write=False)

    @contextmanager
    def _block(self, begin_on_write: bool) -> Iterator[Raw]:
        self._check_fork()
        held = getattr(self._held, "conn", None)
        if held is None and not self._patient:  # SQLite: the thread's own connection, held for the block
            self.hold()
            try:
                with self._block(begin_on_write) as raw:
                    yield raw
            finally:
                self.release()
            return
        if held is not None:
            raw = self._held.raw
            outermost = self._held.depth == 0
            saved = raw.begin_on_write
            if outermost:
                raw.begin_on_write = begin_on_write and not self._patient
            self._held.depth += 1
            try:
                yield raw
                if outermost:
                    raw.end(commit=True)
            except BaseException:
                if outermost:
                    raw.end(commit=False)
                raise
            finally:
                self._held.depth -= 1
                raw.begin_on_write = saved
            return
        conn = self._borrow()
        try:
            raw = Raw(conn.driver_connection, self.engine.dialect.name, self._patient)
            try:
                yield raw
                raw.end(commit=True)
            except BaseException:
                raw.end(commit=False)
                raise
        finally:
            conn.close()  # back to the pool (PostgreSQL)

    # --- clock -----------------------------------------------------------------------------
    def read_row(self, sql: str) -> tuple | None:
        """One row of a fixed, parameterless query on a pooled driver connection (a committed read).

        For the few reads every request makes (the clock, the service status): without the ORM's and
        Core's per-statement work, which cost more than the read itself (issue 17).
        """
        self._check_fork()
        held = getattr(self._held, "conn", None)
        if held is None and not self._patient:
            held = self._thread_connection()[0]  # SQLite: autocommit, no transaction to end
        conn = held if held is not None else self._borrow()
        try:
            cursor = _execute(conn.driver_connection, sql, (), self._patient)
            try:
                row = cursor.fetchone()
            finally:
                cursor.close()
            if self._patient and (held is None or self._held.depth == 0):
                conn.commit()  # end the read's transaction where the driver opened one (PostgreSQL)
            return None if row is None else tuple(row)
        finally:
            if held is None:
                conn.close()  # back to the pool (PostgreSQL)

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
        # A request thread holds one connection (Database.hold) and may open a session besides: room for
        # two per thread of a worker (8 by default) without waiting on the pool.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed: no deleted secret lingers
            cur.execute(f"PRAGMA wal_autocheckpoint={_checkpoint_pages}")
            cur.close()

        return engine
    if url.startswith(("postgresql://", "postgres://")):  # psycopg 3 (the `postgres` extra), not psycopg2
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url, pool_pre_ping=True, max_overflow=20)


# SQLite's own default: a commit that finds the write-ahead log past this many pages copies it into the
# database file (and syncs both) before it returns. A server worker moves that off its requests
# (start_checkpoints) and keeps a larger threshold only as a backstop.
_checkpoint_pages = 1000
BACKSTOP_CHECKPOINT_PAGES = 10000  # about 40 MB of log


# Past this many frames in the write-ahead log, the background checkpoint also makes the next writer
# start the log over (RESTART), waiting at most RESTART_WAIT_MS for readers (see start_checkpoints).
RESTART_AT_FRAMES = 2000
RESTART_WAIT_MS = 50


def start_checkpoints(url: str, every_s: float = 0.5, restart_at: int = RESTART_AT_FRAMES,
                      stop: threading.Event | None = None) -> threading.Thread | None:
    """Checkpoint a SQLite database's write-ahead log from a background thread of this process.

    Measured on the request path (issue 17): an automatic checkpoint every 1,000 pages cost a request
    about as much as the rest of its commit, since the commit that crosses the threshold copies the log
    and syncs. A PASSIVE checkpoint never waits on readers or writers, so requests go on meanwhile;
    connections opened afterwards checkpoint by themselves only past ``BACKSTOP_CHECKPOINT_PAGES``.

    A PASSIVE checkpoint alone never lets the log start over under steady writes: SQLite rewinds the
    log only for a writer that begins when every frame is copied back, and by the time a checkpoint
    ends new frames have arrived. The log then grew by about 30 MB a second under load, every page
    lookup searched a longer index, and past the backstop every commit of every connection ran a
    checkpoint of its own with two syncs. So once the log holds ``restart_at`` frames, the thread
    asks for a RESTART checkpoint: it holds new writers back (they wait as for any lock) until the
    readers of older frames are done, at most ``RESTART_WAIT_MS``, and the next writer starts the log
    from its beginning. The thread runs until ``stop`` is set (a server worker's, for its life). None
    for any other database.
    """
    global _checkpoint_pages
    if not url.startswith("sqlite"):
        return None
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    _checkpoint_pages = BACKSTOP_CHECKPOINT_PAGES
    halt = stop or threading.Event()

    def run() -> None:
        conn = sqlite3.connect(path, timeout=RESTART_WAIT_MS / 1000, check_same_thread=False)
        try:
            while not halt.wait(every_s):
                try:
                    _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= restart_at:
                        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                except sqlite3.Error:
                    pass  # busy or the file replaced: the next round tries again
        finally:
            conn.close()

    thread = threading.Thread(target=run, name="wal-checkpoint", daemon=True)
    thread.start()
    return thread


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
