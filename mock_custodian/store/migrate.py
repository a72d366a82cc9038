"""Columns a newer version added to an existing table: ``create_all`` makes missing tables, not columns.

A data dir created by an older version keeps its world; each missing nullable column is added with
``ALTER TABLE ... ADD COLUMN`` (SQLite and PostgreSQL both accept it), and its index created.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from mock_custodian.store.models import Base

# Tables whose later columns are all nullable, so adding them to old rows is safe.
EVOLVED_TABLES = ("request_log", "packages")
# Tables that gained an index only (no column): an older data dir's table gets it created.
INDEXED_TABLES = ("meters",)


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the model's columns an existing table lacks; returns ``table.column`` names added."""
    inspector = inspect(engine)
    present_tables = set(inspector.get_table_names())
    added: list[str] = []
    for name in EVOLVED_TABLES:
        if name not in present_tables:
            continue
        table = Base.metadata.tables[name]
        existing = {c["name"] for c in inspector.get_columns(name)}
        missing = [c for c in table.columns if c.name not in existing and c.nullable]
        if missing:
            with engine.begin() as conn:
                for column in missing:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE {name} ADD COLUMN "{column.name}" {kind}'))
                    added.append(f"{name}.{column.name}")
        indexed = {index["name"] for index in inspector.get_indexes(name)}
        for index in table.indexes:
            if index.name not in indexed:
                index.create(engine, checkfirst=True)
    for name in INDEXED_TABLES:
        if name in present_tables:
            for index in Base.metadata.tables[name].indexes:
                index.create(engine, checkfirst=True)
    return added
