"""Reads of the catalog, histories and snapshots."""

from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from recommender.models import BrowsingEvent, Item, RecommendationSnapshot
from recommender.serializers import item_to_dict
from recommender.services.engine import History, Interactions
from sync.selectors import seq_latest


def items_snapshot() -> dict:
    """Return ``{"seq": S, "items": [...]}``: active items and the seq they reflect.

    Read in one repeatable-read transaction so the items are exactly the state
    at ``seq`` (SQLite transactions are serialisable already).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq = seq_latest()
        items = [
            item_to_dict(item)
            for item in Item.objects.filter(active=True).select_related("category")
        ]
    return {"seq": seq, "items": items}


def history_for_user(*, user_id: int, limit: int | None = None) -> History:
    """Return the user's latest ``limit`` events, oldest first."""
    limit = limit or settings.RECS_HISTORY_EVENTS
    rows = list(
        BrowsingEvent.objects.filter(user_id=user_id)
        .order_by("-created", "-id")
        .values_list("item_id", "action", "weight", "created")[:limit]
    )
    rows.reverse()
    return _history(rows)


def _history(rows: list[tuple[int, str, float, datetime]]) -> History:
    n = len(rows)
    return History(
        item_ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        actions=[r[1] for r in rows],
        weights=np.fromiter((r[2] for r in rows), dtype=np.float32, count=n),
        timestamps=np.fromiter(
            (r[3].timestamp() for r in rows), dtype=np.float64, count=n
        ),
    )


def interactions_all() -> Interactions:
    """Return every stored event as column arrays, for the batch fit."""
    rows = BrowsingEvent.objects.values_list("user_id", "item_id", "weight", "created")
    users, items, weights, stamps = [], [], [], []
    for user_id, item_id, weight, created in rows.iterator(chunk_size=20_000):
        users.append(user_id)
        items.append(item_id)
        weights.append(weight)
        stamps.append(created.timestamp())
    return Interactions(
        user_ids=np.asarray(users, dtype=np.int64),
        item_ids=np.asarray(items, dtype=np.int64),
        weights=np.asarray(weights, dtype=np.float32),
        timestamps=np.asarray(stamps, dtype=np.float64),
    )


def snapshot_latest(*, user_id: int) -> RecommendationSnapshot | None:
    """Return the user's newest stored recommendation snapshot, if any."""
    return (
        RecommendationSnapshot.objects.filter(user_id=user_id)
        .order_by("-version")
        .first()
    )
