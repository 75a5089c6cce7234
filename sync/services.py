"""Writes to the change log and their broadcast after commit."""

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sync import messages, signals
from sync.conf import sync_settings
from sync.layer import bounded
from sync.models import Change, SeqCounter
from sync.wire import encode

logger = logging.getLogger(__name__)

# Prune the log once every this many changes rather than on every write.
_PRUNE_EVERY = 100
# A bulk write larger than this is announced by one message instead of one
# per change; sockets then read the changes from the log.
BROADCAST_MAX_BATCH = 1000

Op = str  # "upsert" | "delete"


def _wire_id(object_id: str) -> int | str:
    return int(object_id) if object_id.isdigit() else object_id


def change_message(change: Change) -> messages.ChangeMessage:
    """Return the wire message of a stored change."""
    return messages.change(
        seq=change.seq,
        model=change.model,
        op=change.op,
        object_id=_wire_id(change.object_id),
        data=change.data,
    )


def changes_record(*, model_name: str, changes: Iterable[tuple[Any, ...]]) -> list[int]:
    """Append changes to the log and broadcast them once the transaction commits.

    Sequence numbers come from one locked counter row, so they are gap-free and
    in commit order across every process sharing the database.

    Parameters
    ----------
    model_name
        The synced model's wire name, e.g. ``"item"``.
    changes
        ``(op, object_id, data)`` or ``(op, object_id, data, before)``;
        ``data`` is None for deletes; ``before`` is the row's before-image
        for shapes (a dict, False for a new row, None when unknown; see
        :attr:`sync.models.Change.before`).

    Returns
    -------
    list of int
        The sequence numbers given to the changes, in order.
    """
    batch = [change if len(change) == 4 else (*change, None) for change in changes]
    if not batch:
        return []
    with transaction.atomic():
        updated = SeqCounter.objects.filter(pk=1).update(value=F("value") + len(batch))
        if not updated:
            SeqCounter.objects.create(pk=1, value=len(batch))
        last = SeqCounter.objects.values_list("value", flat=True).get(pk=1)
        first = last - len(batch) + 1
        now = timezone.now()
        rows = [
            Change(
                seq=first + i,
                model=model_name,
                op=op,
                object_id=oid,
                data=data,
                before=before,
                created=now,
            )
            for i, (op, oid, data, before) in enumerate(batch)
        ]
        Change.objects.bulk_create(rows)
        if last // _PRUNE_EVERY != (first - 1) // _PRUNE_EVERY:
            changelog_prune(latest=last)
        transaction.on_commit(lambda: changes_broadcast(rows))
    signals.changes_recorded.send(sender=Change, model=model_name, count=len(batch))
    return [row.seq for row in rows]


def changelog_prune(*, latest: int) -> int:
    """Delete log rows beyond the configured count and age; return how many."""
    cutoff = timezone.now() - timedelta(
        seconds=sync_settings.SYNC_CHANGELOG_MAX_AGE_SECS
    )
    keep_from = latest - sync_settings.SYNC_CHANGELOG_MAX_ROWS
    deleted, _ = Change.objects.filter(seq__lte=keep_from).delete()
    aged, _ = Change.objects.filter(created__lt=cutoff).delete()
    return deleted + aged


def changes_broadcast(rows: list[Change]) -> None:
    """Send committed changes to every /ws/sync/ socket; never raise.

    A failed send is logged and counted, not retried: the write has committed
    and clients find the gap through the next change or heartbeat.
    """
    if len(rows) > BROADCAST_MAX_BATCH:
        envelopes = [messages.layer_change(text=None, seq=rows[-1].seq)]
    else:
        envelopes = [
            messages.layer_change(
                text=encode(change_message(row)), seq=row.seq, before=row.before
            )
            for row in rows
        ]
    layer = get_channel_layer()
    try:
        async_to_sync(_group_send_all)(layer, messages.CHANGES_GROUP, envelopes)
    except Exception:
        signals.broadcast_failed.send(
            sender=Change, kind="change", first_seq=rows[0].seq, last_seq=rows[-1].seq
        )
        logger.warning(
            "broadcast of changes %d..%d failed; clients will resume from the log",
            rows[0].seq,
            rows[-1].seq,
            exc_info=True,
        )
        return
    signals.changes_broadcast.send(
        sender=Change, first_seq=rows[0].seq, last_seq=rows[-1].seq
    )


async def _group_send_all(
    layer: Any, group: str, envelopes: list[dict[str, Any]]
) -> None:
    # A Redis that accepts connections but never answers must not hold the
    # writer (an admin save, an API call) hostage: give up and let clients
    # recover from the log.
    async def send_all() -> None:
        for envelope in envelopes:
            await layer.group_send(group, envelope)

    await bounded(send_all(), timeout_secs=sync_settings.BROADCAST_TIMEOUT_SECS)
