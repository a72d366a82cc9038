"""Secrets at rest: private file modes for the data directory, and upgrading a database that kept
bearer values and passwords in plain text (see ``store.hashed`` for what is kept instead).

The data directory is 0700 and every private file in it 0600 (the database and its WAL/SHM, keys,
``server.json``, packages), whether the directory is new or was made by an older version. Public
material (the CA bundle and certificates) keeps its mode: ``/__sim/ca.pem`` and ``mock-custodian
credentials`` hand the CA to another container.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import Engine, inspect, select, text, update
from sqlalchemy.orm import Session

from mock_custodian.redaction import redacted_query
from mock_custodian.store.hashed import ScenarioPasswords, display_prefix, hash_password, is_password_hash, token_key
from mock_custodian.store.models import (
    AsyncJob,
    AuthorizationCode,
    Customer,
    CustomerSession,
    PortalSession,
    RequestLog,
    SimMeta,
    ThirdParty,
    Token,
)

# Files anyone may read: certificates (never keys) and the CA bundle.
PUBLIC_NAMES = {"ca.pem", "intermediate.pem", "cert.pem", "chain.pem", "names.txt"}
SECRETS_MARKER = "secrets_at_rest"
SECRETS_VERSION = "1"


def protect_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` 0700 (creating it) and every private file under it 0600."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for path in data_dir.rglob("*"):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and path.name not in PUBLIC_NAMES and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(0o600)


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (its -wal and -shm inherit the mode), or fix its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Only when missing: closing a descriptor of an open database would drop every SQLite lock this
        # process holds on it (POSIX record locks belong to the process, not the descriptor).
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        if candidate.exists() and stat.S_IMODE(candidate.stat().st_mode) & 0o077:
            candidate.chmod(0o600)


def mark_current(db: Session) -> None:
    """A database created by this version keeps secrets hashed from the start."""
    if db.get(SimMeta, SECRETS_MARKER) is None:
        db.add(SimMeta(key=SECRETS_MARKER, value=SECRETS_VERSION))


def upgrade(engine: Engine, db: Session) -> bool:
    """Hash what an older version kept in plain text; True when anything was upgraded (then scrub)."""
    _add_columns(engine)
    if db.get(SimMeta, SECRETS_MARKER) is not None:
        return False
    for token in db.execute(select(Token.token)).scalars().all():
        if not _is_key(token):
            db.execute(update(Token).where(Token.token == token).values(token=token_key(token),
                                                                         prefix=display_prefix(token)))
    for code in db.execute(select(AuthorizationCode.code)).scalars().all():
        if not _is_key(code):
            db.execute(update(AuthorizationCode).where(AuthorizationCode.code == code)
                       .values(code=token_key(code), prefix=display_prefix(code)))
    for model in (CustomerSession, PortalSession):
        for session_id in db.execute(select(model.session_id)).scalars().all():
            if not _is_key(session_id):
                db.execute(update(model).where(model.session_id == session_id).values(session_id=token_key(session_id)))
    scenario_password = ScenarioPasswords()
    for customer_id, password in db.execute(select(Customer.id, Customer.password)).all():
        if not is_password_hash(password):
            db.execute(update(Customer).where(Customer.id == customer_id).values(password=scenario_password(password)))
    for tp_id, password in db.execute(select(ThirdParty.id, ThirdParty.portal_password)).all():
        if password and not is_password_hash(password):
            db.execute(update(ThirdParty).where(ThirdParty.id == tp_id).values(portal_password=hash_password(password)))
    for model, column in ((RequestLog, RequestLog.query), (AsyncJob, AsyncJob.request_query)):
        for row_id, query in db.execute(select(model.id, column).where(column != "")).all():
            shortened = redacted_query(query or "")
            if shortened != query:
                db.execute(update(model).where(model.id == row_id).values({column.key: shortened}))
    db.add(SimMeta(key=SECRETS_MARKER, value=SECRETS_VERSION))
    return True


def scrub(engine: Engine) -> None:
    """Rewrite a SQLite file so no freed page still holds a plain-text secret (secure_delete, VACUUM,
    then truncate the WAL)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("PRAGMA secure_delete=ON")
        conn.exec_driver_sql("VACUUM")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _is_key(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _add_columns(engine: Engine) -> None:
    """Columns this version added to existing tables, and wider password columns on PostgreSQL."""
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in ("tokens", "authorization_codes"):
            if "prefix" not in {c["name"] for c in inspector.get_columns(table)}:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN prefix VARCHAR(12)"))
        if engine.dialect.name == "postgresql":
            for table, column in (("customers", "password"), ("third_parties", "portal_password")):
                found = next(c for c in inspector.get_columns(table) if c["name"] == column)
                if (getattr(found["type"], "length", None) or 255) < 255:
                    conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR(255)"))
