"""The request log's retention rule: the newest ``request_log_max_rows`` rows are kept, older ones dropped.

A row per request grows without bound under a load test. The cap (default 1,000,000 rows, 0 = keep
all) counts rows, not age, so a frozen or rewound simulated clock cannot drop anything a test still
reads: a test reads the rows of its own calls, always among the newest. Pruning runs in each worker
every ``PRUNE_EVERY`` logged requests, one statement on the primary key.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from mock_custodian.store.db import Raw, Sql, raw_of

PRUNE_EVERY = 1000
COLUMNS = ("at", "surface", "method", "path", "query", "status", "client_id", "claimed_client_id",
           "certificate_sha256", "headers", "error", "reason", "parameters", "worker_pid", "real_at",
           "token_fingerprint", "token_kind", "retry_after", "chain_length")
_JSON = ("headers", "parameters")
_INSERT = Sql(
    f"INSERT INTO request_log ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})",
    postgresql=f"INSERT INTO request_log ({', '.join(COLUMNS)}) VALUES "
               f"({', '.join(f'CAST(:{c} AS JSON)' if c in _JSON else ':' + c for c in COLUMNS)})",
)
_PRUNE = Sql("DELETE FROM request_log WHERE id <= (SELECT MAX(id) FROM request_log) - :keep")


def prune(db: Session | Raw, keep_rows: int) -> int:
    """Drop every row but the newest ``keep_rows`` (by id); 0 keeps everything. The number dropped."""
    if keep_rows <= 0:
        return 0
    return raw_of(db).run(_PRUNE, {"keep": keep_rows}) or 0


def insert(db: Raw, row: dict[str, Any]) -> None:
    """One row (every name of ``COLUMNS``), a prebuilt statement on the driver connection: the log is
    written on every request and never read back by the writer, so neither the ORM nor Core earns its
    cost here (issue 17). JSON columns are stored as SQLAlchemy's JSON type stores them (``json.dumps``,
    None as ``null``), so the ORM reads them back unchanged."""
    values = dict(row)
    for name in _JSON:
        values[name] = json.dumps(values[name])
    db.run(_INSERT, values)
