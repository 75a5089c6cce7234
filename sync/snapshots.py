"""A read of the synced tables together with the seq it reflects."""

from collections.abc import Callable
from typing import TypeVar

from django.db import connection, transaction

from sync.selectors import seq_latest

T = TypeVar("T")


def snapshot_at_seq(read: Callable[[], T]) -> tuple[int, T]:
    """Run ``read()`` and read the latest seq in one snapshot of the database.

    A client that loads the result and then applies every change with a
    larger seq holds the current state: nothing is missed or applied twice.
    On PostgreSQL the transaction is REPEATABLE READ, so ``read()`` sees
    exactly the committed state at that seq; SQLite transactions are
    serialisable already. Call it outside any open transaction (the isolation
    level can only be set first thing), from one thread.

    Parameters
    ----------
    read
        Reads the rows; runs inside the snapshot transaction.

    Returns
    -------
    tuple of (int, T)
        The latest committed seq and what ``read()`` returned.
    """
    # Inside a caller's transaction the isolation level is fixed already
    # (SET TRANSACTION must come first); that transaction's view applies.
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq = seq_latest()
        return seq, read()
