"""Scoring users with the live engine and storing their lists.

Scoring a user reads their latest events (through the process's history
cache) and needs no refit, so every event changes the list at once. The
engine, the cache and the versions live in :data:`recommender.services.live.live`;
storing is :mod:`recommender.services.snapshots`; sending is
:mod:`recommender.services.push`.
"""

import json
import time
from collections.abc import Collection

from django.conf import settings

from recommender import messages, signals
from recommender.selectors import snapshot_latest
from recommender.services.live import live
from recommender.services.ranking import for_you_rank
from recommender.services.snapshots import ScoredList, lists_store, snapshot_message


def recommendations_compute(
    *, user_id: int, shown: bool = False
) -> messages.RecommendationsMessage:
    """Score the user now, store a new snapshot and return its message.

    ``shown`` records the list as impressions (it goes to an open socket),
    for the online metrics.
    """
    computed = recommendations_compute_many(user_ids=[user_id], shown=shown)
    if user_id not in computed:
        raise RuntimeError(f"could not store a snapshot for user {user_id}")
    return computed[user_id]


def recommendations_compute_many(
    *, user_ids: list[int], shown: bool = False
) -> dict[int, messages.RecommendationsMessage]:
    """Score each user, store their snapshots in one transaction, return the messages.

    Histories come from the process's cache (one query for every user), and
    every snapshot and impression is written in one transaction. A user whose
    snapshot cannot be stored (deleted a moment ago) is left out of the result.
    """
    if not user_ids:
        return {}
    state = live.engine.current()
    histories = live.histories.histories(user_ids)
    started = time.perf_counter()
    # Each user's experiment variant and the staff rules shape the ranking.
    ranked_all = for_you_rank(
        engine=state.engine,
        histories={user_id: histories[user_id] for user_id in user_ids},
        k=settings.RECS_LIST_LENGTH,
    )
    # Users are scored together; each list reports its share of the time.
    computed_ms = (time.perf_counter() - started) * 1000 / len(user_ids)
    lists: dict[int, ScoredList] = {}
    for user_id in user_ids:
        ranked = ranked_all[user_id]
        items: list[messages.RecommendedItem] = [
            {
                "id": rec.item_id,
                "title": state.title(rec.item_id),
                "score": round(rec.score, 6),
                "reasons": rec.reasons,
                "because": rec.because,
            }
            for rec in ranked.recommendations
        ]
        lists[user_id] = (items, computed_ms, ranked.variant_id)
    signals.lists_scored.send(
        sender=recommendations_compute_many, count=len(lists), computed_ms=computed_ms
    )
    stored = lists_store(lists=lists, shown=shown)
    return {user_id: snapshot_message(snap) for user_id, snap in stored.items()}


def recommendations_current(
    *, user_id: int, shown: bool = False
) -> messages.RecommendationsMessage:
    """Return the user's latest list, computing one if none is valid.

    A stored snapshot that still shows an item deactivated or deleted since is
    not served; a fresh one replaces it.
    """
    snapshot = snapshot_latest(user_id=user_id)
    if snapshot is not None:
        live.version_seen(user_id, snapshot.version)
        active = live.engine.current().active_ids
        if all(entry["id"] in active for entry in snapshot.items):
            return snapshot_message(snapshot)
    return recommendations_compute(user_id=user_id, shown=shown)


def recommendations_open(*, user_id: int) -> messages.RecommendationsMessage:
    """Return the list a newly opened socket shows first (recorded as shown).

    A login may have merged a visitor's older events into this user, which
    the history cache's "newer than" read would miss: the user's history is
    read in full next time.
    """
    live.histories.forget(user_id)
    return recommendations_current(user_id=user_id, shown=True)


def list_retracted_by(*, change_text: str, shown: Collection[int]) -> bool:
    """Return True when a catalog change takes an item of ``shown`` off the shelf.

    ``change_text`` is a sync ``change`` message as broadcast (JSON: ``model``,
    ``op``, ``id``, ``data``); an item deleted or deactivated while on screen
    retracts the list that shows it.
    """
    if not shown:
        return False
    change = json.loads(change_text)
    if change.get("model") != "item" or change.get("id") not in shown:
        return False
    data = change.get("data")
    return change.get("op") == "delete" or not (data or {}).get("active", False)
