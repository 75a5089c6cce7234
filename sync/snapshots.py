"""Snapshots: a read of the synced tables with the seq it reflects, reset points."""

import logging
from collections.abc import Callable
from typing import TypeVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.db.models import F, Model

from sync import messages, signals
from sync.conf import sync_settings
from sync.layer import bounded
from sync.models import SeqCounter
from sync.registry import synced
from sync.selectors import seq_latest

logger = logging.getLogger(__name__)

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


def reset_point(model: type[Model]) -> int:
    """Record a bulk write of ``model`` too large to log row by row; return its seq.

    For a load of thousands of rows (a seed, an import): instead of one change
    per row, the seq advances by one with no row in the change log. That gap
    is what a pruned log looks like, so every client whose position is before
    it is told ``reset`` and reloads its snapshot (which then holds the loaded
    rows), and clients after it miss nothing. Call it inside the writing
    transaction, after the write; once that commits, every server process is
    told at once, so connected sockets get their ``reset`` within moments
    instead of at their next heartbeat.

    Parameters
    ----------
    model
        A synced model (``sync.register``); the rows written are its rows.

    Returns
    -------
    int
        The seq of the reset point.
    """
    synced(model)  # refuses a model that is not synced
    with transaction.atomic():
        if not SeqCounter.objects.filter(pk=1).update(value=F("value") + 1):
            SeqCounter.objects.create(pk=1, value=1)
        seq = seq_latest()
        transaction.on_commit(lambda: _announce(seq))
    return seq


def _announce(seq: int) -> None:
    """Tell every process that changes up to ``seq`` happened; never raise."""
    envelope = messages.layer_change(text=None, seq=seq)

    async def send() -> None:
        layer = get_channel_layer()
        await bounded(
            layer.group_send(messages.CHANGES_GROUP, envelope),
            timeout_secs=sync_settings.BROADCAST_TIMEOUT_SECS,
        )

    try:
        async_to_sync(send)()
    except Exception:
        # Clients still find the reset point through their next heartbeat.
        signals.broadcast_failed.send(
            sender=SeqCounter, kind="reset", first_seq=seq, last_seq=seq
        )
        logger.warning("announcing reset point %d failed", seq, exc_info=True)
