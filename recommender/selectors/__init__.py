"""Reads of the catalog, histories and snapshots."""

from recommender.selectors.events import (
    EventRow,
    history_rows_since,
    interactions_all,
    snapshot_latest,
)
from recommender.selectors.items import items_snapshot

__all__ = [
    "EventRow",
    "history_rows_since",
    "interactions_all",
    "items_snapshot",
    "snapshot_latest",
]
