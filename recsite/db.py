"""Database helpers shared by the apps."""

from contextlib import AbstractContextManager, nullcontext

from django.db import connection, transaction


def savepoint_if_in_transaction() -> AbstractContextManager:
    """Return a savepoint inside a transaction, else nothing (autocommit).

    Hot-path INSERTs that may hit a unique constraint need a savepoint only
    when an outer transaction would otherwise be broken by the error; in
    autocommit, skipping BEGIN/COMMIT saves a round trip per write.
    """
    return transaction.atomic() if connection.in_atomic_block else nullcontext()
