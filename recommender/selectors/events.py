"""Reads of browsing histories and stored recommendation snapshots."""

from datetime import datetime

import numpy as np
from django.db import connection

from recommender.models import BrowsingEvent, RecommendationSnapshot
from recommender.services.engine import Interactions

#: One stored event as the history cache keeps it:
#: (event id, item id, action, weight, created as epoch seconds).
EventRow = tuple[int, int, str, float, float]


def history_rows_since(
    *, since_by_user: dict[int, datetime | None], limit: int
) -> dict[int, list[EventRow]]:
    """Return each user's latest events after their ``since``, newest first.

    ``None`` means "from the start": the user's latest ``limit`` events. On
    PostgreSQL this is one statement for every user (a LATERAL index scan
    per user that stops at ``since``); other databases query user by user.
    """
    out: dict[int, list[EventRow]] = {user_id: [] for user_id in since_by_user}
    if not since_by_user:
        return out
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(BrowsingEvent._meta.db_table)
        users = list(since_by_user)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT u.uid, e.id, e.item_id, e.action, e.weight, "
                "EXTRACT(EPOCH FROM e.created)::float8 "
                "FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(uid, since) "
                "CROSS JOIN LATERAL (SELECT id, item_id, action, weight, created "
                f"FROM {table} WHERE user_id = u.uid "
                "AND created > COALESCE(u.since, '-infinity'::timestamptz) "
                "ORDER BY created DESC, id DESC LIMIT %s) AS e",
                [users, [since_by_user[u] for u in users], limit],
            )
            rows = cursor.fetchall()
        for user_id, event_id, item_id, action, weight, created_secs in rows:
            out[user_id].append((event_id, item_id, action, weight, created_secs))
        return out
    for user_id, since in since_by_user.items():
        query = BrowsingEvent.objects.filter(user_id=user_id)
        if since is not None:
            query = query.filter(created__gt=since)
        out[user_id] = [
            (event_id, item_id, action, weight, created.timestamp())
            for event_id, item_id, action, weight, created in query.order_by(
                "-created", "-id"
            ).values_list("id", "item_id", "action", "weight", "created")[:limit]
        ]
    return out


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
