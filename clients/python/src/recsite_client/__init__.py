"""asyncio clients for recsite's sockets.

- :class:`CatalogStream`: the catalog snapshot, then every change in order,
  resumed across reconnects (``/api/items/`` + ``/ws/sync/``);
- :class:`RecommendationsClient`: send a user's events, receive their lists
  (``/ws/recommendations/``).

See docs/clients.md in the recsite repository.
"""

from recsite_client.backoff import Backoff
from recsite_client.catalog import CatalogStream, StreamStats
from recsite_client.changes import (
    Change,
    Delete,
    Event,
    Leave,
    Reloaded,
    Upsert,
    change_from_message,
)
from recsite_client.http import NotAuthenticated, load_snapshot, login
from recsite_client.recommendations import (
    ACTIONS,
    EventRejected,
    RecommendationList,
    RecommendationsClient,
    Recommended,
)

__all__ = [
    "ACTIONS",
    "Backoff",
    "CatalogStream",
    "Change",
    "Delete",
    "Event",
    "EventRejected",
    "Leave",
    "NotAuthenticated",
    "RecommendationList",
    "RecommendationsClient",
    "Recommended",
    "Reloaded",
    "StreamStats",
    "Upsert",
    "change_from_message",
    "load_snapshot",
    "login",
]
