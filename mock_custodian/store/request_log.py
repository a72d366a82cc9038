"""The request log's retention rule: the newest ``request_log_max_rows`` rows are kept, older ones dropped.

A row per request grows without bound under a load test. The cap (default 1,000,000 rows, 0 = keep
all) counts rows, not age, so a frozen or rewound simulated clock cannot drop anything a test still
reads: a test reads the rows of its own calls, always among the newest. Pruning runs in each worker
every ``PRUNE_EVERY`` logged requests, one statement on the primary key.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

PRUNE_EVERY = 1000
_PRUNE = text("DELETE FROM request_log WHERE id <= (SELECT MAX(id) FROM request_log) - :keep")


def prune(db: Session, keep_rows: int) -> int:
    """Drop every row but the newest ``keep_rows`` (by id); 0 keeps everything. The number dropped."""
    if keep_rows <= 0:
        return 0
    return db.execute(_PRUNE, {"keep": keep_rows}).rowcount or 0
