"""Inserting many rows of one table at once, as fast as each database allows."""

from __future__ import annotations

from sqlalchemy import Table

from core.extensions import db

#: Rows per statement on PostgreSQL (one array per column each time).
PG_PAGE = 5000


def insert_rows(table: Table, rows: list[dict]) -> int:
    """Insert `rows` (dicts with the same keys) into `table` in the session's transaction;
    the count inserted.

    On PostgreSQL one statement per PG_PAGE rows with each column sent as one array
    (INSERT … SELECT FROM unnest): measured on 20,000 claim lines (bench/claims.py), 1.2 s
    against 3.0 s through SQLAlchemy's insertmanyvalues, which compiles 1,000-row pages of a
    dozen bound values a row that the server then parses again. Elsewhere Core's executemany.
    """
    if not rows:
        return 0
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return len(rows)
    names = list(rows[0])
    dialect = connection.dialect
    types = [table.c[name].type.compile(dialect=dialect) for name in names]
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) SELECT * FROM unnest("
        + ", ".join(f"%s::{t}[]" for t in types)
        + ")"
    )
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for start in range(0, len(rows), PG_PAGE):
            page = rows[start : start + PG_PAGE]
            cursor.execute(sql, [[row[n] for row in page] for n in names])
    finally:
        cursor.close()
    return len(rows)
