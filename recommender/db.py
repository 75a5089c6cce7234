"""Database helpers shared by the apps."""

import json
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from django.db import connection, transaction


def savepoint_if_in_transaction() -> AbstractContextManager:
    """Return a savepoint inside a transaction, else nothing (autocommit).

    Hot-path INSERTs that may hit a unique constraint need a savepoint only
    when an outer transaction would otherwise be broken by the error; in
    autocommit, skipping BEGIN/COMMIT saves a round trip per write.
    """
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def rows_insert(
    *,
    table: str,
    columns: list[tuple[str, str]],
    rows: list[list[object]],
    ignore_conflicts: bool = False,
    returning: str = "",
) -> list[tuple]:
    """INSERT many rows in one statement; return the ``returning`` columns.

    ``columns`` pairs each column with its PostgreSQL type (``"bigint"``,
    ``"jsonb"``…). On PostgreSQL every row travels inside one JSON parameter
    (``jsonb_array_elements``): the statement text is the same for any row
    count, so psycopg parses it once, and the rows are encoded by the C JSON
    encoder in one call. A ``VALUES`` list with a placeholder per value (what
    other databases get) costs more in psycopg's quoting than the scoring.
    ``ignore_conflicts`` adds ``ON CONFLICT DO NOTHING`` (those rows return
    nothing). Values must be in database form (``get_db_prep_save``), jsonb
    values as plain Python lists and dicts.
    """
    if not rows:
        return []
    names = ", ".join(connection.ops.quote_name(name) for name, _ in columns)
    if connection.vendor == "postgresql":
        picks = ", ".join(
            f"r->{i}" if kind == "jsonb" else f"(r->>{i})::{kind}"
            for i, (_, kind) in enumerate(columns)
        )
        source = f"SELECT {picks} FROM jsonb_array_elements(%s::jsonb) AS r"
        params: list[object] = [json.dumps(rows, default=json_value)]
    else:
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        source = "VALUES " + ", ".join([one] * len(rows))
        kinds = [kind for _, kind in columns] * len(rows)
        values = (value for row in rows for value in row)
        params = [
            json.dumps(value) if kind == "jsonb" else value
            for kind, value in zip(kinds, values, strict=True)
        ]
    sql = f"INSERT INTO {connection.ops.quote_name(table)} ({names}) {source}"
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()] if returning else []


def json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")
